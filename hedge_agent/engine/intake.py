"""Cloud events in: keep only this PC's records, drop stale and repeated versions, and start the work
(per position, in arrival order, under its lock). Never blocks: work runs in tasks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from hedge_agent.domain.enums import ActionStatus, PositionStatus
from hedge_agent.domain.models import Action, Position
from hedge_agent.domain.ownership import Ownership, ownership

from .actions import ActionFlow
from .context import Core
from .events import BadRecord, CaughtUp, CloudEvent, LinkState, RecordEvent
from .positions import PositionFlow

log = structlog.get_logger(__name__)
P = PositionStatus


class Intake:
    def __init__(
        self,
        core: Core,
        flow: PositionFlow,
        actions: ActionFlow,
        reconcile: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.core, self.flow, self.actions, self.reconcile = core, flow, actions, reconcile

    def handle(self, event: CloudEvent) -> None:
        core = self.core
        if core.stopping:
            return
        if isinstance(event, RecordEvent):
            if self._on_record(event.record):
                pid = event.record.id if isinstance(event.record, Position) else event.record.position_id
                core.timing.frames.setdefault(pid, event.received_at)
        elif isinstance(event, BadRecord):
            core.counters.bad_records += 1
            core.board.notice("warning", "malformed record", str(event.error))
        elif isinstance(event, LinkState):
            core.board.update(cloud=event.state)
            if event.state in ("disconnected", "auth_failed"):
                core.board.notice("warning", f"cloud {event.state}", event.detail)
        elif isinstance(event, CaughtUp):
            core.spawn(self.reconcile(), f"reconcile-{event.generation}")

    def _on_record(self, record: Position | Action) -> bool:
        """True when the record was taken on."""
        core = self.core
        who = ownership(record, core.cloud.sub, core.bindings)
        if who is not Ownership.OWNED:
            if who is Ownership.OTHER_USER:
                core.counters.skipped_other_user += 1
            else:
                core.counters.skipped_other_pc += 1
            log.debug("not ours", record=record.id, reason=who.value)
            return False
        stamp = (record.updated_at.isoformat() if record.updated_at else "", record.status.value)
        last = core.latest.get(record.id)
        if last is not None and (stamp[0] < last[0] or stamp == last):
            core.counters.stale_events += 1
            log.debug("stale or repeated event", record=record.id, status=record.status.value)
            return False
        core.remember(record.id, stamp)
        if isinstance(record, Position):
            core.positions[record.id] = record
            if record.status in (P.OPEN, P.CLOSING):  # a trail edit takes effect now, not after the lock
                core.spawn(self._retune(record), f"retune-{record.id}")
            core.spawn(self._position(record), f"position-{record.id}-{record.status.value}")
            return record.status in (P.OPENING, P.CLOSING)
        if record.status is ActionStatus.EXECUTING:
            core.spawn(self.actions.on_action(record), f"action-{record.id}")
            return True
        return False

    async def _retune(self, p: Position) -> None:
        """A trail edit takes effect now, even while an order holds the position's lock; the lifecycle
        work waits its turn."""
        await self.flow.retune(p)

    async def _position(self, p: Position) -> None:
        async with self.core.lock(p.id):
            current = self.core.positions.get(p.id, p)
            if current is not p and current.updated_at and p.updated_at and current.updated_at > p.updated_at:
                return  # a newer version arrived while we waited for the lock; it has its own task
            await self.flow.run(p)
