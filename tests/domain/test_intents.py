import itertools

import pytest

from hedge_agent.domain.intents import (
    INTENT_TRANSITIONS,
    IntentState,
    check_fill,
    check_reported,
    check_transition,
)
from hedge_agent.errors import IllegalTransition

S = IntentState
LEGAL = {
    (S.PENDING, S.FILLED), (S.PENDING, S.FAILED), (S.PENDING, S.UNKNOWN),
    (S.UNKNOWN, S.FILLED), (S.UNKNOWN, S.FAILED), (S.UNKNOWN, S.UNKNOWN),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL))
def test_legal_intent_transitions(old, new):
    check_transition("open:p1", old, new)


@pytest.mark.parametrize(("old", "new"), [p for p in itertools.product(S, S) if p not in LEGAL])
def test_every_other_intent_transition_is_refused_naming_it(old, new):
    with pytest.raises(IllegalTransition, match=f"open:p1: {old.value} -> {new.value}"):
        check_transition("open:p1", old, new)


def test_the_table_holds_exactly_the_documented_edges():
    assert {(a, b) for a, targets in INTENT_TRANSITIONS.items() for b in targets} == LEGAL


@pytest.mark.parametrize("state", [S.PENDING, S.UNKNOWN])
def test_only_a_settled_intent_can_be_reported(state):
    with pytest.raises(IllegalTransition, match="reported"):
        check_reported("close:p1:1", state)
    check_reported("close:p1:1", S.FILLED)
    check_reported("close:p1:1", S.FAILED)


def test_a_fill_without_ticket_or_price_is_refused():
    with pytest.raises(IllegalTransition, match="ticket and price"):
        check_fill("open:p1", S.FILLED, None, 1.0)
    with pytest.raises(IllegalTransition):
        check_fill("open:p1", S.FILLED, "7", None)
    check_fill("open:p1", S.FILLED, "7", 1.0)
    check_fill("open:p1", S.FAILED, None, None)
