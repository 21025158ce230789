"""The intent model (design §3): one order per intent, its states as a table.

An intent is what this PC means to do on a terminal: open a position once (``open:<id>``), or one close
attempt (``close:<id>:<n>``). Its states::

    pending --> filled | failed | unknown        (the order left, or was refused before leaving)
    unknown --> filled | failed | unknown        (a lookup found it / gave up / still cannot say)
    filled, failed: settled, never change again  (fill data is never lost or rewritten)

``reported`` (the cloud has the result, or has moved on) may only be set on a settled intent. The journal
enforces both rules through :func:`check_transition` and :func:`check_reported`; a breach is a bug or a
damaged journal, never something to carry on from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from hedge_agent.errors import IllegalTransition

from .enums import Side, Symbol


class IntentState(StrEnum):
    PENDING = "pending"  # written; the order may have left
    FILLED = "filled"
    FAILED = "failed"  # rejected for good (or refused by a risk cap before leaving)
    UNKNOWN = "unknown"  # the terminal could not say: reconcile by tag


S = IntentState
INTENT_TRANSITIONS: Mapping[IntentState, frozenset[IntentState]] = {
    S.PENDING: frozenset({S.FILLED, S.FAILED, S.UNKNOWN}),
    # unknown again: one more lookup could not tell either (its reason is updated, nothing else)
    S.UNKNOWN: frozenset({S.FILLED, S.FAILED, S.UNKNOWN}),
    S.FILLED: frozenset(),
    S.FAILED: frozenset(),
}
SETTLED = frozenset({S.FILLED, S.FAILED})
UNSETTLED = frozenset({S.PENDING, S.UNKNOWN})


def check_transition(intent_id: str, old: IntentState, new: IntentState) -> None:
    if new not in INTENT_TRANSITIONS[old]:
        raise IllegalTransition(f"intent {intent_id}: {old.value} -> {new.value} is not allowed")


def check_reported(intent_id: str, state: IntentState) -> None:
    if state not in SETTLED:
        raise IllegalTransition(f"intent {intent_id}: cannot be reported while {state.value}")


def check_fill(intent_id: str, state: IntentState, ticket: str | None, price: float | None) -> None:
    """A filled intent carries its ticket and price: without them the fill could not be reported."""
    if state is S.FILLED and (ticket is None or price is None):
        raise IllegalTransition(f"intent {intent_id}: a fill needs its ticket and price")


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    kind: str  # open | close
    position_id: str
    account_id: str
    terminal: str
    symbol: Symbol
    side: Side  # side of the order itself
    volume: float
    magic: int
    comment: str
    ticket: str | None = None  # open: the resulting ticket; close: the ticket being closed
    state: IntentState = IntentState.PENDING
    price: float | None = None
    fill_time: str | None = None
    code: int | None = None
    reason: str | None = None
    reported: bool = False

    @property
    def settled(self) -> bool:
        return self.state in SETTLED

    @property
    def stopped(self) -> bool:
        """A close fact recorded for a position that left the terminal without our order (stop-out...)."""
        return self.kind == "close" and self.state is S.FILLED and (self.reason or "").startswith("stopped: ")
