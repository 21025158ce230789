"""Resolving an unknown order outcome by looking its tag up on the terminal (design §3): shared by every
adapter so "timeout, but it filled" ends the same way on MT5, MT4 and the simulator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hedge_agent.domain.tags import OrderTag
from hedge_agent.errors import HedgeError

from .base import Filled, TradeRecord, TradeState, Unknown

log = logging.getLogger(__name__)

Finder = Callable[[OrderTag], Awaitable[list[TradeRecord]]]


def fill_from_records(records: list[TradeRecord], tag: OrderTag, closing: str | None) -> Filled | None:
    """The fill an order with ``tag`` produced, from ``find(tag)``'s records: the position it opened
    (``closing`` None) or its close of position ``closing``; None when nothing carries the tag."""
    if closing is None:
        opened = sorted((r for r in records if r.magic == tag.magic), key=lambda r: r.open_time)
        if not opened:
            return None
        if len(opened) > 1:
            log.error(
                "several positions carry one open tag: %s (%s)", tag.intent_id, [r.ticket for r in opened]
            )
        r = opened[0]
        return Filled(ticket=r.ticket, price=r.open_price, time=r.open_time, volume=r.volume)
    for r in records:
        if (
            r.ticket == closing
            and r.state is TradeState.CLOSED
            and r.close_magic == tag.magic
            and r.close_price is not None
            and r.close_time is not None
        ):
            return Filled(ticket=r.ticket, price=r.close_price, time=r.close_time, volume=r.volume)
    return None


async def resolve_unknown(
    find: Finder,
    tag: OrderTag,
    unknown: Unknown,
    *,
    closing: str | None = None,
    attempts: int = 3,
    delay: float = 0.2,
) -> Filled | Unknown:
    """Look the tag up a few times (the server may still be executing); the fill if found, else the
    original ``Unknown`` (absence is never proof: the caller reconciles later, never blindly retries)."""
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(delay)
        try:
            fill = fill_from_records(await find(tag), tag, closing)
        except HedgeError as e:
            log.warning("looking up %s after an unknown outcome failed: %s", tag.intent_id, e)
            continue
        if fill is not None:
            log.info("unknown outcome of %s resolved: filled as %s", tag.intent_id, fill.ticket)
            return fill
    return unknown
