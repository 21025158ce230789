"""Finished work leaves the hot tables; every answer by key stays the same (issue 16)."""

from __future__ import annotations

from pathlib import Path

from bench import shim
from hedge_agent.engine.journal import IntentState, Journal

DAY = 86_400.0


def _journal(tmp_path: Path, now: list[float]) -> Journal:
    j = Journal(tmp_path / "j.sqlite3", clock=lambda: now[0], keep_finished_s=7 * DAY)
    for n in range(3):
        shim.finished_trade(j, f"p-{n}", f"h-{n}", f"a-{n}", n)
    return j


def _hot(j: Journal, table: str) -> int:
    return int(j._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_finished_positions_move_after_the_age_and_every_lookup_by_key_still_answers(tmp_path: Path) -> None:
    now = [1_000_000.0]
    j = _journal(tmp_path, now)
    before = {
        "intent": j.get_intent("open:p-0"),
        "closes": j.close_attempts("p-0"),
        "magic": j.intent_by_magic("t1", 1_000_000),
        "fire": j.get_fire("p-0"),
        "action": j.get_action("a-0"),
        "all": sorted(j.intents(), key=lambda i: i.intent_id),
    }
    now[0] += 6 * DAY
    assert j.archive_finished() == 0  # not old enough
    now[0] += 2 * DAY
    assert j.archive_finished() == 6
    assert [_hot(j, t) for t in ("intents", "fires", "claims", "actions")] == [0, 0, 0, 0]
    after = {
        "intent": j.get_intent("open:p-0"),
        "closes": j.close_attempts("p-0"),
        "magic": j.intent_by_magic("t1", 1_000_000),
        "fire": j.get_fire("p-0"),
        "action": j.get_action("a-0"),
        "all": sorted(j.intents(), key=lambda i: i.intent_id),
    }
    assert after == before and before["intent"] is not None and before["fire"] is not None


def test_a_step_asked_again_after_the_archive_gets_its_known_result_and_nothing_is_written_twice(
    tmp_path: Path,
) -> None:
    now = [1_000_000.0]
    j = _journal(tmp_path, now)
    now[0] += 30 * DAY
    j.archive_finished()
    stored, created = j.write_ahead(shim.open_intent("p-1", "t1", 2), None, 100)
    assert not created and stored.state is IntentState.FILLED and stored.ticket == "10000002"
    assert j.add_intent(shim.open_intent("p-1", "t1", 2)).state is IntentState.FILLED
    fire = j.add_fire("p-1", "trail", ("other",))
    assert fire.trigger_ids == ("a-1",) and fire.pending_ids == ()  # the one fire, ever
    assert j.begin_action("a-1", "h-1", "ENTRY").outcome == "EXECUTED"
    assert [_hot(j, t) for t in ("intents", "fires", "claims", "actions")] == [0, 0, 0, 0]
    assert j.unreported_intents() == [] and j.unsettled_fires() == [] and j.open_tickets() == []


def test_unfinished_work_stays_hot(tmp_path: Path) -> None:
    now = [1_000_000.0]
    j = _journal(tmp_path, now)
    shim.write_ahead(j, "open-1", "t1", 50, None)  # pending open
    shim.write_ahead(j, "open-2", "t1", 51, None)
    shim.record_fill(j, "open:open-2", "77")  # filled, not reported
    j.add_fire("p-fired", "trail", ("x-1",))  # an unsettled claim
    j.begin_action("x-2", "p-act", "ENTRY")  # an unreported action
    now[0] += 30 * DAY
    assert j.archive_finished() == 6
    assert {i.intent_id for i in j.unreported_intents()} == {"open:open-1", "open:open-2"}
    assert [f.position_id for f in j.unsettled_fires()] == ["p-fired"]
    assert [a.action_id for a in j.unreported_actions()] == ["x-2"]


def test_the_archive_survives_a_reopen(tmp_path: Path) -> None:
    now = [1_000_000.0]
    j = _journal(tmp_path, now)
    now[0] += 30 * DAY
    j.archive_finished()
    j.close()
    again = Journal(tmp_path / "j.sqlite3", clock=lambda: now[0])
    intent = again.get_intent("close:h-2:1")
    assert intent is not None and intent.state is IntentState.FILLED and intent.reported
