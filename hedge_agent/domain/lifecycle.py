"""Position and Action lifecycles as transition tables (design §2). One table per model, odd edges commented.

``apply(state, event)`` returns the next state or raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from hedge_agent.errors import IllegalTransition

from .enums import ActionStatus, PositionStatus


class PositionEvent(StrEnum):
    OPEN_REQUESTED = "open_requested"  # the UI (or an ENTRY action) asks for the order
    FILLED = "filled"  # the open order filled
    OPEN_FAILED = "open_failed"  # the open order was rejected for good
    CLOSE_REQUESTED = "close_requested"
    CLOSED = "closed"  # the close order filled
    CLOSE_FAILED = "close_failed"  # the close was rejected: the position is still open
    VANISHED = "vanished"  # gone from the terminal without us: stop-out, manual close, broker SL


P = PositionStatus
POSITION_TRANSITIONS: Mapping[tuple[PositionStatus, PositionEvent], PositionStatus] = {
    (P.PENDING, PositionEvent.OPEN_REQUESTED): P.OPENING,
    (P.OPENING, PositionEvent.FILLED): P.OPEN,
    (P.OPENING, PositionEvent.OPEN_FAILED): P.CANCELED,
    (P.OPEN, PositionEvent.CLOSE_REQUESTED): P.CLOSING,
    (P.CLOSING, PositionEvent.CLOSED): P.CLOSED,
    # odd edge: a failed close puts the position back to OPEN (it is still on the terminal)
    (P.CLOSING, PositionEvent.CLOSE_FAILED): P.OPEN,
    (P.OPEN, PositionEvent.VANISHED): P.STOPPED,
    # odd edge: stopped out while our close was in flight and the close was then rejected
    (P.CLOSING, PositionEvent.VANISHED): P.STOPPED,
    # odd edge: the open filled after the UI took the position back to PENDING (cancel while the order was
    # at the broker): the trade is live, so the cloud must say OPEN (with its fill), not leave it untracked
    (P.PENDING, PositionEvent.FILLED): P.OPEN,
    # odd edge: our close filled while the UI put the position back to OPEN: it is gone from the terminal
    (P.OPEN, PositionEvent.CLOSED): P.CLOSED,
}


class ActionEvent(StrEnum):
    CLAIMED = "claimed"  # conditional PENDING -> EXECUTING, by a trail fire or by the owner
    SUCCEEDED = "succeeded"
    FAILED = "failed"


A = ActionStatus
ACTION_TRANSITIONS: Mapping[tuple[ActionStatus, ActionEvent], ActionStatus] = {
    (A.PENDING, ActionEvent.CLAIMED): A.EXECUTING,
    (A.EXECUTING, ActionEvent.SUCCEEDED): A.EXECUTED,
    (A.EXECUTING, ActionEvent.FAILED): A.FAILED,
}

POSITION_FINAL = frozenset({P.CLOSED, P.STOPPED, P.CANCELED})
ACTION_FINAL = frozenset({A.EXECUTED, A.FAILED})


def apply_position(state: PositionStatus, event: PositionEvent) -> PositionStatus:
    try:
        return POSITION_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"position: {event.value} is not allowed from {state.value}") from None


def report_target(state: PositionStatus, event: PositionEvent) -> PositionStatus | None:
    """Where a report of ``event`` takes a record the cloud shows in ``state`` (the report's condition is
    ``state``); None when the table has no such edge: the cloud already says it, or moved past it."""
    return POSITION_TRANSITIONS.get((state, event))


def apply_action(state: ActionStatus, event: ActionEvent) -> ActionStatus:
    try:
        return ACTION_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"action: {event.value} is not allowed from {state.value}") from None


def apply(
    state: PositionStatus | ActionStatus, event: PositionEvent | ActionEvent
) -> PositionStatus | ActionStatus:
    """One entry point for both tables; mixing a position state with an action event is illegal."""
    if isinstance(state, PositionStatus) and isinstance(event, PositionEvent):
        return apply_position(state, event)
    if isinstance(state, ActionStatus) and isinstance(event, ActionEvent):
        return apply_action(state, event)
    raise IllegalTransition(f"{event!r} does not apply to {state!r}")
