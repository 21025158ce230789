"""What to do for one position: ``decide(status, view) -> steps`` (design §3, "one model").

The cloud record's status says what is asked; the journal view says what this PC already did. The answer
is a list of steps the engine carries out in order. The rules:

* a step already done is answered with its known result, every time it is asked (idempotent answers): the
  report's event comes from the settled intent, its target from the position table (``report_target``);
* an intent whose order may have left is settled (looked up by tag) before anything else;
* a new order is only made when no earlier one can still fill: no open intent yet, or the last close
  attempt failed for certain and that failure was reported;
* evidence that someone else trades this account (OPEN without our fill, a fill the cloud gave up) is an
  alarm, never silence.

Reconciliation (:func:`reconcile_plan`) is the same function over every position the journal still has
work for, so an inferred fill goes through the same model as a live one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .enums import PositionStatus
from .intents import Intent, IntentState
from .lifecycle import POSITION_FINAL, PositionEvent, report_target

P = PositionStatus
S = IntentState


@dataclass(frozen=True, slots=True)
class View:
    """What the journal knows about one position."""

    opened: Intent | None = None  # the open intent
    last_close: Intent | None = None  # the latest close attempt
    attempts: int = 0  # close attempts made so far

    @property
    def fill(self) -> Intent | None:
        return self.opened if self.opened is not None and self.opened.state is S.FILLED else None

    @property
    def closed(self) -> Intent | None:
        c = self.last_close
        return c if c is not None and c.state is S.FILLED else None


@dataclass(frozen=True, slots=True)
class SendOpen:
    look_first: bool  # the record predates this agent or its journal: look the tag up before sending


@dataclass(frozen=True, slots=True)
class SendClose:
    attempt: int


@dataclass(frozen=True, slots=True)
class Settle:
    intent: Intent  # pending or unknown: find it by tag (a pending one never seen is sent, same tag)


@dataclass(frozen=True, slots=True)
class Report:
    intent: Intent  # settled
    event: PositionEvent
    expected: PositionStatus  # the condition of the update
    target: PositionStatus


@dataclass(frozen=True, slots=True)
class Known:
    """The cloud cannot take this fact (no edge from its status): mark the intent reported. ``agrees``:
    the cloud's status is consistent with the terminal; when not, the engine says so loudly. A later
    request for the same step is still answered (reported only stops the reconcile retries)."""

    intent: Intent
    agrees: bool


@dataclass(frozen=True, slots=True)
class Track:
    intent: Intent  # the fill to trail from


@dataclass(frozen=True, slots=True)
class Untrack:
    pass


@dataclass(frozen=True, slots=True)
class Alarm:
    title: str
    message: str


Step = SendOpen | SendClose | Settle | Report | Known | Track | Untrack | Alarm

#: the status a record ends in once an event is reported (the target of every edge of that event)
RESULT: Mapping[PositionEvent, PositionStatus] = {
    PositionEvent.FILLED: P.OPEN,
    PositionEvent.OPEN_FAILED: P.CANCELED,
    PositionEvent.CLOSED: P.CLOSED,
    PositionEvent.CLOSE_FAILED: P.OPEN,
    PositionEvent.VANISHED: P.STOPPED,
}
#: cloud statuses consistent with what the terminal did
CONSISTENT: Mapping[PositionEvent, frozenset[PositionStatus]] = {
    PositionEvent.FILLED: frozenset({P.OPEN, P.CLOSING}),
    PositionEvent.OPEN_FAILED: frozenset({P.CANCELED, P.PENDING}),
    PositionEvent.CLOSED: frozenset({P.CLOSED, P.STOPPED}),
    PositionEvent.VANISHED: frozenset({P.STOPPED, P.CLOSED}),
    PositionEvent.CLOSE_FAILED: frozenset({P.OPEN}),
}


def fact(view: View) -> tuple[Intent, PositionEvent] | None:
    """The latest settled fact about the position on the terminal, as a position event."""
    c = view.last_close
    if c is not None and c.state is S.FILLED:
        return c, PositionEvent.VANISHED if c.stopped else PositionEvent.CLOSED
    if c is not None and c.state is S.FAILED and not c.reported:
        return c, PositionEvent.CLOSE_FAILED
    o = view.opened
    if o is not None and o.state is S.FILLED:
        return o, PositionEvent.FILLED
    if o is not None and o.state is S.FAILED:
        return o, PositionEvent.OPEN_FAILED
    return None


def _report(status: PositionStatus, view: View) -> list[Step]:
    """Answer with the known result; or, when the cloud already shows it, note that it is reported."""
    known = fact(view)
    if known is None:
        return []
    intent, event = known
    target = report_target(status, event)
    if target is not None:
        return [Report(intent, event, status, target)]
    if not intent.reported:
        return [Known(intent, status in CONSISTENT[event])]
    return []


def decide(status: PositionStatus, view: View, *, look_first: bool = False) -> list[Step]:
    """The steps for a position the cloud shows in ``status``, given what this PC did."""
    o, c = view.opened, view.last_close
    for pending in (c, o):  # an order that may still fill comes first: nothing is decided around it
        if pending is not None and pending.state in (S.PENDING, S.UNKNOWN):
            return [Settle(pending)]
    if status is P.OPENING:
        return [SendOpen(look_first)] if o is None else _report(status, view)
    if status is P.PENDING:
        # filled after the UI took it back (the report then says OPEN: the trade is live); else nothing
        return _report(status, view) if o is not None else []
    if status is P.OPEN:
        if view.fill is None:
            return [
                Alarm(
                    "account traded elsewhere",
                    "is OPEN but this PC never opened it (is the account bound on another PC too?)",
                )
            ]
        answer = _report(status, view)  # closed while the UI put it back to OPEN, or a close failure
        return answer if any(isinstance(s, Report) for s in answer) else [*answer, Track(view.fill)]
    if status is P.CLOSING:
        if c is not None and (c.state is S.FILLED or (c.state is S.FAILED and not c.reported)):
            return _report(status, view)
        # while the trade is on the terminal it is trailed with the record's current width (an edit can
        # arrive on the CLOSING record itself)
        track: list[Step] = [Track(view.fill)] if view.fill is not None else []
        return [*track, SendClose(view.attempts + 1)]
    # final: nothing more is asked; a live trade carrying our tag under a final record is said loudly
    assert status in POSITION_FINAL
    steps: list[Step] = [Untrack(), *_report(status, view)]
    if view.fill is not None and view.closed is None:
        steps.append(
            Alarm(
                "live trade under a final record",
                f"is {status.value} in the cloud but its trade #{view.fill.ticket} is still on the terminal "
                "with this PC's tag: close it by hand or reopen the record",
            )
        )
    return steps


def reconcile_plan(
    views: Mapping[str, View], cloud: Mapping[str, PositionStatus | None]
) -> dict[str, list[Step]]:
    """Journal x cloud => corrective steps per position the journal has unfinished work for.

    ``views``: the positions with an unreported or unsettled intent; ``cloud``: their current status (None:
    deleted or unreadable). A position the cloud no longer has gets no step: its intents are marked reported
    by the caller (nothing can be answered), an unsettled order is still settled first.
    """
    plan: dict[str, list[Step]] = {}
    for pid, view in views.items():
        status = cloud.get(pid)
        if status is None:
            pending = [i for i in (view.last_close, view.opened) if i is not None and not i.settled]
            plan[pid] = [Settle(pending[0])] if pending else []
            continue
        plan[pid] = [s for s in decide(status, view) if not isinstance(s, Track | Untrack)]
    return plan
