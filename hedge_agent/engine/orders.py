"""Orders to a terminal, under one policy: retries of rejections that say so, the grace for a reconnecting
terminal, the one unknown-outcome lookup (adapters return ``Unknown``; the tag is looked up here, right
after it), and when an unknown outcome is given up (design §3).

An intent is ``pending`` until its order is handed to the terminal, ``unknown`` from then on until a
result (journal ``mark_sent``). So a *pending* intent left by a crash never left: it is looked up and
sent (same tag). An *unknown* one is never resent: it is looked up, and one that an answering terminal
keeps saying it never saw becomes a recorded failure after ``give_up_s`` (a late fill after that is said
loudly by the terminal watch), so no duplicate can ever appear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.tags import OrderTag
from hedge_agent.terminals.base import Connection, Filled, OrderResult, Rejected, Unknown
from hedge_agent.terminals.resolve import fill_from_records

from .binding import Binding
from .context import Core

log = structlog.get_logger(__name__)

Order = Callable[[OrderTag], Awaitable[OrderResult]]
#: after a permanent rejection of a close: did the position leave the terminal some other way? (the exit,
#: and the reason to record it with: "stopped: ..." when hedge-agent did not close it, see Intent.stopped)
Explain = Callable[[Rejected], Awaitable[tuple[Filled, str] | None]]


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def tag_of(intent: Intent) -> OrderTag:
    return OrderTag(intent.intent_id, intent.magic, intent.comment)


@dataclass
class OrderPolicy:
    core: Core
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0)  # retryable rejections (requote, busy...) of one order
    lookups: int = 3  # tag lookups before an outcome stays unknown
    lookup_delay_s: float = 0.3  # grows linearly: the server may still be executing
    grace_s: float = 15.0  # wait this long for a reconnecting terminal before sending to it anyway
    give_up_s: float = 60.0  # an unknown outcome never seen on an answering terminal is a failure after this

    def __post_init__(self) -> None:
        self._unknown_since: dict[str, float] = {}

    async def send(
        self,
        b: Binding,
        intent: Intent,
        order: Order,
        closing: str | None = None,
        explain: Explain | None = None,
    ) -> Intent:
        """The order leaves (it is journaled already); bounded retries of rejections that say so; an
        unknown outcome is looked up by tag at once."""
        core = self.core
        tag = tag_of(intent)
        result: OrderResult = Unknown("not sent")
        await b.take()  # when b.free(): at once, no other task runs meanwhile
        try:
            await self._connected(b)
            if intent.state is IntentState.PENDING:  # from here on the order may have left
                intent = await core.journal.quick(core.j.mark_sent, intent.intent_id)
            for attempt, delay in enumerate((0.0, *self.retry_delays)):
                if delay:
                    await asyncio.sleep(delay)
                core.timing.order_sent(intent.position_id, core.clock())
                b.risk.sent()
                core.counters.orders_sent += 1
                try:
                    result = await order(tag)
                except Exception as e:  # lost pipe, bridge gone...: the order may have left
                    log.warning("order raised", intent=intent.intent_id, error=repr(e))
                    result = Unknown(f"terminal error: {e}")
                if not (isinstance(result, Rejected) and result.retryable) or attempt == len(
                    self.retry_delays
                ):
                    break
                log.info(
                    "retryable rejection", intent=intent.intent_id, code=result.code, reason=result.reason
                )
            if isinstance(result, Unknown):
                found, _ = await self.lookup(b, tag, closing)
                result = found or result
        finally:
            b.release()
        if isinstance(result, Rejected) and explain is not None:
            gone = await explain(result)
            if gone is not None:
                return await self.record(intent, gone[0], reason=gone[1])
        return await self.record(intent, result)

    async def _connected(self, b: Binding) -> None:
        """A terminal that is reconnecting (EA restarting, MT5 worker respawning) gets a short grace before
        an order is sent, so a blip does not turn into a canceled position."""
        deadline = self.core.clock() + self.grace_s
        while b.terminal.health().connection is not Connection.CONNECTED and self.core.clock() < deadline:
            await asyncio.sleep(0.1)

    async def lookup(
        self, b: Binding, tag: OrderTag, closing: str | None, tries: int | None = None
    ) -> tuple[Filled | None, bool]:
        """Find the tag on the terminal: (the fill or None, whether every lookup got an answer).
        Only an answered "not there" allows a resend; a terminal that cannot answer proves nothing."""
        answered = True
        for attempt in range(self.lookups if tries is None else tries):
            if attempt:
                await asyncio.sleep(self.lookup_delay_s * attempt)
            try:
                fill = fill_from_records(await b.terminal.find(tag), tag, closing)
            except Exception as e:
                log.warning("tag lookup failed", intent=tag.intent_id, error=repr(e))
                answered = False
                continue
            if fill is not None:
                return fill, True
        return None, answered

    async def settle(self, b: Binding, intent: Intent, resend: Order, closing: str | None = None) -> Intent:
        """An intent whose order may have left (crash, timeout): find it by tag. A ``pending`` intent left by
        a previous run and found nowhere after the lookups was never executed: send it (same tag).

        A ``pending`` intent was never handed to the terminal (``mark_sent`` comes first), so one lookup
        suffices (it covers a ``mark_sent`` lost with the OS cache); repeated, spaced lookups are for an
        ``unknown`` one, whose server may still be executing it."""
        tries = 1 if intent.state is IntentState.PENDING else None
        found, answered = await self.lookup(b, tag_of(intent), closing, tries)
        if found is not None:
            self._unknown_since.pop(intent.intent_id, None)
            return await self.record(intent, found)
        if not (answered and b.terminal.health().ok):
            return intent
        if intent.state is IntentState.PENDING:
            log.warning("sending an intent a previous run wrote but never sent", intent=intent.intent_id)
            return await self.send(b, intent, resend, closing)
        now = self.core.clock()
        since = self._unknown_since.setdefault(intent.intent_id, now)
        if now - since < self.give_up_s:
            return intent
        self._unknown_since.pop(intent.intent_id, None)
        reason = f"not executed: not on the terminal {self.give_up_s:g} s after an unknown outcome ({intent.reason})"
        return await self.record(intent, Rejected(intent.code or 0, reason, False))

    async def record(self, intent: Intent, result: OrderResult, reason: str | None = None) -> Intent:
        j, core = self.core.j, self.core
        if isinstance(result, Filled):
            core.counters.fills += 1
            return await core.journal.call(
                j.record_result, intent.intent_id, IntentState.FILLED, ticket=result.ticket,
                price=result.price, fill_time=iso(result.time), code=result.broker_code, reason=reason,
            )  # fmt: skip
        if isinstance(result, Rejected):
            core.counters.failures += 1
            return await core.journal.call(
                j.record_result, intent.intent_id, IntentState.FAILED, code=result.code, reason=result.reason
            )
        return await core.journal.call(
            j.record_result, intent.intent_id, IntentState.UNKNOWN, code=result.code, reason=result.reason
        )
