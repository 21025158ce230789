"""Reconciliation: journal x terminal x cloud => corrective steps (``domain.decide.reconcile_plan``), then
the same position flow as live events carry them out. Safe to run any time, as often as wanted.

Isolation: each record's work is guarded on its own; one that raises is logged, said, counted, and the
pass goes on with the others (a denied read, a malformed record, a terminal that throws).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

import structlog

from hedge_agent.domain.decide import Settle, Step, View, reconcile_plan
from hedge_agent.domain.enums import ActionStatus, PositionStatus
from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.models import Position
from hedge_agent.domain.tags import OrderTag, close_intent_id
from hedge_agent.errors import FatalError
from hedge_agent.terminals.base import OrderResult, Rejected

from .actions import ActionFlow
from .binding import Binding
from .context import Core
from .journal_archive import CHUNK
from .orders import iso, tag_of
from .positions import PositionFlow, closed_on_terminal
from .triggers import Triggers

log = structlog.get_logger(__name__)
P = PositionStatus
PARALLEL = 32  # records reconciled at once
ARCHIVE_EVERY_S = 3_600.0  # how often a reconcile pass moves finished work to the journal's archive
ARCHIVE_CHUNKS_PER_PASS = 10  # a long history (the first start after an upgrade) moves over several passes


class Reconciler:
    def __init__(self, core: Core, flow: PositionFlow, actions: ActionFlow, triggers: Triggers) -> None:
        self.core, self.flow, self.actions, self.triggers = core, flow, actions, triggers
        self._strays: set[tuple[str, str]] = set()
        self._archive_due: float | None = None

    async def _archive(self) -> None:
        """Finished work leaves the journal's hot tables (``journal_archive.py``): a few chunks per pass,
        each its own short journal call (orders interleave); the rest on the next passes, then hourly."""
        core, j = self.core, self.core.j
        for _ in range(ARCHIVE_CHUNKS_PER_PASS):
            ids = await core.journal.call(j.finished_positions)
            if ids:
                await core.journal.call(j.archive_positions, ids)
            if len(ids) < CHUNK:
                self._archive_due = core.clock() + ARCHIVE_EVERY_S
                return
        self._archive_due = core.clock()  # more to move: on the next pass

    async def _isolated(self, what: str, work: Callable[[], Awaitable[object]]) -> bool:
        """Run one record's work; False (said, counted) when it raised."""
        try:
            await work()
        except FatalError:
            raise
        except Exception as e:
            self.core.counters.record_failures += 1
            log.exception("reconcile step failed; going on with the others", record=what)
            self.core.alarm(what, "reconcile failed for a record", f"{what}: {type(e).__name__}: {e}")
            return False
        return True

    async def _position_work(self, pid: str, work: Callable[[], Awaitable[object]]) -> None:
        """A position's read or steps, isolated; when they fail the position is revisited by the next pass
        (``core.retry``) even if the journal has nothing unreported for it: no work is lost to one error."""
        if not await self._isolated(pid, work):
            self.core.retry.add(pid)

    async def _read(self, pid: str, records: dict[str, Position | None], views: dict[str, View]) -> None:
        records[pid] = record = await self.core.cloud.get_position(pid)
        views[pid] = view = await self.flow.view(pid)
        if record is not None:  # a trailWidth edit this read brings takes effect now, steps or not
            await self.flow.retune(record, view)

    async def _each(self, work: list[tuple[str, Callable[[], Awaitable[object]]]]) -> None:
        """Every position's work (``_position_work``: isolated, revisited after a failure), up to
        ``PARALLEL`` at a time: one record's lookups (which wait
        for a server that may still be executing) never hold up the others; orders still leave one at a
        time per terminal (its lock) and work on one position under that position's lock."""
        gate = asyncio.Semaphore(PARALLEL)

        async def one(pid: str, fn: Callable[[], Awaitable[object]]) -> None:
            async with gate:
                await self._position_work(pid, fn)

        await asyncio.gather(*(one(what, fn) for what, fn in work))

    async def reconcile(self) -> None:
        core = self.core
        j = core.j
        await core.journal.call(j.check_identity)
        if self._archive_due is None or core.clock() >= self._archive_due:
            await self._archive()
        unreported = await core.journal.call(j.unreported_intents)
        views: dict[str, View] = {}
        records: dict[str, Position | None] = {}
        reads: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        seen: set[str] = set()
        for intent in unreported:
            if intent.position_id in seen:
                continue
            seen.add(intent.position_id)
            if intent.account_id not in core.bindings:
                core.alarm(intent.intent_id, "journal intent for an unknown account",
                           f"{intent.intent_id}: account {intent.account_id} is no longer configured on this PC")  # fmt: skip
                continue
            reads.append((intent.position_id, partial(self._read, intent.position_id, records, views)))
        for pid in sorted(core.retry - seen):  # answers that did not land, journal all reported
            core.retry.discard(pid)  # put back by a failure below, or by a report that fails again
            reads.append((pid, partial(self._read, pid, records, views)))
        await self._each(reads)
        plan = reconcile_plan(views, {pid: (r.status if r else None) for pid, r in records.items()})
        await self._each(
            [(pid, partial(self._carry_out, pid, records[pid], steps)) for pid, steps in plan.items()]
        )
        for rec in await core.journal.call(j.unreported_actions):
            await self._isolated(rec.action_id, lambda rec=rec: self._action(rec.action_id))  # type: ignore[misc]
        for fire in await core.journal.call(j.unsettled_fires):
            await self._isolated(fire.position_id, lambda fire=fire: self.triggers.claim(fire))  # type: ignore[misc]
        for b in core.bindings.values():
            await self._isolated(b.name, lambda b=b: self.watch_terminal(b))  # type: ignore[misc]

    async def _carry_out(self, pid: str, p: Position | None, steps: list[Step]) -> None:
        core = self.core
        async with core.lock(pid):
            if p is not None:
                # read before waiting for the lock: a newer version may have been handled meanwhile
                cached = core.positions.get(pid)
                if cached is not None and _newer_or_same(cached, p):
                    p = cached
                core.positions[p.id] = p
                if steps:
                    await self.flow.run(p)
                return
            # the record is gone (deleted, or no longer readable): settle what may still fill, then stop
            for step in steps:
                if isinstance(step, Settle):
                    b = core.bindings[step.intent.account_id]
                    closing = None if step.intent.kind == "open" else step.intent.ticket
                    await self._settle_orphan(b, step.intent, closing)
            for i in await core.journal.call(core.j.unreported_intents):
                if i.position_id == pid and i.settled:
                    log.warning("record gone from the cloud; nothing to report", intent=i.intent_id)
                    await core.journal.call(core.j.mark_reported, i.intent_id)

    async def _settle_orphan(self, b: Binding, intent: Intent, closing: str | None) -> None:
        """An unsettled intent whose record is gone: found by tag, or settled by the same give-up rule as
        any other (so an action waiting on it ends); never sent now, not even a pending one."""
        orders = self.flow.orders
        if intent.state is IntentState.PENDING:
            found, answered = await orders.lookup(b, tag_of(intent), closing)
            if found is None and answered:
                await orders.record(intent, Rejected(0, "not sent: its record is gone from the cloud", False))
                return
            after = intent if found is None else await orders.record(intent, found)
        else:
            after = await orders.settle(b, intent, _never_resent, closing)  # only a pending one is resent
        if after.state is IntentState.FILLED:
            self.core.alarm(intent.position_id, "trade without a record",
                            f"{intent.intent_id} filled (#{after.ticket}) but its record is gone from the cloud: "
                            f"check {b.name} by hand")  # fmt: skip

    async def _action(self, action_id: str) -> None:
        core = self.core
        a = await core.cloud.get_action(action_id)
        if a is not None and a.status is ActionStatus.EXECUTING:
            await self.actions.on_action(a)
        else:
            await core.journal.call(core.j.mark_action_reported, action_id)

    # -- the terminal side: stop-outs and strays -----------------------------------------------------------

    async def watch_terminal(self, b: Binding) -> None:
        """One pass: every position this PC opened on ``b`` and believes open must still be there, and
        every live trade carrying a hedge-agent tag must be one this PC's journal has open."""
        core = self.core
        try:
            live = {p.ticket: p for p in await b.terminal.positions()}
        except Exception as e:
            log.debug("positions snapshot failed", terminal=b.name, error=repr(e))
            return
        mine = [o for o in await core.journal.call(core.j.open_tickets) if o.terminal == b.name]
        for opened in mine:
            if opened.ticket not in live:
                await self._isolated(opened.position_id, lambda o=opened: self._vanished(b, o))  # type: ignore[misc]
        known = {o.ticket for o in mine}
        for ticket, lp in live.items():
            if ticket in known or (b.name, ticket) in self._strays:
                continue
            intent = await core.journal.call(core.j.intent_by_magic, b.name, lp.magic)
            if intent is None and not lp.comment.startswith("ha:"):
                continue  # a trade of the user or of another EA
            self._strays.add((b.name, ticket))
            if intent is not None and intent.state is IntentState.FAILED:
                core.alarm(intent.intent_id, "late fill after a recorded failure",
                           f"trade #{ticket} on {b.name} carries the tag of {intent.intent_id}, recorded FAILED "
                           f"({intent.reason}): a late fill. The cloud does not track it: close it by hand or "
                           "reopen its record.")  # fmt: skip
            elif intent is not None and intent.state is IntentState.FILLED and intent.ticket != ticket:
                core.alarm(f"{b.name}:{ticket}", "second trade with this PC's tag",
                           f"trade #{ticket} on {b.name} carries the tag of {intent.intent_id}, which this PC filled "
                           f"as #{intent.ticket}: another agent trades this account (bound on two PCs?). Close "
                           "the extra trade by hand.")  # fmt: skip
            elif intent is None:
                owner = await self._owner_of(b, lp.magic)
                core.alarm(f"{b.name}:{ticket}", "unknown hedge-agent trade",
                           f"trade #{ticket} on {b.name} carries a hedge-agent tag ({lp.comment}) this PC's journal "
                           f"does not know{f' (the open of position {owner})' if owner else ''}: another agent "
                           "trades this account, or the journal was lost.")  # fmt: skip

    async def _owner_of(self, b: Binding, magic: int) -> str | None:
        """The position whose open tag is ``magic``: among the records this agent has seen, else among the
        account's records the cloud still has (a rare, one-off read: only for a stray trade)."""
        candidates = [p for p in self.core.positions.values() if p.account_id == b.account_id]
        if not any(b.tag(f"open:{p.id}").magic == magic for p in candidates):
            for status in PositionStatus:
                try:
                    candidates += await self.core.cloud.positions_by_status(status)
                except Exception as e:
                    log.warning("positions read failed", status=status.value, error=repr(e))
        return next(
            (
                p.id
                for p in candidates
                if p.account_id == b.account_id and b.tag(f"open:{p.id}").magic == magic
            ),
            None,
        )

    async def _vanished(self, b: Binding, opened: Intent) -> None:
        core = self.core
        p = core.positions.get(opened.position_id)
        if p is None or p.status is not P.OPEN:
            return
        async with core.lock(p.id):
            p = core.positions.get(opened.position_id)
            if p is None or p.status is not P.OPEN:
                return
            view = await self.flow.view(p.id)
            if view.last_close is not None and view.last_close.state is not IntentState.FAILED:
                return  # our own close is in flight or done: the close flow reports it
            gone = await closed_on_terminal(b, opened)
            if gone is None:
                return
            fill, why, closer = gone
            iid = close_intent_id(p.id, view.attempts + 1)
            reason = await self.flow.exit_reason(b, p, fill, why, closer, None)
            intent = Intent(
                iid, "close", p.id, p.account_id, b.name, p.symbol, p.side.opposite, p.volume, 0, "stopped",
                ticket=opened.ticket, state=IntentState.FILLED, price=fill.price, fill_time=iso(fill.time),
                reason=reason,
            )  # fmt: skip
            if not intent.stopped:  # closed by hedge-agent (said by exit_reason): reported CLOSED
                await core.journal.call(core.j.add_intent, intent)
                core.trade("close", intent, "by hand", side=p.side)
            else:
                intent, _ = await core.journal.call(
                    core.j.add_stop_out, intent, self.triggers.trigger_ids(p, p.id)
                )
                core.board.notice(
                    "warning", "position gone from the terminal", f"{p.id} #{opened.ticket}: {why}"
                )
                core.trade("close", intent, "stop-out", side=p.side)
            await self.flow.run(p)


async def _never_resent(tag: OrderTag) -> OrderResult:
    raise AssertionError(f"{tag.intent_id}: an orphan intent is never sent")


def _newer_or_same(a: Position, b: Position) -> bool:
    return a.updated_at is not None and (b.updated_at is None or a.updated_at >= b.updated_at)
