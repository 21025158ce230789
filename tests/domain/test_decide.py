"""decide(status, view) and reconcile_plan as tables of cases: what is asked x what this PC did."""

from dataclasses import replace

import pytest

from hedge_agent.domain.decide import (
    Alarm,
    Known,
    Report,
    SendClose,
    SendOpen,
    Settle,
    Track,
    Untrack,
    View,
    decide,
    reconcile_plan,
)  # fmt: skip
from hedge_agent.domain.enums import PositionStatus, Side, Symbol
from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.lifecycle import PositionEvent as E

P, S = PositionStatus, IntentState


def intent(
    kind: str = "open", state: IntentState = S.PENDING, reported: bool = False, reason: str | None = None
) -> Intent:
    iid = "open:p1" if kind == "open" else "close:p1:1"
    filled = state is S.FILLED
    return Intent(
        iid, kind, "p1", "acc", "t", Symbol.USDJPY, Side.BUY, 0.1, 7, "ha:x", ticket="9" if filled or kind == "close" else None,
        state=state, price=1.5 if filled else None, reason=reason, reported=reported,
    )  # fmt: skip


OPEN_PENDING = intent()
OPEN_UNKNOWN = intent(state=S.UNKNOWN)
FILL = intent(state=S.FILLED)
FILL_R = replace(FILL, reported=True)
OPEN_FAIL = intent(state=S.FAILED, reason="no money")
CLOSE_PENDING = intent("close")
CLOSED = intent("close", S.FILLED)
CLOSED_R = replace(CLOSED, reported=True)
STOPPED = intent("close", S.FILLED, reason="stopped: stop out")
CLOSE_FAIL = intent("close", S.FAILED, reason="market closed")
CLOSE_FAIL_R = replace(CLOSE_FAIL, reported=True)


def v(opened=None, close=None, attempts=None) -> View:
    return View(opened, close, attempts if attempts is not None else (1 if close else 0))


def kinds(steps) -> list[str]:
    return [type(s).__name__ for s in steps]


CASES = [
    # status, view, expected step kinds, (event, target) of a Report if any
    ("first open", P.OPENING, v(), ["SendOpen"], None),
    ("open at the broker", P.OPENING, v(OPEN_PENDING), ["Settle"], None),
    ("unknown outcome", P.OPENING, v(OPEN_UNKNOWN), ["Settle"], None),
    ("filled: report it", P.OPENING, v(FILL), ["Report"], (E.FILLED, P.OPEN)),
    # idempotent answer: OPENING -> PENDING -> OPENING after the fill was reported / moved on
    ("asked again after reported", P.OPENING, v(FILL_R), ["Report"], (E.FILLED, P.OPEN)),
    ("open failed", P.OPENING, v(OPEN_FAIL), ["Report"], (E.OPEN_FAILED, P.CANCELED)),
    ("cancel while at the broker", P.PENDING, v(OPEN_PENDING), ["Settle"], None),
    ("filled after the cancel: live", P.PENDING, v(FILL_R), ["Report"], (E.FILLED, P.OPEN)),
    ("failed, then cancelled", P.PENDING, v(OPEN_FAIL), ["Known"], None),
    ("never opened here", P.PENDING, v(), [], None),
    ("open: trail it", P.OPEN, v(FILL_R), ["Track"], None),
    ("open not by this PC", P.OPEN, v(), ["Alarm"], None),
    ("close filled while put back to OPEN", P.OPEN, v(FILL_R, CLOSED_R), ["Report"], (E.CLOSED, P.CLOSED)),
    ("stopped while OPEN", P.OPEN, v(FILL_R, STOPPED), ["Report"], (E.VANISHED, P.STOPPED)),
    ("close failed, cloud OPEN already", P.OPEN, v(FILL_R, CLOSE_FAIL), ["Known", "Track"], None),
    ("first close", P.CLOSING, v(FILL_R), ["Track", "SendClose"], None),
    ("close at the broker", P.CLOSING, v(FILL_R, CLOSE_PENDING), ["Settle"], None),
    ("closed: report it", P.CLOSING, v(FILL_R, CLOSED), ["Report"], (E.CLOSED, P.CLOSED)),
    # OPEN -> CLOSING -> OPEN -> CLOSING: the second CLOSING is answered with the first close's exit
    (
        "closing again after the close filled",
        P.CLOSING,
        v(FILL_R, CLOSED_R),
        ["Report"],
        (E.CLOSED, P.CLOSED),
    ),
    ("stop-out raced the close", P.CLOSING, v(FILL_R, STOPPED), ["Report"], (E.VANISHED, P.STOPPED)),
    ("close failed: report it", P.CLOSING, v(FILL_R, CLOSE_FAIL), ["Report"], (E.CLOSE_FAILED, P.OPEN)),
    ("closing after a reported failure", P.CLOSING, v(FILL_R, CLOSE_FAIL_R), ["Track", "SendClose"], None),
    ("closing, never opened here", P.CLOSING, v(), ["SendClose"], None),
    ("late second CLOSING after CLOSED", P.CLOSING, v(FILL_R, CLOSED_R), ["Report"], (E.CLOSED, P.CLOSED)),
    ("closed and reported", P.CLOSED, v(FILL_R, CLOSED_R), ["Untrack"], None),
    ("closed, report landed elsewhere", P.CLOSED, v(FILL_R, CLOSED), ["Untrack", "Known"], None),
    ("canceled with a late fill", P.CANCELED, v(FILL), ["Untrack", "Known", "Alarm"], None),
    ("canceled, open still unsettled", P.CANCELED, v(OPEN_UNKNOWN), ["Settle"], None),
]


@pytest.mark.parametrize(("name", "status", "view", "expected", "report"), CASES, ids=[c[0] for c in CASES])
def test_decide(name, status, view, expected, report):
    steps = decide(status, view)
    assert kinds(steps) == expected
    for s in steps:
        if isinstance(s, Report):
            assert (s.event, s.target) == report and s.expected is status
            assert s.intent.state in (S.FILLED, S.FAILED)


def test_a_second_close_attempt_is_numbered_after_the_failed_ones():
    (_track, step) = decide(P.CLOSING, v(FILL_R, CLOSE_FAIL_R, attempts=2))
    assert step == SendClose(3)


def test_look_first_is_passed_on_to_the_first_open():
    assert decide(P.OPENING, v(), look_first=True) == [SendOpen(True)]


def test_a_known_fact_the_cloud_contradicts_is_not_agreeing():
    (_untrack, known, alarm) = decide(P.CANCELED, v(FILL))
    assert isinstance(_untrack, Untrack) and isinstance(known, Known) and not known.agrees
    assert isinstance(alarm, Alarm) and "#9" in alarm.message
    (known,) = decide(P.PENDING, v(OPEN_FAIL))
    assert isinstance(known, Known) and known.agrees


def test_track_carries_the_fill():
    (track,) = decide(P.OPEN, v(FILL_R))
    assert isinstance(track, Track) and track.intent is FILL_R


RECONCILE = [
    # journal views, cloud statuses -> corrective step kinds per position
    ("fill never reported", {"p1": v(FILL)}, {"p1": P.OPENING}, {"p1": ["Report"]}),
    ("unknown outcome", {"p1": v(OPEN_UNKNOWN)}, {"p1": P.OPENING}, {"p1": ["Settle"]}),
    ("record deleted", {"p1": v(FILL)}, {"p1": None}, {"p1": []}),
    ("record deleted, order unsettled", {"p1": v(OPEN_PENDING)}, {"p1": None}, {"p1": ["Settle"]}),
    ("report landed: nothing but the note", {"p1": v(FILL)}, {"p1": P.OPEN}, {"p1": ["Known"]}),
    ("close fact never reported", {"p1": v(FILL_R, STOPPED)}, {"p1": P.OPEN}, {"p1": ["Report"]}),
    ("two positions, isolated", {"p1": v(FILL), "p2": v(OPEN_FAIL)}, {"p1": P.OPENING, "p2": P.OPENING},
     {"p1": ["Report"], "p2": ["Report"]}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "views", "cloud", "expected"), RECONCILE, ids=[c[0] for c in RECONCILE])
def test_reconcile_plan(name, views, cloud, expected):
    plan = reconcile_plan(views, cloud)
    assert {pid: kinds(steps) for pid, steps in plan.items()} == expected
    for steps in plan.values():  # reconciliation never starts or stops trailing: the live flow does
        assert not [s for s in steps if isinstance(s, Track | Untrack | SendOpen)]


def test_an_inferred_fill_goes_through_the_same_model_as_a_live_one():
    live = decide(P.OPENING, v(FILL))
    inferred = reconcile_plan({"p1": v(FILL)}, {"p1": P.OPENING})["p1"]
    assert live == inferred and isinstance(live[0], Report)
    assert isinstance(decide(P.OPENING, v(OPEN_UNKNOWN))[0], Settle)
