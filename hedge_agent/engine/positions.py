"""One position's work, driven by the model: read the journal view, ``decide``, carry the steps out, and
decide again on what changed (a fill, a report, a lost race), until nothing more is asked.

Every order goes through the :class:`OrderPolicy`; every report through the :class:`Reporter`; both paths
that ask for an open or a close (the record going OPENING/CLOSING, an ENTRY/CLOSE action) meet here, under
the position's lock.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import structlog

from hedge_agent.domain.decide import (
    Alarm,
    Known,
    Report,
    SendClose,
    SendOpen,
    Settle,
    Step,
    Track,
    Untrack,
    View,
    decide,
)  # fmt: skip
from hedge_agent.domain.enums import PositionStatus
from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.lifecycle import PositionEvent
from hedge_agent.domain.models import Position
from hedge_agent.domain.tags import IntentKind, close_intent_id, intent_id
from hedge_agent.terminals.base import Filled, Rejected, TradeState

from .binding import Binding
from .context import Core
from .orders import Order, OrderPolicy, tag_of
from .reports import Reporter
from .triggers import Triggers

log = structlog.get_logger(__name__)
P = PositionStatus
MAX_ROUNDS = 6  # decide -> act rounds for one event (each round settles, sends or reports something)


class PositionFlow:
    def __init__(self, core: Core, orders: OrderPolicy, reports: Reporter, triggers: Triggers) -> None:
        self.core, self.orders, self.reports, self.triggers = core, orders, reports, triggers

    async def view(self, position_id: str) -> View:
        j = self.core.j  # two indexed reads, no write: on the loop thread (a thread hop costs more)
        opened = await self.core.journal.quick(j.get_intent, intent_id(position_id, IntentKind.OPEN))
        attempts = await self.core.journal.quick(j.close_attempts, position_id)
        return View(opened, attempts[-1] if attempts else None, len(attempts))

    async def retune(self, p: Position, view: View | None = None) -> None:
        """Hand a version of ``p`` this agent received or read to the trail monitor at once when its trade
        is live on the terminal: its trailWidth may have changed (design §4, edits take effect), whatever step
        the record waits for and even while an order holds the position's lock. The monitor ignores a
        version older than one it applied. ``view``: the journal view, when the caller has just read it."""
        core = self.core
        b = core.bindings.get(p.account_id)
        if b is None or p.status not in (P.OPEN, P.CLOSING):
            return
        view = view or await self.view(p.id)
        if view.fill is not None and view.closed is None:
            core.on_open(p, b, view.fill)

    def look_first(self, p: Position) -> bool:
        """The record predates this agent or its journal: an earlier agent (or a lost journal) may have
        sent its order already."""
        if p.created_at is None:
            return True
        created = p.created_at.timestamp()
        return created < self.core.started_at.timestamp() or created < self.core.j.created

    async def run(self, p: Position) -> View:
        """Answer ``p`` (call under its lock); returns the journal view it ended with. When a step raises
        (a transient read, a terminal that throws) the position is left for the next reconcile pass
        (``core.retry``): the journal may have nothing unreported for it (a re-answer), so nothing else would."""
        try:
            return await self._run(p)
        except Exception:
            self.core.retry.add(p.id)
            raise

    async def _run(self, p: Position) -> View:
        for _ in range(MAX_ROUNDS):
            view = await self.view(p.id)
            again: Position | None = None
            for step in decide(p.status, view, look_first=self.look_first(p)):
                moved = await self._do(p, view, step)
                if moved is not None:
                    again = moved
                    break
            if again is None:
                return await self.view(p.id)  # what the steps just did (a send may have written an intent)
            p = again
        return await self.view(p.id)

    async def _do(self, p: Position, view: View, step: Step) -> Position | None:
        """Carry one step out; a record to decide on again when something changed."""
        core = self.core
        b = core.bindings[p.account_id]
        if isinstance(step, SendOpen):
            return p if (await self.open(b, p, step.look_first)).settled else None
        if isinstance(step, SendClose):
            return p if (await self.close(b, p, view, step.attempt)).settled else None
        if isinstance(step, Settle):
            settled = await self.settle(b, p, step.intent)
            return p if settled.settled else None
        if isinstance(step, Report):
            if step.event is PositionEvent.VANISHED:
                await self._fire_recorded(p)
            after = await self.reports.report(p, step)
            if step.event is PositionEvent.VANISHED:
                core.spawn(self.triggers.fire(p.id, "stopped"), f"fire-{p.id}")
            if step.event in (PositionEvent.CLOSED, PositionEvent.VANISHED) and after is not None:
                core.on_gone(p.id)
            return after
        if isinstance(step, Known):
            await self.reports.known(p, step)
        elif isinstance(step, Track):
            if p.mt_ticket and step.intent.ticket and p.mt_ticket != step.intent.ticket:
                core.alarm(
                    p.id, "ticket mismatch",
                    f"position {p.id}: cloud says ticket {p.mt_ticket}, this PC {step.intent.ticket}",
                )  # fmt: skip
            self.triggers.trigger_ids(p, p.id)  # a malformed trigger list is said now, not at fire time
            core.on_open(p, b, step.intent)
        elif isinstance(step, Untrack):
            core.on_gone(p.id)
            core.positions.pop(p.id, None)  # done: the journal remembers what matters
            core.timing.frames.pop(p.id, None)
        elif isinstance(step, Alarm):
            core.alarm(p.id, step.title, f"position {p.id} on {b.name} {step.message}")
        return None

    async def _fire_recorded(self, p: Position) -> None:
        core = self.core
        if await core.journal.call(core.j.get_fire, p.id) is None:
            ids = self.triggers.trigger_ids(p, p.id)
            await core.journal.call(core.j.add_fire, p.id, "stopped", ids)

    def _why(self, p: Position) -> str:
        return "action" if p.id in self.core.action_driven else "by hand"

    # -- open ---------------------------------------------------------------------------------------------

    async def open(self, b: Binding, p: Position, look_first: bool) -> Intent:
        core = self.core
        iid = intent_id(p.id, IntentKind.OPEN)
        tag = b.tag(iid)
        draft = Intent(
            iid, "open", p.id, p.account_id, b.name, p.symbol, p.side, p.volume, tag.magic, tag.comment
        )
        refusal = b.risk.check(p.volume, opening=True, paused=core.paused)
        # on the loop thread: one short indexed write, cheaper than two thread hops (journal.AsyncJournal);
        # written as sent when the order leaves right after it (no lookup first, the terminal free)
        sent = not look_first and b.free()
        intent, created = await core.journal.quick(
            core.j.write_ahead, draft, refusal, b.risk.config.max_open_positions, sent=sent
        )
        if not created:
            return intent
        if intent.state is IntentState.FAILED:
            log.warning("open refused", position=p.id, reason=intent.reason)
            core.trade("refusal", intent, "pause" if core.paused else "risk cap")
            return intent
        if look_first:
            found, answered = await self.orders.lookup(b, tag, None)
            if found is None and not answered:  # proves nothing: send only after an answered "not there"
                log.warning("open not sent yet: its tag lookup got no answer (retried)", intent=iid)
                return intent  # pending: the next pass settles it (lookup first, then send)
            if found is not None:
                core.alarm(
                    p.id, "order already on the terminal",
                    f"position {p.id}: its open was already on {b.name} (#{found.ticket}) before this agent sent "
                    "anything: another agent trades this account, or the journal was lost. Adopted the fill; no "
                    "second order was sent.",
                )  # fmt: skip
                return await self._told(p, await self.orders.record(intent, found))
        order = partial(
            b.terminal.open_position, p.symbol, p.side, p.volume, stop_distance=b.stop_distance(p.symbol)
        )
        return await self._told(p, await self.orders.send(b, intent, order))

    async def _told(self, p: Position, intent: Intent) -> Intent:
        """The trade log hears of every intent settled by this process."""
        if intent.state is IntentState.FILLED:
            if intent.kind == "open":
                self.core.trade("fill", intent, self._why(p), side=p.side)
            else:
                why = "stop-out" if intent.stopped else await self._close_why(p)
                self.core.trade("close", intent, why, side=p.side)
        elif intent.state is IntentState.FAILED:
            self.core.trade("failure", intent, intent.reason or "failed", side=p.side)
        return intent

    async def _close_why(self, p: Position) -> str:
        fire = await self.core.journal.call(self.core.j.get_fire, p.id)
        return "trail" if fire is not None and fire.cause == "trail" else self._why(p)

    # -- close --------------------------------------------------------------------------------------------

    async def close(self, b: Binding, p: Position, view: View, attempt: int) -> Intent:
        core = self.core
        iid = close_intent_id(p.id, attempt)
        tag = b.tag(iid)
        opened = view.fill
        # this PC's own ticket first: with the account bound twice, the cloud's ticket may be another PC's
        ticket = (opened.ticket if opened else None) or p.mt_ticket
        intent = Intent(
            iid, "close", p.id, p.account_id, b.name, p.symbol, p.side.opposite, p.volume, tag.magic,
            tag.comment, ticket=ticket,
        )  # fmt: skip
        refusal = b.risk.check(p.volume, opening=False, paused=core.paused)
        if ticket is None:
            refusal = "no terminal ticket is known for this position"
        if refusal is not None:
            failed = await core.journal.call(
                core.j.add_intent, replace(intent, state=IntentState.FAILED, reason=refusal)
            )
            core.trade("refusal", failed, "pause" if core.paused else refusal, side=p.side)
            return failed
        # as the open's write-ahead: on the loop thread, and written as sent when the terminal is free
        intent = await core.journal.quick(core.j.add_intent, intent, sent=b.free())
        assert ticket is not None
        sent = await self.orders.send(
            b, intent, _closer(b, ticket, p.volume), ticket, partial(self._gone, b, p, opened, iid)
        )
        return await self._told(p, sent)

    async def _gone(
        self, b: Binding, p: Position, opened: Intent | None, attempt: str, _: Rejected
    ) -> tuple[Filled, str] | None:
        """Our close was refused: maybe because the position is already gone (a stop-out while we were
        closing, or another agent's close of it)."""
        found = None if opened is None else await closed_on_terminal(b, opened)
        if found is None:
            return None
        fill, why, closer = found
        return fill, await self.exit_reason(b, p, fill, why, closer, attempt)

    async def exit_reason(
        self, b: Binding, p: Position, fill: Filled, why: str, closer: int | None, exclude: str | None
    ) -> str:
        """The reason to record for an exit of ``p`` found on the terminal, not answered to an order of
        ours (``exclude``: the close attempt whose order was just refused). A closing deal carrying one of
        this position's close tags was made by hedge-agent, so the position is CLOSED, said loudly: a close
        of this PC recorded failed that filled after all, or another agent's (tags are deterministic: the
        account is bound on two PCs, even when the deal carries our own refused tag). Anything else
        (``closer`` None: the broker, by hand, another EA) left the terminal without hedge-agent:
        "stopped: ..." (STOPPED, its triggers fire)."""
        core = self.core
        if closer is None:
            return f"stopped: {why}"
        attempts = await core.journal.call(core.j.close_attempts, p.id)
        late = next((a for a in attempts if a.magic == closer and a.intent_id != exclude), None)
        where = f"{b.name} (#{fill.ticket} at {fill.price})"
        if late is not None:
            core.alarm(p.id, "late fill after a recorded failure",
                       f"position {p.id}: close {late.intent_id} was recorded failed ({late.reason}) but it "
                       f"filled on {where}: reporting it CLOSED")  # fmt: skip
            return f"late fill of {late.intent_id}"
        other = b.close_of(p.id, closer, len(attempts))
        if other is None:
            return f"stopped: {why}"
        core.alarm(p.id, "account traded by two agents",
                   f"position {p.id}: it was closed on {where} by {other} of another agent, not by this PC: "
                   "the account is bound on two PCs. Check both; reporting it CLOSED.")  # fmt: skip
        return f"closed by {other} of another agent"

    async def settle(self, b: Binding, p: Position, intent: Intent) -> Intent:
        if intent.kind == "open":
            resend: Order = partial(
                b.terminal.open_position,
                intent.symbol,
                intent.side,
                intent.volume,
                stop_distance=b.stop_distance(intent.symbol),
            )
            after = await self.orders.settle(b, intent, resend)
        else:
            ticket = intent.ticket or ""
            after = await self.orders.settle(b, intent, _closer(b, ticket, intent.volume), ticket)
        return await self._told(p, after) if after.settled else after


def _closer(b: Binding, ticket: str, volume: float) -> Order:
    return partial(b.terminal.close_position, ticket, volume)


async def closed_on_terminal(b: Binding, opened: Intent) -> tuple[Filled, str, int | None] | None:
    """(exit as a fill, the terminal's reason, the magic of the order that closed it) if it is closed."""
    try:
        records = await b.terminal.find(tag_of(opened))
    except Exception as e:
        log.warning("lookup failed", intent=opened.intent_id, error=repr(e))
        return None
    for r in records:
        if (
            r.ticket == opened.ticket
            and r.state is TradeState.CLOSED
            and r.close_price is not None
            and r.close_time
        ):
            fill = Filled(ticket=r.ticket, price=r.close_price, time=r.close_time, volume=r.volume)
            return fill, r.close_reason or "closed outside hedge-agent", r.close_magic
    return None
