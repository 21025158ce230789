"""Actions (ENTRY/CLOSE) claimed EXECUTING: run the position step they ask for and end them EXECUTED or
FAILED, once. The step itself is the position's (``PositionFlow``): an action and a record edit asking for
the same open meet in the same intent."""

from __future__ import annotations

import structlog

from hedge_agent.domain.decide import View
from hedge_agent.domain.enums import ActionStatus, ActionType, PositionStatus
from hedge_agent.domain.intents import IntentState
from hedge_agent.domain.models import Action, Position
from hedge_agent.domain.ownership import Ownership, ownership

from .context import Core
from .outcomes import MutationOutcome, Ok
from .positions import PositionFlow
from .reports import Reporter

log = structlog.get_logger(__name__)
P = PositionStatus
Decision = tuple[str, str | None] | None  # (EXECUTED | FAILED, reason); None: outcome not known yet


class ActionFlow:
    def __init__(self, core: Core, flow: PositionFlow, reports: Reporter) -> None:
        self.core, self.flow, self.reports = core, flow, reports

    async def on_action(self, a: Action) -> None:
        core = self.core
        async with core.lock(a.position_id):
            rec = await core.journal.call(core.j.begin_action, a.id, a.position_id, a.type.value)
            if rec.reported:
                return
            outcome, reason = rec.outcome, rec.reason
            if outcome is None:
                decided = await self._execute(a)
                if decided is None:
                    return  # outcome unknown: reconciliation comes back to it
                outcome, reason = decided
                await core.journal.call(core.j.decide_action, a.id, outcome, reason)
            await self.reports.finish_action(a.id, ActionStatus(outcome), reason)

    async def _execute(self, a: Action) -> Decision:
        core = self.core
        try:
            # the subscription keeps this cache current; a stale entry only costs a failed conditional
            # update, after which the record is read again
            cached = core.positions.get(a.position_id)
            p = cached or await core.cloud.get_position(a.position_id)
        except Exception as e:  # denied, malformed, backend error: this action ends, the others go on
            return "FAILED", f"position {a.position_id} cannot be read: {type(e).__name__}: {e}"[:500]
        if p is None:
            return "FAILED", f"position {a.position_id} not found (or not readable by this user)"
        if ownership(p, core.cloud.sub, core.bindings) is not Ownership.OWNED:
            return "FAILED", f"position {p.id} is not on a terminal of this PC"
        core.positions[p.id] = p
        if p is not cached:  # a version read now: a trailWidth edit it carries takes effect
            await self.flow.retune(p)
        core.action_driven.add(p.id)
        try:
            if a.type is ActionType.ENTRY:
                return await self._entry(p)
            return await self._close(p)
        finally:
            core.action_driven.discard(p.id)

    async def _entry(self, p: Position) -> Decision:
        if p.status is P.PENDING:
            p = await self._move(p, await self.core.cloud.update_position(p.id, P.PENDING, P.OPENING))
        view = await self.flow.run(p) if p.status is P.OPENING else await self.flow.view(p.id)
        if view.fill is not None:
            return "EXECUTED", None
        if view.opened is not None and view.opened.state is IntentState.FAILED:
            return "FAILED", view.opened.reason
        if view.opened is not None:
            return None  # at the broker still
        return "FAILED", f"position {p.id} is {p.status.value}; nothing to open"

    async def _close(self, p: Position) -> Decision:
        if p.status is P.OPEN:
            p = await self._move(p, await self.core.cloud.update_position(p.id, P.OPEN, P.CLOSING))
        if p.status not in (P.CLOSING, P.CLOSED, P.STOPPED):
            return "FAILED", f"position {p.id} is {p.status.value}; nothing to close"
        view = await self.flow.run(p) if p.status is P.CLOSING else await self.flow.view(p.id)
        return _closed(p, view)

    async def _move(self, p: Position, moved: MutationOutcome[Position]) -> Position:
        if isinstance(moved, Ok):
            self.reports.note_own_write(moved.record)
            return moved.record
        current = await self.core.cloud.get_position(p.id)
        if current is not None:
            await self.flow.retune(current)
        return current or p


def _closed(p: Position, view: View) -> Decision:
    c = view.last_close
    if c is not None and c.state is IntentState.FILLED:
        return "EXECUTED", None
    if c is not None and c.state is IntentState.FAILED:
        return "FAILED", c.reason
    if c is not None:
        return None
    return "FAILED", f"position {p.id} is {p.status.value}; nothing to close"
