"""Reports to the cloud: every conditional update's expected status and target come from the position
table (``domain.decide.Report``); what the outcome means for the intent's ``reported`` flag is decided here.

``reported`` means "the cloud has it, or can no longer take it"; it only stops reconciliation from
retrying. A later request for the same step is answered again whatever the flag says.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from hedge_agent.domain.decide import Known, Report
from hedge_agent.domain.enums import ActionStatus
from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.lifecycle import PositionEvent
from hedge_agent.domain.models import Action, Position

from .context import Core
from .outcomes import ConditionFailed, Failed, MutationOutcome, NotFound, Ok, Unauthorized

log = structlog.get_logger(__name__)
PE = PositionEvent


def fill_time(intent: Intent) -> datetime | None:
    return datetime.fromisoformat(intent.fill_time) if intent.fill_time else None


class Reporter:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def report(self, p: Position, step: Report) -> Position | None:
        """Send one report; the record to decide on next (the new one, or the current one after a lost
        race), or None when nothing more can be done now (denied, or the backend is down: reconcile retries)."""
        i, cloud = step.intent, self.core.cloud
        if step.event is PE.FILLED:
            outcome = await cloud.update_position(
                p.id,
                step.expected,
                step.target,
                entry_price=i.price,
                entry_time=fill_time(i),
                mt_ticket=i.ticket,
            )
        elif step.event is PE.OPEN_FAILED:
            outcome = await cloud.update_position(
                p.id, step.expected, step.target, exit_reason=f"open failed: {i.reason}"[:500]
            )
        elif step.event is PE.CLOSE_FAILED:
            outcome = await cloud.update_position(
                p.id, step.expected, step.target, exit_reason=f"close failed: {i.reason}"[:500]
            )
        else:
            why = (i.reason or "").removeprefix("stopped: ") if i.stopped else "closed by hedge-agent"
            outcome = await cloud.update_position(
                p.id, step.expected, step.target, exit_price=i.price, exit_time=fill_time(i), exit_reason=why
            )
        return await self._outcome(p, i, step, outcome)

    async def _outcome(
        self, p: Position, i: Intent, step: Report, outcome: MutationOutcome[Position]
    ) -> Position | None:
        core = self.core
        if isinstance(outcome, Ok):
            await core.journal.call(core.j.mark_reported, i.intent_id)
            self.note_own_write(outcome.record)
            log.info("reported", intent=i.intent_id, status=step.target.value)
            self._tell(p, i, step)
            return outcome.record
        if isinstance(outcome, Failed):
            core.board.notice("warning", "report pending", f"{i.intent_id}: {outcome.message} (will retry)")
            core.retry.add(p.id)
            return None
        if isinstance(outcome, Unauthorized | NotFound):  # denied for good (record reassigned or deleted)
            core.board.notice("error", "cloud denied a report", f"{i.intent_id}: {outcome.message}")
            await core.journal.call(core.j.mark_reported, i.intent_id)
            return None
        current = outcome.current if isinstance(outcome.current, Position) else None
        current = current or await core.cloud.get_position(p.id)
        if current is not None and current.status is step.expected:  # a race on our own write: try again
            core.retry.add(p.id)
            return None
        if current is None:
            await core.journal.call(core.j.mark_reported, i.intent_id)
            return None
        if step.event is PE.FILLED and current.mt_ticket and i.ticket and current.mt_ticket != i.ticket:
            core.alarm(
                p.id,
                "account traded by two agents",
                f"position {p.id}: this PC's open filled as #{i.ticket} but the cloud already has #{current.mt_ticket} "
                f"from another agent: the account is bound on two PCs, or a journal was lost. Check "
                f"{i.terminal} by hand and close the extra trade.",
            )
        core.positions[current.id] = current
        return current  # decide again on what the cloud shows now: it is answered from the journal

    def _tell(self, p: Position, i: Intent, step: Report) -> None:
        board = self.core.board
        if step.event is PE.FILLED:
            board.notice("info", "opened", f"{p.symbol} {p.side} {p.volume:g} at {i.price} (#{i.ticket})")
        elif step.event is PE.OPEN_FAILED:
            board.notice("error", "open failed", f"position {p.id}: {i.reason}")
        elif step.event is PE.CLOSE_FAILED:
            board.notice("error", "close failed", f"position {p.id}: {i.reason}")
        else:
            board.notice("info", "closed", f"{p.symbol} #{i.ticket} at {i.price} ({step.target.value})")

    async def known(self, p: Position, step: Known) -> None:
        core = self.core
        if not step.agrees:
            core.alarm(
                step.intent.intent_id,
                "position changed under us",
                f"{step.intent.intent_id}: the cloud shows {p.status.value}, this PC has it "
                f"{step.intent.state.value} on the terminal (ticket {step.intent.ticket}): check this position "
                "by hand",
            )
        if step.intent.state in (IntentState.FILLED, IntentState.FAILED):
            await core.journal.call(core.j.mark_reported, step.intent.intent_id)

    def note_own_write(self, record: Position | Action) -> None:
        """Our own update comes back on the subscription: keep it from being mistaken for news."""
        core = self.core
        if record.updated_at is not None:
            stamp = (record.updated_at.isoformat(), record.status.value)
            last = core.latest.get(record.id)
            if last is None or stamp[0] >= last[0]:
                core.remember(record.id, stamp)
        if isinstance(record, Position):
            core.positions[record.id] = record

    async def finish_action(self, action_id: str, status: ActionStatus, reason: str | None) -> None:
        core = self.core
        outcome = await core.cloud.finish_action(action_id, status)
        if isinstance(outcome, Failed):
            log.warning("action report failed; will retry", action=action_id, error=outcome.message)
            return
        if isinstance(outcome, Ok):
            self.note_own_write(outcome.record)
        elif not isinstance(outcome, ConditionFailed):
            log.error("action report refused", action=action_id, outcome=repr(outcome))
        await core.journal.call(core.j.mark_action_reported, action_id)
        if status is ActionStatus.FAILED:
            core.board.notice("error", "action failed", f"{action_id}: {reason}")
        log.info("action finished", action=action_id, status=status.value, reason=reason)
