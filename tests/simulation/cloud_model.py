"""An in-memory model of the AppSync backend, with the semantics the agent relies on (see the backend
CONTRACT in the shared design): conditional updates (``condition: {status: {eq: expected}}`` fails with
ConditionalCheckFailed when the stored status differs), owner checks (the ``userId`` owner field; reading
or writing another owner's record is denied), owner-filtered subscriptions that deliver every mutation to
every subscriber of that owner, and the catch-up queries (positions OPENING/OPEN/CLOSING, actions
PENDING/EXECUTING) after a (re)subscribe.

Faults, all drawn from the world's seeded RNG: a subscription frame dropped (AppSync drops updates whose
mutation did not select ``userId``), duplicated, delayed (delays differ, so frames reorder); a mutation that
fails before applying, or applies and then times out (the caller sees ``Failed`` while the record changed);
a read that raises; a subscription that drops and re-subscribes (LinkState, catch-up, CaughtUp).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hedge_agent.cloud.graphql_http import AccessDenied
from hedge_agent.domain.enums import ActionStatus, PCStatus, PositionStatus
from hedge_agent.domain.models import Account, Action, Position, User
from hedge_agent.errors import RetryableError

try:
    from hedge_agent.engine.events import CaughtUp, CloudEvent, LinkState, RecordEvent, RecordSource
    from hedge_agent.engine.outcomes import (
        ConditionFailed,
        Failed,
        MutationOutcome,
        NotFound,
        Ok,
        Unauthorized,
    )
except ImportError:  # main before issue 11 moved them
    from hedge_agent.cloud.events import (  # type: ignore[import-not-found,no-redef,unused-ignore]
        CaughtUp,
        CloudEvent,
        LinkState,
        RecordEvent,
        RecordSource,
    )  # fmt: skip
    from hedge_agent.cloud.outcomes import (  # type: ignore[import-not-found,no-redef,assignment,unused-ignore]
        ConditionFailed,
        Failed,
        MutationOutcome,
        NotFound,
        Ok,
        Unauthorized,
    )  # fmt: skip


@dataclass
class CloudFaults:
    drop: float = 0.0  # a subscription frame is never delivered
    duplicate: float = 0.0  # ... is delivered twice
    max_delay: float = 0.05  # each frame is delayed uniformly in [0, max_delay] (so frames reorder)
    mutation_fails: float = 0.0  # a mutation fails before it applies
    mutation_times_out: float = 0.0  # a mutation applies, then the caller sees a timeout
    read_fails: float = 0.0  # a get raises a transient error
    latency: float = 0.01  # each request, each way (max; uniform)

    def calm(self) -> CloudFaults:
        return CloudFaults(max_delay=self.max_delay, latency=self.latency)


class Dead(asyncio.CancelledError):
    """Raised into a crashed incarnation that still calls its ports."""


class SimCloud:
    """The backend's store. Admin writes are unconditional (what an admin UI does); agent writes go through
    a :class:`CloudView` and are conditional."""

    def __init__(
        self, rng: random.Random, epoch: datetime, now: Callable[[], float], trace: list[str]
    ) -> None:
        self.rng = rng
        self.epoch = epoch
        self.now = now
        self.trace = trace
        self.positions: dict[str, Position] = {}
        self.actions: dict[str, Action] = {}
        self.deleted: set[str] = set()
        self.views: list[CloudView] = []
        self.faults = CloudFaults()
        self._last_stamp = epoch
        #: every status a record ever had, in order (for the invariants)
        self.history: dict[str, list[str]] = {}
        self.mutations = 0

    def stamp(self) -> datetime:
        t = self.epoch + timedelta(seconds=self.now())
        t = t.replace(microsecond=t.microsecond // 1000 * 1000)
        if t <= self._last_stamp:  # AppSync: millisecond updatedAt, never equal for one record in practice
            t = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = t
        return t

    # -- writes ----------------------------------------------------------------------------------------

    def _store(self, record: Position | Action, source: RecordSource, by: str) -> None:
        if isinstance(record, Position):
            self.positions[record.id] = record
        else:
            self.actions[record.id] = record
        self.history.setdefault(record.id, []).append(record.status.value)
        self.trace.append(f"{self.now():.3f} cloud {by} {source} {record.id} {record.status.value}")
        for view in self.views:
            view.deliver(record, source)

    def admin_create(self, record: Position | Action) -> None:
        t = self.stamp()
        self._store(record.model_copy(update={"created_at": t, "updated_at": t}), "create", "admin")

    def admin_update(self, record_id: str, **changes: Any) -> Position | Action | None:
        current: Position | Action | None = self.positions.get(record_id) or self.actions.get(record_id)
        if current is None:
            return None
        new = current.model_copy(update={**changes, "updated_at": self.stamp()})
        self._store(new, "update", "admin")
        return new

    def admin_delete(self, record_id: str) -> None:
        self.positions.pop(record_id, None)
        self.actions.pop(record_id, None)
        self.deleted.add(record_id)
        self.trace.append(f"{self.now():.3f} cloud admin delete {record_id}")

    def conditional(
        self, sub: str, record_id: str, expected: str, changes: dict[str, Any], who: str
    ) -> MutationOutcome[Any]:
        current: Position | Action | None = self.positions.get(record_id) or self.actions.get(record_id)
        if current is None:
            return NotFound(f"{record_id} does not exist")
        if current.user_id != sub:
            return Unauthorized(f"Not Authorized to access update on {record_id}")
        if current.status.value != expected:
            return ConditionFailed(
                f"{record_id} is {current.status.value}, expected {expected}", current=current
            )
        new = current.model_copy(update={**changes, "updated_at": self.stamp()})
        self.mutations += 1
        self._store(new, "update", who)
        return Ok(new)

    def read(self, sub: str, record_id: str) -> Position | Action | None:
        current: Position | Action | None = self.positions.get(record_id) or self.actions.get(record_id)
        if current is not None and current.user_id != sub:
            raise AccessDenied(f"Not Authorized to access get on {record_id}")
        return current


@dataclass
class CloudView:
    """One agent incarnation's link (a :class:`CloudPort`)."""

    cloud: SimCloud
    user: str
    name: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[CloudEvent] = field(default_factory=asyncio.Queue)
    alive: bool = True
    connected: bool = True
    generation: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    #: position id -> (when, updatedAt, trailWidth) of every version this agent received or read
    seen: dict[str, list[tuple[float, str, float]]] = field(default_factory=dict)
    #: see SimTerminal.on_call: the world crashes the agent before or right after a chosen request
    on_call: Callable[[str], str | None] = lambda what: None
    die: Callable[[], None] = lambda: None

    @property
    def sub(self) -> str:
        return self.user

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- subscription ----------------------------------------------------------------------------------

    def deliver(self, record: Position | Action, source: RecordSource) -> None:
        if not (self.alive and self.connected) or record.user_id != self.user:
            return
        f, rng = self.cloud.faults, self.cloud.rng
        if rng.random() < f.drop:
            self._count("frames_dropped")
            return
        copies = 2 if rng.random() < f.duplicate else 1
        if copies == 2:
            self._count("frames_duplicated")
        for _ in range(copies):
            delay = rng.uniform(0, f.max_delay)
            self.loop.call_later(delay, self._put, RecordEvent(record, source, self.loop.time()))

    def _put(self, event: CloudEvent) -> None:
        if self.alive:
            if isinstance(event, RecordEvent) and isinstance(event.record, Position):
                self._seen(event.record)
            self.queue.put_nowait(event)

    def _seen(self, p: Position) -> None:
        """What this agent was told about a position (the trail check judges a fire by it)."""
        stamp = p.updated_at.isoformat() if p.updated_at else ""
        self.seen.setdefault(p.id, []).append((self.loop.time(), stamp, p.trail_width))

    def start(self, catch_up_every_s: float | None = 30.0) -> None:
        """The first subscribe: catch-up, then CaughtUp; then the same catch-up every ``catch_up_every_s``
        while the link is up (design §1.2: the stream alone can miss events), None: only on (re)connect."""
        self.loop.call_soon(self._catch_up)
        if catch_up_every_s is not None:
            self.loop.call_later(catch_up_every_s, self._periodic, catch_up_every_s)

    def _periodic(self, every: float) -> None:
        if not self.alive:
            return
        if self.connected:
            self._count("periodic_catch_ups")
            self._catch_up()
        self.loop.call_later(every, self._periodic, every)

    def drop_link(self) -> None:
        """The WebSocket closes: frames are lost until the link is back and has caught up."""
        if not self.connected:
            return
        self.connected = False
        self._count("link_drops")
        self._put(LinkState("disconnected", "simulated drop"))

    def restore_link(self) -> None:
        if self.connected or not self.alive:
            return
        self.connected = True
        self._put(LinkState("connected"))
        self._catch_up()

    def _catch_up(self) -> None:
        if not self.alive:
            return
        self.generation += 1
        for status in (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING):
            for p in self.cloud.positions.values():
                if p.user_id == self.user and p.status is status:
                    self._put(RecordEvent(p, "catchup", self.loop.time()))
        for a_status in (ActionStatus.PENDING, ActionStatus.EXECUTING):
            for a in self.cloud.actions.values():
                if a.user_id == self.user and a.status is a_status:
                    self._put(RecordEvent(a, "catchup", self.loop.time()))
        self._put(CaughtUp(self.generation))

    async def _events(self) -> AsyncIterator[CloudEvent]:
        while True:
            event = await self.queue.get()
            if not self.alive:
                raise Dead()
            yield event

    def events(self) -> AsyncIterator[CloudEvent]:
        return self._events()

    # -- requests --------------------------------------------------------------------------------------

    async def _latency(self) -> None:
        if not self.alive:
            raise Dead()
        await asyncio.sleep(self.cloud.rng.uniform(0, self.cloud.faults.latency))
        if not self.alive:
            raise Dead()

    def _enter(self, what: str) -> bool:
        mode = self.on_call(what)
        if mode == "before":
            raise Dead()
        return mode == "after"

    def _leave(self, die_after: bool) -> None:
        if die_after:
            self.die()
            raise Dead()

    async def _get(self, record_id: str) -> Position | Action | None:
        die_after = self._enter(f"get {record_id}")
        await self._latency()
        if self.cloud.rng.random() < self.cloud.faults.read_fails:
            self._count("reads_failed")
            raise RetryableError(f"get {record_id}: connection reset (simulated)")
        record = self.cloud.read(self.user, record_id)
        await self._latency()
        self._leave(die_after)
        return record

    async def get_position(self, position_id: str) -> Position | None:
        r = await self._get(position_id)
        if isinstance(r, Position):
            self._seen(r)
            return r
        return None

    async def get_action(self, action_id: str) -> Action | None:
        r = await self._get(action_id)
        return r if isinstance(r, Action) else None

    async def positions_by_status(self, status: PositionStatus) -> list[Position]:
        """The index query (getPositionsByUserAndStatus): this user's positions in ``status``."""
        die_after = self._enter(f"query {status.value}")
        await self._latency()
        if self.cloud.rng.random() < self.cloud.faults.read_fails:
            self._count("reads_failed")
            raise RetryableError(f"positions {status.value}: connection reset (simulated)")
        found = [p for p in self.cloud.positions.values() if p.user_id == self.user and p.status is status]
        await self._latency()
        self._leave(die_after)
        return found

    async def _mutate(self, record_id: str, expected: str, changes: dict[str, Any]) -> MutationOutcome[Any]:
        die_after = self._enter(f"mutate {record_id}")
        await self._latency()
        f, rng = self.cloud.faults, self.cloud.rng
        if rng.random() < f.mutation_fails:
            self._count("mutations_failed")
            return Failed(f"{record_id}: connection reset (simulated)", retryable=True)
        outcome = self.cloud.conditional(self.user, record_id, expected, changes, self.name)
        self._leave(die_after)
        if isinstance(outcome, Ok) and rng.random() < f.mutation_times_out:
            self._count("mutations_timed_out")
            await self._latency()
            return Failed(f"{record_id}: timed out waiting for the answer (simulated)", retryable=True)
        await self._latency()
        # the answer carries the record as it now is (the agent learns newer fields, e.g. a trailWidth edit
        # it got no frame for, from it): that is a version this agent was told
        told = outcome.record if isinstance(outcome, Ok) else getattr(outcome, "current", None)
        if isinstance(told, Position):
            self._seen(told)
        return outcome

    async def claim_action(self, action_id: str) -> MutationOutcome[Action]:
        return await self._mutate(action_id, "PENDING", {"status": ActionStatus.EXECUTING})

    async def finish_action(self, action_id: str, status: ActionStatus) -> MutationOutcome[Action]:
        return await self._mutate(action_id, "EXECUTING", {"status": status})

    async def update_position(
        self,
        position_id: str,
        expected: PositionStatus,
        status: PositionStatus,
        *,
        entry_price: float | None = None,
        entry_time: datetime | None = None,
        mt_ticket: str | None = None,
        exit_price: float | None = None,
        exit_time: datetime | None = None,
        exit_reason: str | None = None,
    ) -> MutationOutcome[Position]:
        changes: dict[str, Any] = {"status": status}
        for k, v in (
            ("entry_price", entry_price),
            ("entry_time", entry_time),
            ("mt_ticket", mt_ticket),
            ("exit_price", exit_price),
            ("exit_time", exit_time),
            ("exit_reason", exit_reason),
        ):
            if v is not None:
                changes[k] = v
        return await self._mutate(position_id, expected.value, changes)

    async def update_account(
        self, account_id: str, *, balance: float, credit: float, equity: float, last_updated: datetime
    ) -> MutationOutcome[Account]:
        await self._latency()
        return NotFound("accounts are not modelled")

    async def set_pc_status(self, status: PCStatus) -> MutationOutcome[User]:
        await self._latency()
        return NotFound("users are not modelled")
