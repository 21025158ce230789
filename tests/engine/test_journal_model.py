"""The journal enforces the intent table, migrates v1, notices a replaced file, and serves every hot query
from an index."""

import json
import os
import sqlite3

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import new_trail
from hedge_agent.engine.journal import SCHEMA_VERSION, Intent, IntentState, Journal
from hedge_agent.errors import FatalError

S = IntentState


def intent(iid: str = "open:p1", kind: str = "open", position: str = "p1", terminal: str = "sim") -> Intent:
    return Intent(iid, kind, position, "acc-1", terminal, Symbol.USDJPY, Side.BUY, 0.1, 12345, "ha:abc")


def filled(j: Journal, iid: str = "open:p1") -> Intent:
    j.add_intent(intent(iid))
    return j.record_result(iid, S.FILLED, ticket="77", price=150.1, fill_time="2026-01-01T00:00:00+00:00")


def test_a_filled_intent_can_never_be_rewritten_and_keeps_its_fill(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    filled(j)
    j.mark_reported("open:p1")
    with pytest.raises(FatalError, match="open:p1: filled -> unknown is not allowed"):
        j.record_result("open:p1", S.UNKNOWN, reason="late timeout")
    with pytest.raises(FatalError, match="filled -> failed"):
        j.record_result("open:p1", S.FAILED, reason="x")
    got = j.get_intent("open:p1")
    assert (
        got is not None
        and got.state is S.FILLED
        and got.price == 150.1
        and got.ticket == "77"
        and got.reported
    )


def test_a_failed_intent_stays_failed_and_unknown_may_settle_either_way(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.add_intent(intent())
    j.record_result("open:p1", S.FAILED, code=10019, reason="no money")
    with pytest.raises(FatalError, match="failed -> filled"):
        j.record_result("open:p1", S.FILLED, ticket="1", price=1.0)
    j.add_intent(intent("open:p2", position="p2"))
    j.record_result("open:p2", S.UNKNOWN, reason="timeout")
    j.record_result("open:p2", S.UNKNOWN, reason="still cannot say")
    j.record_result("open:p2", S.FILLED, ticket="8", price=1.0)


def test_only_settled_intents_are_reported_and_fills_need_their_data(tmp_path):
    j = Journal(tmp_path / "j.sqlite3")
    j.add_intent(intent())
    with pytest.raises(FatalError, match="cannot be reported while pending"):
        j.mark_reported("open:p1")
    with pytest.raises(FatalError, match="ticket and price"):
        j.record_result("open:p1", S.FILLED, ticket="7")
    with pytest.raises(FatalError, match="no intent"):
        j.record_result("open:nope", S.FAILED)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE intents (intent_id TEXT PRIMARY KEY, kind TEXT NOT NULL, position_id TEXT NOT NULL,
    account_id TEXT NOT NULL, terminal TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    volume REAL NOT NULL, magic INTEGER NOT NULL, comment TEXT NOT NULL, ticket TEXT, state TEXT NOT NULL,
    price REAL, fill_time TEXT, code INTEGER, reason TEXT, reported INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX intents_unreported ON intents (reported) WHERE reported = 0;
CREATE TABLE trails (position_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE fires (position_id TEXT PRIMARY KEY, cause TEXT NOT NULL, trigger_ids TEXT NOT NULL,
    pending_ids TEXT NOT NULL, fired_at REAL NOT NULL);
CREATE TABLE actions (action_id TEXT PRIMARY KEY, position_id TEXT NOT NULL, type TEXT NOT NULL, outcome TEXT,
    reason TEXT, reported INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def _row(iid, kind, pid, state, ticket=None, price=None):
    return (iid, kind, pid, "acc-1", "sim", "USDJPY", "BUY", 0.1, 1, "ha:x", ticket, state, price, None, None,
            None, 1, 1.0, 1.0)  # fmt: skip


def test_a_v1_journal_is_migrated_with_its_fires_claims_and_open_positions(tmp_path):
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.executemany(
        "INSERT INTO intents VALUES (" + ",".join("?" * 19) + ")",
        [_row("open:p1", "open", "p1", "filled", "1", 1.0), _row("open:p2", "open", "p2", "filled", "2", 1.0),
         _row("close:p2:1", "close", "p2", "filled", "2", 1.1)],
    )  # fmt: skip
    db.execute(
        "INSERT INTO fires VALUES ('p2', 'stopped', ?, ?, 1.0)",
        (json.dumps(["a1", "a2", "a3"]), json.dumps(["a2"])),
    )
    db.commit()
    db.close()
    j = Journal(path)
    assert j.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
    assert [i.position_id for i in j.open_tickets()] == ["p1"]
    fire = j.get_fire("p2")
    assert fire is not None and fire.trigger_ids == ("a1", "a2", "a3") and fire.pending_ids == ("a2",)
    j.settle_claim("p2", "a2")
    assert j.unsettled_fires() == []
    j.close()
    assert Journal(path).get_meta("schema_version") == "2"  # opening again changes nothing


def test_a_journal_deleted_or_replaced_while_running_is_fatal_on_the_next_write(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    filled(j)
    os.rename(path, tmp_path / "moved.sqlite3")
    with pytest.raises(FatalError, match="was deleted while the agent was running"):
        j.add_intent(intent("open:p2", position="p2"))
    path.write_bytes(b"")
    with pytest.raises(FatalError, match="was replaced by another file"):
        j.mark_reported("open:p1")


HOT = {
    "write_ahead count": (
        "SELECT COUNT(*) FROM intents WHERE kind='open' AND closed=0 AND state IN ('filled','pending','unknown') "
        "AND terminal=?", ("sim",), "intents_live"),
    "open_tickets": ("SELECT * FROM intents WHERE kind='open' AND closed=0 AND state='filled'", (), "intents_live"),
    "unreported intents": ("SELECT * FROM intents WHERE reported=0 ORDER BY created", (), "intents_unreported"),
    "unreported actions": ("SELECT action_id FROM actions WHERE reported=0", (), "actions_unreported"),
    "unsettled claims": ("SELECT DISTINCT position_id FROM claims WHERE settled=0", (), "claims_unsettled"),
    "close attempts": ("SELECT * FROM intents WHERE position_id=? AND kind='close' ORDER BY created, intent_id",
                       ("p1",), "intents_position"),
    "settle one claim": ("UPDATE claims SET settled=1 WHERE position_id=? AND action_id=?", ("p", "a"),
                         "sqlite_autoindex_claims_1"),
}  # fmt: skip


@pytest.mark.parametrize("name", HOT)
def test_every_hot_query_is_served_by_an_index(tmp_path, name):
    """The exact SQL the journal runs (kept in step with journal.py by test_hot_queries_are_the_journals)."""
    sql, args, index = HOT[name]
    j = Journal(tmp_path / "j.sqlite3")
    lines = [r[3] for r in j._db.execute("EXPLAIN QUERY PLAN " + sql, args)]
    assert any(index in line for line in lines), lines
    assert not [x for x in lines if x.startswith("SCAN") and "USING" not in x], lines  # no full-table scan


def test_hot_queries_are_the_journals():
    """Each fragment of the SQL above appears in the journal's code (a guard against the two drifting apart)."""
    import inspect

    from hedge_agent.engine import journal, journal_side

    source = " ".join((inspect.getsource(journal) + inspect.getsource(journal_side)).split())
    for name, (sql, _, _) in HOT.items():
        assert all(part.strip() in source for part in sql.split(" AND ")), name


def test_fire_latch_and_claims_are_one_transaction(tmp_path):
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    latched = new_trail("p1", Symbol.USDJPY, Side.BUY, 150_000, 50)
    j.add_fire("p1", "trail", ("a1", "a2"), [latched])
    j.close()
    again = Journal(path)  # as after a crash right after the fire
    fire = again.get_fire("p1")
    assert fire is not None and fire.pending_ids == ("a1", "a2") and again.load_trail("p1") == latched
