import dataclasses
import sqlite3

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import new_trail
from hedge_agent.engine.journal import SCHEMA_VERSION, Intent, IntentState, Journal
from hedge_agent.errors import FatalError


def intent(iid: str = "open:p1", kind: str = "open", position: str = "p1") -> Intent:
    return Intent(iid, kind, position, "acc-1", "sim", Symbol.USDJPY, Side.BUY, 0.1, 12345, "ha:abc")


def test_an_intent_is_written_once_and_the_first_one_wins(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    first = j.add_intent(intent())
    again = j.add_intent(dataclasses.replace(intent(), volume=9.0))
    assert first == again and j.get_intent("open:p1") == first


def test_results_and_reports_survive_a_reopen(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    j.add_intent(intent())
    j.record_result(
        "open:p1", IntentState.FILLED, ticket="77", price=150.123, fill_time="2026-01-01T00:00:00+00:00"
    )
    j.close()
    j = Journal(path)
    got = j.get_intent("open:p1")
    assert got is not None and got.state is IntentState.FILLED and got.ticket == "77" and not got.reported
    assert [i.intent_id for i in j.unreported_intents()] == ["open:p1"]
    j.mark_reported("open:p1")
    assert j.unreported_intents() == []


def test_open_tickets_exclude_positions_with_a_filled_close(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    for p in ("p1", "p2"):
        j.add_intent(intent(f"open:{p}", position=p))
        j.record_result(f"open:{p}", IntentState.FILLED, ticket=p.upper(), price=1.0)
    j.add_intent(intent("close:p1:1", "close", "p1"))
    assert {i.position_id for i in j.open_tickets()} == {"p1", "p2"}
    j.record_result("close:p1:1", IntentState.FILLED, ticket="P1", price=1.1)
    assert {i.position_id for i in j.open_tickets()} == {"p2"}


def test_trail_state_round_trips(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    state = new_trail("p1", Symbol.EURUSD, Side.SELL, 110_000, 50)
    j.save_trails([state])
    assert j.load_trail("p1") == state
    j.delete_trail("p1")
    assert j.load_trail("p1") is None


def test_a_fire_is_recorded_once_and_claims_settle_one_by_one(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.add_fire("p1", "trail", ("a1", "a2"))
    again = j.add_fire("p1", "stopped", ("a3",))
    assert again.cause == "trail" and again.trigger_ids == ("a1", "a2")
    j.settle_claim("p1", "a1")
    assert [f.pending_ids for f in j.unsettled_fires()] == [("a2",)]
    j.settle_claim("p1", "a2")
    assert j.unsettled_fires() == []


def test_an_action_outcome_is_decided_once(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.begin_action("a1", "p1", "ENTRY")
    j.decide_action("a1", "EXECUTED", None)
    j.decide_action("a1", "FAILED", "late")
    rec = j.get_action("a1")
    assert rec is not None and rec.outcome == "EXECUTED" and not rec.reported


def test_a_corrupt_journal_is_a_fatal_error_with_advice(tmp_path):
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(FatalError, match="move it aside"):
        Journal(path)


def test_a_journal_from_a_newer_agent_is_refused(tmp_path):
    path = tmp_path / "j.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(FatalError, match="newer hedge-agent"):
        Journal(path)


def test_the_journal_runs_in_wal_mode(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_meta_values_survive_a_reopen_and_schema_version_is_protected(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    assert j.get_meta("mt5:offset") is None
    j.set_meta("mt5:offset", "10800")
    j.set_meta("mt5:offset", "7200")
    j.close()
    j = Journal(path)
    assert j.get_meta("mt5:offset") == "7200"
    with pytest.raises(ValueError):
        j.set_meta("schema_version", "99")
