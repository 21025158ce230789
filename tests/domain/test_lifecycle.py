import itertools

import pytest

from hedge_agent.domain.enums import ActionStatus, PositionStatus
from hedge_agent.domain.lifecycle import (
    ACTION_TRANSITIONS,
    POSITION_FINAL,
    POSITION_TRANSITIONS,
    ActionEvent,
    PositionEvent,
    apply,
)
from hedge_agent.errors import IllegalTransition

P = PositionStatus
LEGAL_POSITION = [
    (P.PENDING, PositionEvent.OPEN_REQUESTED, P.OPENING),
    (P.OPENING, PositionEvent.FILLED, P.OPEN),
    (P.OPENING, PositionEvent.OPEN_FAILED, P.CANCELED),
    (P.OPEN, PositionEvent.CLOSE_REQUESTED, P.CLOSING),
    (P.CLOSING, PositionEvent.CLOSED, P.CLOSED),
    (P.CLOSING, PositionEvent.CLOSE_FAILED, P.OPEN),
    (P.OPEN, PositionEvent.VANISHED, P.STOPPED),
    (P.CLOSING, PositionEvent.VANISHED, P.STOPPED),
    (P.PENDING, PositionEvent.FILLED, P.OPEN),  # filled after the UI took it back: the trade is live
    (P.OPEN, PositionEvent.CLOSED, P.CLOSED),  # our close filled after the UI put it back to OPEN
]
A = ActionStatus
LEGAL_ACTION = [
    (A.PENDING, ActionEvent.CLAIMED, A.EXECUTING),
    (A.EXECUTING, ActionEvent.SUCCEEDED, A.EXECUTED),
    (A.EXECUTING, ActionEvent.FAILED, A.FAILED),
]


@pytest.mark.parametrize(("state", "event", "expected"), LEGAL_POSITION)
def test_legal_position_transition_reaches_the_table_state(state, event, expected):
    assert apply(state, event) is expected


@pytest.mark.parametrize(("state", "event", "expected"), LEGAL_ACTION)
def test_legal_action_transition_reaches_the_table_state(state, event, expected):
    assert apply(state, event) is expected


ILLEGAL_POSITION = [
    (s, e)
    for s, e in itertools.product(PositionStatus, PositionEvent)
    if (s, e) not in {(a, b) for a, b, _ in LEGAL_POSITION}
]
ILLEGAL_ACTION = [
    (s, e)
    for s, e in itertools.product(ActionStatus, ActionEvent)
    if (s, e) not in {(a, b) for a, b, _ in LEGAL_ACTION}
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL_POSITION)
def test_every_other_position_transition_is_illegal(state, event):
    with pytest.raises(IllegalTransition, match=event.value):
        apply(state, event)


@pytest.mark.parametrize(("state", "event"), ILLEGAL_ACTION)
def test_every_other_action_transition_is_illegal(state, event):
    with pytest.raises(IllegalTransition):
        apply(state, event)


def test_tables_hold_exactly_the_documented_edges():
    assert len(POSITION_TRANSITIONS) == len(LEGAL_POSITION)
    assert len(ACTION_TRANSITIONS) == len(LEGAL_ACTION)


def test_final_position_states_have_no_way_out():
    for (state, _event), _ in POSITION_TRANSITIONS.items():
        assert state not in POSITION_FINAL


def test_mixing_a_position_state_with_an_action_event_is_illegal():
    with pytest.raises(IllegalTransition):
        apply(PositionStatus.OPEN, ActionEvent.CLAIMED)
