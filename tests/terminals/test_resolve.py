"""Turning find(tag)'s records into the fill an order with that tag produced."""

from __future__ import annotations

from datetime import UTC, datetime

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind, intent_id, order_tag
from hedge_agent.errors import RetryableError
from hedge_agent.terminals.base import Filled, TradeRecord, TradeState, Unknown
from hedge_agent.terminals.resolve import fill_from_records, resolve_unknown

OPEN = order_tag(intent_id("p1", IntentKind.OPEN))
CLOSE = order_tag(intent_id("p1", IntentKind.CLOSE))
T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)


def record(ticket="7", *, closed=False, close_magic=None, open_time=T0):
    return TradeRecord(
        ticket=ticket,
        symbol=Symbol.EURUSD,
        side=Side.BUY,
        volume=0.1,
        open_price=1.1,
        open_time=open_time,
        state=TradeState.CLOSED if closed else TradeState.OPEN,
        magic=OPEN.magic,
        close_price=1.2 if closed else None,
        close_time=T1 if closed else None,
        close_magic=close_magic,
    )


def test_an_open_tag_resolves_to_the_opening_fill():
    assert fill_from_records([record()], OPEN, None) == Filled("7", 1.1, T0, 0.1)


def test_with_two_positions_for_one_open_tag_the_first_is_the_fill():
    later = record("8", open_time=T1)
    assert fill_from_records([later, record()], OPEN, None) == Filled("7", 1.1, T0, 0.1)


def test_a_close_tag_resolves_only_to_a_close_by_that_tag_of_that_ticket():
    closed_by_us = record(closed=True, close_magic=CLOSE.magic)
    assert fill_from_records([closed_by_us], CLOSE, "7") == Filled("7", 1.2, T1, 0.1)
    assert fill_from_records([record(closed=True, close_magic=None)], CLOSE, "7") is None
    assert fill_from_records([closed_by_us], CLOSE, "8") is None
    assert fill_from_records([record()], CLOSE, "7") is None


async def test_a_lookup_that_fails_or_finds_nothing_leaves_the_outcome_unknown():
    unknown = Unknown("timeout")
    calls = 0

    async def failing(tag):
        nonlocal calls
        calls += 1
        raise RetryableError("not connected")

    assert await resolve_unknown(failing, OPEN, unknown, attempts=2, delay=0) is unknown
    assert calls == 2

    async def empty(tag):
        return []

    assert await resolve_unknown(empty, OPEN, unknown, attempts=2, delay=0) is unknown


async def test_a_fill_that_shows_up_on_a_later_lookup_is_found():
    answers = [[], [record()]]

    async def find(tag):
        return answers.pop(0)

    assert await resolve_unknown(find, OPEN, Unknown("timeout"), attempts=3, delay=0) == Filled(
        "7", 1.1, T0, 0.1
    )
