"""The executor: cloud records in, terminal orders and cloud reports out (design §1-§3).

Invariant: every owned intent ends in exactly one terminal order or one recorded failure. How:

* one intent per position open (``open:<id>``) and per close attempt (``close:<id>:<n>``), whichever path
  asks for it (the Position going OPENING/CLOSING, or an ENTRY/CLOSE action): both paths meet in the journal;
* all work on one position runs under that position's lock, in arrival order;
* write ahead: the intent is journaled before the order leaves, the result after, the report last;
* an unknown outcome is looked up by its tag, never blindly retried; a new close attempt is only made after
  the previous one failed for certain.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from hedge_agent.cloud.events import BadRecord, CaughtUp, CloudEvent, LinkState, RecordEvent
from hedge_agent.cloud.outcomes import ConditionFailed, Failed, MutationOutcome, NotFound, Ok, Unauthorized
from hedge_agent.domain.enums import ActionStatus, ActionType, PositionStatus
from hedge_agent.domain.lifecycle import POSITION_FINAL
from hedge_agent.domain.models import Action, Position, trigger_action_ids
from hedge_agent.domain.ownership import Ownership, ownership
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import MT4_MAGIC_BITS, IntentKind, OrderTag, intent_id, order_tag
from hedge_agent.errors import RecordError
from hedge_agent.terminals.base import (
    Connection,
    Filled,
    OrderResult,
    Rejected,
    Terminal,
    TradeState,
    Unknown,
)
from hedge_agent.terminals.resolve import fill_from_records

from .journal import AsyncJournal, Intent, IntentState, Journal
from .ports import CloudPort
from .risk import RiskGate
from .status_board import StatusBoard

log = structlog.get_logger(__name__)

P = PositionStatus
RETRY_DELAYS = (0.2, 0.5, 1.0)  # retryable rejections (requote, busy...) of one order
LOOKUPS = 3  # tag lookups before an outcome stays unknown
TERMINAL_GRACE_S = 15.0  # wait this long for a reconnecting terminal before sending to it anyway
MAX_REMEMBERED = 100_000  # record versions kept to drop stale events (bounded memory)
UNKNOWN_GIVE_UP_S = 60.0  # an unknown outcome the terminal keeps saying it never saw is a failure after this


@dataclass
class Binding:
    """A terminal on this PC and the cloud Account it trades."""

    account_id: str
    name: str
    terminal: Terminal
    symbols: SymbolTable
    risk: RiskGate
    magic_base: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # orders serialized per terminal

    def tag(self, intent: str) -> OrderTag:
        # 31-bit tags fit every terminal kind, so one journal format serves MT4, MT5 and the simulator
        return order_tag(intent, MT4_MAGIC_BITS, self.magic_base)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _decision(intent: Intent | None) -> tuple[str, str | None] | None:
    """An action's outcome from its settled intent; None while the outcome is still unknown."""
    if intent is None:
        return None
    return ("EXECUTED", None) if intent.state is IntentState.FILLED else ("FAILED", intent.reason)


def _fill_time(intent: Intent) -> datetime | None:
    return datetime.fromisoformat(intent.fill_time) if intent.fill_time else None


@dataclass
class Timing:
    """Latency samples for the live view, the demo report and the benchmarks (monotonic seconds)."""

    frames: dict[str, float] = field(default_factory=dict)  # position id -> frame that asked for work
    frame_to_order: list[float] = field(default_factory=list)
    orders: dict[str, float] = field(default_factory=dict)  # position id -> its latest order handed over
    fired: dict[str, float] = field(default_factory=dict)  # trigger action id -> when its trail fired

    def order_sent(self, position_id: str, now: float) -> None:
        self.orders[position_id] = now
        for d in (self.orders, self.fired):
            while len(d) > 10_000:
                del d[next(iter(d))]
        frame = self.frames.pop(position_id, None)
        if frame is not None:
            self.frame_to_order.append(now - frame)
            del self.frame_to_order[:-10_000]  # bounded


@dataclass
class Counters:
    skipped_other_user: int = 0
    skipped_other_pc: int = 0
    stale_events: int = 0
    bad_records: int = 0
    orders_sent: int = 0
    fills: int = 0
    failures: int = 0
    fires: int = 0
    trigger_failures: int = 0
    claims_won: int = 0
    claims_lost: int = 0


class Executor:
    def __init__(
        self,
        *,
        cloud: CloudPort,
        journal: AsyncJournal,
        bindings: list[Binding],
        board: StatusBoard,
        on_open: Callable[[Position, Binding, Intent], None] = lambda p, b, i: None,
        on_gone: Callable[[str], None] = lambda pid: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cloud = cloud
        self.journal = journal
        self.bindings = {b.account_id: b for b in bindings}
        self.board = board
        self.on_open = on_open  # the trailing monitor starts watching an OPEN position
        self.on_gone = on_gone  # ... and stops when it is no longer open
        self.timing = Timing()
        self.clock = clock
        self.paused = False
        self.counters = Counters()
        # a lock lives while a task holds or awaits it; idle ones are collected
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._latest: dict[str, tuple[str, str]] = {}  # record id -> (updatedAt, status) last handled
        self.positions: dict[str, Position] = {}  # owned positions, latest record
        self._tasks: set[asyncio.Task[None]] = set()
        self._unknown_since: dict[str, float] = {}
        self.unknown_give_up_s = UNKNOWN_GIVE_UP_S
        self._stopping = False

    # -- plumbing -----------------------------------------------------------------------------------------

    def _lock(self, position_id: str) -> asyncio.Lock:
        lock = self._locks.get(position_id)
        if lock is None:
            lock = self._locks[position_id] = asyncio.Lock()
        return lock

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, coro: Awaitable[None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one record's failure must never stop the others
            log.exception("task failed", task=name)
            self.board.notice("error", "internal error", f"{name}: {type(e).__name__}: {e}")

    async def drain(self, grace_s: float) -> bool:
        """Stop taking work and wait for in-flight tasks (they stay journaled if cut short)."""
        self._stopping = True
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return True
        _done, still = await asyncio.wait(pending, timeout=grace_s)
        for t in still:
            t.cancel()
        return not still

    def _j(self) -> Journal:
        return self.journal.sync

    # -- events -------------------------------------------------------------------------------------------

    def handle(self, event: CloudEvent) -> None:
        """Called for every cloud event, in order; never blocks (work runs in tasks)."""
        if self._stopping:
            return
        if isinstance(event, RecordEvent):
            if self._on_record(event.record):
                pid = event.record.id if isinstance(event.record, Position) else event.record.position_id
                self.timing.frames.setdefault(pid, event.received_at)
        elif isinstance(event, BadRecord):
            self.counters.bad_records += 1
            log.warning("malformed record skipped", error=str(event.error), source=event.source)
            self.board.notice("warning", "malformed record", str(event.error))
        elif isinstance(event, LinkState):
            self.board.update(cloud=event.state)
            if event.state in ("disconnected", "auth_failed"):
                self.board.notice("warning", f"cloud {event.state}", event.detail)
        elif isinstance(event, CaughtUp):
            self.spawn(self.reconcile(), f"reconcile-{event.generation}")

    def _on_record(self, record: Position | Action) -> bool:
        """True when the record was taken on."""
        who = ownership(record, self.cloud.sub, self.bindings)
        if who is not Ownership.OWNED:
            if who is Ownership.OTHER_USER:
                self.counters.skipped_other_user += 1
            else:
                self.counters.skipped_other_pc += 1
            log.debug("not ours", record=record.id, reason=who.value)
            return False
        stamp = (record.updated_at.isoformat() if record.updated_at else "", record.status.value)
        last = self._latest.get(record.id)
        if last is not None and (stamp[0] < last[0] or stamp == last):
            self.counters.stale_events += 1
            log.debug("stale or repeated event", record=record.id, status=record.status.value)
            return False
        self._latest[record.id] = stamp
        if len(self._latest) > MAX_REMEMBERED:  # oldest first; the journal still stops any late duplicate
            del self._latest[next(iter(self._latest))]
        if isinstance(record, Position):
            self.positions[record.id] = record
            self.spawn(self._position_event(record), f"position-{record.id}-{record.status.value}")
            return record.status in (P.OPENING, P.CLOSING)
        if record.status is ActionStatus.EXECUTING:
            self.spawn(self._action_event(record), f"action-{record.id}")
            return True
        return False

    async def _position_event(self, p: Position) -> None:
        async with self._lock(p.id):
            current = self.positions.get(p.id, p)
            if current is not p and current.updated_at and p.updated_at and current.updated_at > p.updated_at:
                return  # a newer version arrived while we waited for the lock; it has its own task
            if p.status is P.OPENING:
                await self._open(p)
            elif p.status is P.CLOSING:
                await self._close(p)
            elif p.status is P.OPEN:
                await self._opened(p)
            elif p.status in POSITION_FINAL:
                self.on_gone(p.id)
                self.positions.pop(p.id, None)  # done: the journal remembers what matters
                self.timing.frames.pop(p.id, None)

    async def _opened(self, p: Position) -> None:
        intent = await self.journal.call(self._j().get_intent, intent_id(p.id, IntentKind.OPEN))
        binding = self.bindings[p.account_id]
        if intent is None or intent.state is not IntentState.FILLED:
            # another agent (or a human) trades this account: say so loudly instead of guessing
            log.error(
                "position opened without this PC", position=p.id, account=p.account_id, ticket=p.mt_ticket
            )
            self.board.notice(
                "error",
                "account traded elsewhere",
                f"position {p.id} on {binding.name} is OPEN but this PC never opened it "
                "(is the account bound on another PC too?)",
            )
            return
        if p.mt_ticket and intent.ticket and p.mt_ticket != intent.ticket:
            self.board.notice(
                "error",
                "ticket mismatch",
                f"position {p.id}: cloud says ticket {p.mt_ticket}, this PC {intent.ticket}",
            )
        self.on_open(p, binding, intent)

    # -- open ---------------------------------------------------------------------------------------------

    async def _open(self, p: Position) -> Intent | None:
        """Open ``p`` once (under its lock), report it; returns the settled intent (None: unknown yet)."""
        b = self.bindings[p.account_id]
        iid = intent_id(p.id, IntentKind.OPEN)
        tag = b.tag(iid)
        draft = Intent(
            iid, "open", p.id, p.account_id, b.name, p.symbol, p.side, p.volume, tag.magic, tag.comment
        )
        refusal = b.risk.check(p.volume, opening=True, paused=self.paused)
        max_open = b.risk.config.max_open_positions
        intent, created = await self.journal.call(self._j().write_ahead, draft, refusal, max_open)
        resend = partial(b.terminal.open_position, p.symbol, p.side, p.volume)
        if created and intent.state is IntentState.PENDING:
            intent = await self._send(b, intent, resend)
        elif created:
            log.warning("open refused", position=p.id, reason=intent.reason)
        elif intent.state in (IntentState.PENDING, IntentState.UNKNOWN):
            intent = await self._settle(b, intent, resend=resend)
        if not intent.reported:
            await self._report_open(p, intent)
        return intent if intent.state in (IntentState.FILLED, IntentState.FAILED) else None

    async def _report_open(self, p: Position, intent: Intent) -> None:
        if intent.state is IntentState.FILLED:
            outcome = await self.cloud.update_position(
                p.id,
                P.OPENING,
                P.OPEN,
                entry_price=intent.price,
                entry_time=_fill_time(intent),
                mt_ticket=intent.ticket,
            )
            done = P.OPEN
        elif intent.state is IntentState.FAILED:
            outcome = await self.cloud.update_position(
                p.id, P.OPENING, P.CANCELED, exit_reason=f"open failed: {intent.reason}"[:500]
            )
            done = P.CANCELED
        else:
            self.board.notice(
                "warning", "outcome unknown", f"open of {p.id}: will look again ({intent.reason})"
            )
            return
        await self._reported(intent, outcome, done)
        if done is P.OPEN and isinstance(outcome, Ok):
            self.board.notice(
                "info", "opened", f"{p.symbol} {p.side} {p.volume:g} at {intent.price} (#{intent.ticket})"
            )
        elif done is P.CANCELED:
            self.board.notice("error", "open failed", f"position {p.id}: {intent.reason}")

    # -- close --------------------------------------------------------------------------------------------

    async def _close(self, p: Position) -> Intent | None:
        b = self.bindings[p.account_id]
        attempts = await self.journal.call(self._j().close_attempts, p.id)
        last = attempts[-1] if attempts else None
        resend = None
        if last is not None and last.state in (IntentState.PENDING, IntentState.UNKNOWN):
            ticket = last.ticket or ""
            resend = lambda tag: b.terminal.close_position(ticket, p.volume, tag)  # noqa: E731
            intent = await self._settle(b, last, resend=resend, closing=ticket)
        elif last is not None and (last.state is IntentState.FILLED or not last.reported):
            intent = last  # already closed (or its failure not yet reported): never a second close
        else:
            intent = await self._new_close(b, p, len(attempts) + 1)
        if not intent.reported:
            await self._report_close(p, intent)
        return intent if intent.state in (IntentState.FILLED, IntentState.FAILED) else None

    async def _new_close(self, b: Binding, p: Position, attempt: int) -> Intent:
        iid = f"{intent_id(p.id, IntentKind.CLOSE)}:{attempt}"
        tag = b.tag(iid)
        opened = await self.journal.call(self._j().get_intent, intent_id(p.id, IntentKind.OPEN))
        ticket = p.mt_ticket or (opened.ticket if opened else None)
        intent = Intent(
            iid,
            "close",
            p.id,
            p.account_id,
            b.name,
            p.symbol,
            p.side.opposite,
            p.volume,
            tag.magic,
            tag.comment,
            ticket=ticket,
        )
        refusal = b.risk.check(p.volume, opening=False, paused=self.paused)
        if ticket is None:
            refusal = "no terminal ticket is known for this position"
        if refusal or ticket is None:
            return await self.journal.call(
                self._j().add_intent, replace(intent, state=IntentState.FAILED, reason=refusal)
            )
        intent = await self.journal.call(self._j().add_intent, intent)
        to_close: str = ticket
        intent = await self._send(
            b, intent, lambda tag: b.terminal.close_position(to_close, p.volume, tag), closing=to_close
        )
        if intent.state is IntentState.FAILED and opened is not None:
            # the close failed: maybe because the position is already gone (stop-out while we were closing)
            gone = await self._closed_outside(b, opened)
            if gone is not None:
                return await self.journal.call(
                    self._j().record_result, iid, IntentState.FILLED, price=gone[0], fill_time=_iso(gone[1]),
                    reason=f"stopped: {gone[2]}",
                )  # fmt: skip
        return intent

    async def _report_close(self, p: Position, intent: Intent) -> None:
        expected = p.status if p.status in (P.CLOSING, P.OPEN) else P.CLOSING
        if intent.state is IntentState.FILLED:
            stopped = (intent.reason or "").startswith("stopped: ")
            status = P.STOPPED if stopped else P.CLOSED
            reason = (
                intent.reason.removeprefix("stopped: ")
                if stopped and intent.reason
                else "closed by hedge-agent"
            )
            outcome = await self.cloud.update_position(
                p.id,
                expected,
                status,
                exit_price=intent.price,
                exit_time=_fill_time(intent),
                exit_reason=reason,
            )
            await self._reported(intent, outcome, status)
            if isinstance(outcome, Ok):
                self.on_gone(p.id)
                self.board.notice("info", "closed", f"{p.symbol} #{intent.ticket} at {intent.price}")
                if stopped:
                    await self.fire(p.id, "stopped")
        elif intent.state is IntentState.FAILED:
            outcome = await self.cloud.update_position(
                p.id, expected, P.OPEN, exit_reason=f"close failed: {intent.reason}"[:500]
            )
            await self._reported(intent, outcome, P.OPEN)
            self.board.notice("error", "close failed", f"position {p.id}: {intent.reason}")
        else:
            self.board.notice(
                "warning", "outcome unknown", f"close of {p.id}: will look again ({intent.reason})"
            )

    # -- orders ---------------------------------------------------------------------------------------------

    async def _send(
        self,
        b: Binding,
        intent: Intent,
        order: Callable[[OrderTag], Awaitable[OrderResult]],
        closing: str | None = None,
    ) -> Intent:
        """The order leaves (it is journaled already); bounded retries of rejections that say so."""
        tag = OrderTag(intent.intent_id, intent.magic, intent.comment)
        result: OrderResult = Unknown("not sent")
        async with b.lock:
            await self._connected(b)
            for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
                if delay:
                    await asyncio.sleep(delay)
                self.timing.order_sent(intent.position_id, time.monotonic())
                b.risk.sent()
                self.counters.orders_sent += 1
                try:
                    result = await order(tag)
                except Exception as e:  # lost pipe, bridge gone...: the order may have left
                    log.warning("order raised", intent=intent.intent_id, error=repr(e))
                    result = Unknown(f"terminal error: {e}")
                if not (isinstance(result, Rejected) and result.retryable) or attempt == len(RETRY_DELAYS):
                    break
                log.info(
                    "retryable rejection", intent=intent.intent_id, code=result.code, reason=result.reason
                )
            if isinstance(result, Unknown):
                result, _ = await self._lookup(b, tag, result, closing)
        return await self._record(intent, result)

    async def _connected(self, b: Binding) -> None:
        """A terminal that is reconnecting (EA restarting, MT5 worker respawning) gets a short grace before
        an order is sent, so a blip does not turn into a canceled position."""
        deadline = self.clock() + TERMINAL_GRACE_S
        while b.terminal.health().connection is not Connection.CONNECTED and self.clock() < deadline:
            await asyncio.sleep(0.1)

    async def _lookup(
        self, b: Binding, tag: OrderTag, unknown: Unknown, closing: str | None
    ) -> tuple[Filled | Unknown, bool]:
        """Find the tag on the terminal: (the fill or ``unknown``, whether every lookup got an answer).
        Only an answered "not there" allows a resend; a terminal that cannot answer proves nothing."""
        answered = True
        for attempt in range(LOOKUPS):
            if attempt:
                await asyncio.sleep(0.3 * attempt)
            try:
                fill = fill_from_records(await b.terminal.find(tag), tag, closing)
            except Exception as e:
                log.warning("tag lookup failed", intent=tag.intent_id, error=repr(e))
                answered = False
                continue
            if fill is not None:
                return fill, True
        return unknown, answered

    async def _settle(
        self,
        b: Binding,
        intent: Intent,
        *,
        resend: Callable[[OrderTag], Awaitable[OrderResult]],
        closing: str | None = None,
    ) -> Intent:
        """An intent whose order may have left (crash, timeout): find it by tag. A ``pending`` intent left by
        a previous run and found nowhere after the lookups was never executed: send it (same tag)."""
        tag = OrderTag(intent.intent_id, intent.magic, intent.comment)
        found, answered = await self._lookup(b, tag, Unknown(intent.reason or "unknown"), closing)
        if isinstance(found, Filled):
            return await self._record(intent, found)
        if not (answered and b.terminal.health().ok):
            return intent
        if intent.state is IntentState.PENDING:
            log.warning("resending an intent never seen on the terminal", intent=intent.intent_id)
            return await self._send(b, intent, resend, closing)
        # UNKNOWN: never resent. Once the terminal has answered "not there" for long enough, it was not
        # executed: a recorded failure, so the intent ends and no duplicate can ever appear.
        since = self._unknown_since.setdefault(intent.intent_id, self.clock())
        if self.clock() - since >= self.unknown_give_up_s:
            self._unknown_since.pop(intent.intent_id, None)
            return await self._record(
                intent,
                Rejected(
                    intent.code or 0,
                    f"not executed: not on the terminal {self.unknown_give_up_s:g} s after an unknown outcome ({intent.reason})",
                    False,
                ),
            )
        return intent

    async def _record(self, intent: Intent, result: OrderResult) -> Intent:
        if isinstance(result, Filled):
            self.counters.fills += 1
            return await self.journal.call(
                self._j().record_result, intent.intent_id, IntentState.FILLED, ticket=result.ticket,
                price=result.price, fill_time=_iso(result.time), code=result.broker_code,
            )  # fmt: skip
        if isinstance(result, Rejected):
            self.counters.failures += 1
            return await self.journal.call(
                self._j().record_result,
                intent.intent_id,
                IntentState.FAILED,
                code=result.code,
                reason=result.reason,
            )
        return await self.journal.call(
            self._j().record_result,
            intent.intent_id,
            IntentState.UNKNOWN,
            code=result.code,
            reason=result.reason,
        )

    async def _reported(
        self, intent: Intent, outcome: MutationOutcome[Position], target: PositionStatus
    ) -> None:
        """Mark the intent reported only on knowledge: the write landed, or the cloud has moved on.
        Denials and failures keep it unreported: reconciliation retries (a sign-in that lapsed, a
        backend that is down), and the user is told."""
        if isinstance(outcome, Ok):
            await self.journal.call(self._j().mark_reported, intent.intent_id)
            self._note_own_write(outcome.record)
            return
        if isinstance(outcome, Failed):
            log.warning("report not accepted; will retry", intent=intent.intent_id, outcome=repr(outcome))
            self.board.notice("warning", "report pending", f"{intent.intent_id}: {outcome.message}")
            return
        if isinstance(outcome, Unauthorized | NotFound):  # denied for good (record reassigned or deleted)
            log.error("report denied", intent=intent.intent_id, outcome=repr(outcome))
            self.board.notice("error", "cloud denied a report", f"{intent.intent_id}: {outcome.message}")
            await self.journal.call(self._j().mark_reported, intent.intent_id)
            return
        current = outcome.current if isinstance(outcome.current, Position) else None
        current = current or await self.cloud.get_position(intent.position_id)
        if current is not None and current.status is not target:
            log.error(
                "cloud moved on", intent=intent.intent_id, current=current.status.value, target=target.value
            )
            self.board.notice(
                "error",
                "position changed under us",
                f"{intent.intent_id}: the cloud shows {current.status.value}, this PC wanted {target.value} "
                f"({intent.state.value} on the terminal, ticket {intent.ticket}) — check this position by hand",
            )
        await self.journal.call(self._j().mark_reported, intent.intent_id)

    def _note_own_write(self, record: Position | Action) -> None:
        """Our own update comes back on the subscription: keep it from being mistaken for news."""
        if record.updated_at is not None:
            stamp = (record.updated_at.isoformat(), record.status.value)
            last = self._latest.get(record.id)
            if last is None or stamp[0] >= last[0]:
                self._latest[record.id] = stamp
        if len(self._latest) > MAX_REMEMBERED:  # oldest first; the journal still stops any late duplicate
            del self._latest[next(iter(self._latest))]
        if isinstance(record, Position):
            self.positions[record.id] = record
            if record.status is P.OPEN:
                self.spawn(self._opened_after_write(record), f"track-{record.id}")

    async def _opened_after_write(self, p: Position) -> None:
        async with self._lock(p.id):
            await self._opened(p)

    # -- actions ------------------------------------------------------------------------------------------

    async def _action_event(self, a: Action) -> None:
        async with self._lock(a.position_id):
            rec = await self.journal.call(self._j().begin_action, a.id, a.position_id, a.type.value)
            if rec.reported:
                return
            outcome, reason = rec.outcome, rec.reason
            if outcome is None:
                decided = await self._execute(a)
                if decided is None:
                    return  # outcome unknown: reconciliation comes back to it
                outcome, reason = decided
                await self.journal.call(self._j().decide_action, a.id, outcome, reason)
            await self._finish_action(a.id, ActionStatus(outcome), reason)

    async def _execute(self, a: Action) -> tuple[str, str | None] | None:
        # the subscription keeps this cache current; a stale entry only costs a failed conditional update,
        # after which the record is read again (_after_move)
        p = self.positions.get(a.position_id) or await self.cloud.get_position(a.position_id)
        if p is None:
            return "FAILED", f"position {a.position_id} not found (or not readable by this user)"
        if ownership(p, self.cloud.sub, self.bindings) is not Ownership.OWNED:
            return "FAILED", f"position {p.id} is not on a terminal of this PC"
        self.positions[p.id] = p
        if a.type is ActionType.ENTRY:
            return await self._execute_entry(p)
        return await self._execute_close(p)

    async def _execute_entry(self, p: Position) -> tuple[str, str | None] | None:
        if p.status is P.PENDING:
            moved = await self.cloud.update_position(p.id, P.PENDING, P.OPENING)
            p = await self._after_move(p, moved)
        if p.status is P.OPENING:
            return _decision(await self._open(p))
        if p.status in (P.OPEN, P.CLOSING, P.CLOSED):
            opened = await self.journal.call(self._j().get_intent, intent_id(p.id, IntentKind.OPEN))
            if opened is not None and opened.state is IntentState.FILLED:
                return "EXECUTED", None
        return "FAILED", f"position {p.id} is {p.status.value}; nothing to open"

    async def _execute_close(self, p: Position) -> tuple[str, str | None] | None:
        if p.status is P.OPEN:
            moved = await self.cloud.update_position(p.id, P.OPEN, P.CLOSING)
            p = await self._after_move(p, moved)
        if p.status is P.CLOSING:
            return _decision(await self._close(p))
        if p.status is P.CLOSED:
            attempts = await self.journal.call(self._j().close_attempts, p.id)
            if attempts and attempts[-1].state is IntentState.FILLED:
                return "EXECUTED", None
        return "FAILED", f"position {p.id} is {p.status.value}; nothing to close"

    async def _after_move(self, p: Position, moved: MutationOutcome[Position]) -> Position:
        if isinstance(moved, Ok):
            self._note_own_write(moved.record)
            return moved.record
        current = await self.cloud.get_position(p.id)
        return current or p

    async def _finish_action(self, action_id: str, status: ActionStatus, reason: str | None) -> None:
        outcome = await self.cloud.finish_action(action_id, status)
        if isinstance(outcome, Failed):
            log.warning("action report failed; will retry", action=action_id, error=outcome.message)
            return
        if isinstance(outcome, Ok):
            self._note_own_write(outcome.record)
        elif not isinstance(outcome, ConditionFailed):
            log.error("action report refused", action=action_id, outcome=repr(outcome))
        await self.journal.call(self._j().mark_action_reported, action_id)
        if status is ActionStatus.FAILED:
            self.board.notice("error", "action failed", f"{action_id}: {reason}")
        log.info("action finished", action=action_id, status=status.value, reason=reason)

    # -- fires: trail fired or position stopped -> claim trigger actions -----------------------------------

    async def fire(self, position_id: str, cause: str) -> None:
        self.counters.fires += 1
        p = self.positions.get(position_id) or await self.cloud.get_position(position_id)
        ids: tuple[str, ...] = ()
        if p is not None:
            try:
                ids = trigger_action_ids(p)
            except RecordError as e:
                self._trigger_failure(position_id, str(e))
        now = time.monotonic()
        for aid in ids:
            self.timing.fired.setdefault(aid, now)
        fire = await self.journal.call(self._j().add_fire, position_id, cause, ids)
        log.info("fired", position=position_id, cause=cause, triggers=list(fire.trigger_ids))
        await self._claim(position_id, fire.pending_ids)

    async def _claim(self, position_id: str, action_ids: tuple[str, ...]) -> None:
        async def one(aid: str) -> None:
            outcome = await self.cloud.claim_action(aid)
            if isinstance(outcome, Ok):
                self.counters.claims_won += 1
                log.info("trigger claimed", position=position_id, action=aid)
            elif isinstance(outcome, ConditionFailed):
                self.counters.claims_lost += 1
                log.info("trigger already claimed", position=position_id, action=aid)
            elif isinstance(outcome, Unauthorized | NotFound):
                self._trigger_failure(position_id, f"action {aid}: {outcome.message}")
            else:
                log.warning("claim failed; will retry", action=aid, error=outcome.message)
                return
            await self.journal.call(self._j().settle_claim, position_id, aid)

        await asyncio.gather(*(one(aid) for aid in action_ids))

    def _trigger_failure(self, position_id: str, message: str) -> None:
        self.counters.trigger_failures += 1
        log.error("trigger failure", position=position_id, error=message)
        self.board.notice("error", "trigger failed", f"position {position_id}: {message}")

    # -- stop-outs: positions gone from the terminal without us --------------------------------------------

    async def _closed_outside(self, b: Binding, opened: Intent) -> tuple[float, datetime, str] | None:
        tag = OrderTag(opened.intent_id, opened.magic, opened.comment)
        try:
            records = await b.terminal.find(tag)
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
                return r.close_price, r.close_time, r.close_reason or "closed outside hedge-agent"
        return None

    async def watch_terminal(self, b: Binding) -> None:
        """One pass: every position this PC opened on ``b`` and believes open must still be there."""
        try:
            live = {p.ticket for p in await b.terminal.positions()}
        except Exception as e:
            log.debug("positions snapshot failed", terminal=b.name, error=repr(e))
            return
        for opened in await self.journal.call(self._j().open_tickets):
            if opened.terminal != b.name or opened.ticket in live:
                continue
            p = self.positions.get(opened.position_id)
            if p is None or p.status is not P.OPEN:
                continue
            async with self._lock(p.id):
                p = self.positions.get(opened.position_id)
                if p is None or p.status is not P.OPEN:
                    continue
                attempts = await self.journal.call(self._j().close_attempts, p.id)
                if attempts and attempts[-1].state is not IntentState.FAILED:
                    continue  # our own close is in flight or done: the close flow reports it
                gone = await self._closed_outside(b, opened)
                if gone is None:
                    continue
                await self._report_stopped(b, p, opened, gone, len(attempts) + 1)

    async def _report_stopped(
        self, b: Binding, p: Position, opened: Intent, gone: tuple[float, datetime, str], attempt: int
    ) -> None:
        price, when, why = gone
        iid = f"{intent_id(p.id, IntentKind.CLOSE)}:{attempt}"
        intent = Intent(
            iid, "close", p.id, p.account_id, b.name, p.symbol, p.side.opposite, p.volume, 0, "stopped",
            ticket=opened.ticket, state=IntentState.FILLED, price=price, fill_time=_iso(when), reason=f"stopped: {why}",
        )  # fmt: skip
        intent = await self.journal.call(self._j().add_intent, intent)
        log.warning("position gone from the terminal", position=p.id, ticket=opened.ticket, reason=why)
        await self._report_close(p, intent)

    # -- reconciliation ------------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Journal x terminal x cloud: report what was never reported, settle what is unknown, re-claim
        triggers, and notice stop-outs. Safe to run any time, as often as wanted."""
        j = self._j()
        for intent in await self.journal.call(j.unreported_intents):
            b = self.bindings.get(intent.account_id)
            if b is None:
                log.error("journal intent for an account no longer configured", intent=intent.intent_id)
                continue
            p = await self.cloud.get_position(intent.position_id)
            if p is None:
                continue
            self.positions[p.id] = p
            async with self._lock(p.id):
                if intent.kind == "open" and p.status is P.OPENING:
                    await self._open(p)
                elif intent.kind == "close" and p.status in (P.CLOSING, P.OPEN):
                    await self._close(p)
                elif p.status in POSITION_FINAL or p.status is P.OPEN:
                    # the cloud moved on (our report landed, or the UI changed it): nothing to send
                    await self.journal.call(j.mark_reported, intent.intent_id)
        for rec in await self.journal.call(j.unreported_actions):
            a = await self.cloud.get_action(rec.action_id)
            if a is not None and a.status is ActionStatus.EXECUTING:
                await self._action_event(a)
            else:
                await self.journal.call(j.mark_action_reported, rec.action_id)
        for fire in await self.journal.call(j.unsettled_fires):
            await self._claim(fire.position_id, fire.pending_ids)
        for b in self.bindings.values():
            await self.watch_terminal(b)
