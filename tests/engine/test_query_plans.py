"""Every hot journal call finds its rows through an index: no full scan of a hot table (issue 16).

The statements are the ones each call really runs (traced), checked with ``EXPLAIN QUERY PLAN``
(``bench/query_plans.py``), on a journal holding a few finished trades as the agent writes them.

``_hot_calls`` is kept in step with the journal's API (every call the engine makes on an order, a tick, a
fire, a reconcile pass), ``HOT_TABLES`` with its schema: the tables that grow with trading history, and
their archives (read by key only, never whole).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import query_plans, shim

# the tables whose size grows with trading history (the *_done archives too: read by key only)
HOT_TABLES = (
    "intents",
    "fires",
    "claims",
    "actions",
    "intents_done",
    "fires_done",
    "claims_done",
    "actions_done",
)


def _hot_calls(j: Any) -> dict[str, Callable[[], object]]:
    """The journal calls on the hot path (every order, every second, every fire, every reconcile pass)."""
    return {
        "write_ahead": lambda: shim.write_ahead(j, "new-1", "t1", 1, 100),
        "mark_sent": lambda: j.mark_sent("open:new-1"),
        "record_result": lambda: shim.record_fill(j, "open:new-1", "555"),
        "mark_reported": lambda: j.mark_reported("open:new-1"),
        "get_intent": lambda: j.get_intent("open:new-1"),
        "get_intent_missing": lambda: j.get_intent("open:nobody"),
        "add_intent": lambda: j.add_intent(shim.open_intent("new-2", "t1", 2)),
        "intent_by_magic": lambda: j.intent_by_magic("t1", 1_000_001),
        "intent_by_magic_missing": lambda: j.intent_by_magic("t1", 42),
        "open_tickets": lambda: shim.open_tickets(j),
        "close_attempts": lambda: j.close_attempts("new-1"),
        "close_attempts_missing": lambda: j.close_attempts("nobody"),
        "orders_in_window": lambda: j.orders_in_window("t1", 0.0),
        "unreported_intents": lambda: j.unreported_intents(),
        "unreported_actions": lambda: j.unreported_actions(),
        "unsettled_fires": lambda: j.unsettled_fires(),
        "add_fire": lambda: j.add_fire("new-1", "trail", ("a-1", "a-2")),
        "get_fire": lambda: j.get_fire("new-1"),
        "get_fire_missing": lambda: j.get_fire("nobody"),
        "settle_claim": lambda: j.settle_claim("new-1", "a-1"),
        "begin_action": lambda: j.begin_action("a-1", "new-1", "ENTRY"),
        "get_action_missing": lambda: j.get_action("nobody"),
        "decide_action": lambda: j.decide_action("a-1", "EXECUTED", None),
        "mark_action_reported": lambda: j.mark_action_reported("a-1"),
        "finished_positions": lambda: j.finished_positions(),  # hourly: its cost is what moves
        "archive_positions": lambda: j.archive_positions(["p-0", "h-0"]),
    }


CALLS = list(_hot_calls(None))


@pytest.fixture(params=["hot", "archived"])
def journal(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """A few finished trades, in the hot tables or moved to the archive (the lookups then fall back)."""
    now = [1_000_000.0]
    j = shim.open_journal(tmp_path / "j.sqlite3", clock=lambda: now[0])
    for n in range(5):
        shim.finished_trade(j, f"p-{n}", f"h-{n}", f"a-{n}", n)
    if request.param == "archived":
        now[0] += 365 * 86_400.0
        assert shim.archive(j) == 10
    yield j
    j.close()


@pytest.mark.parametrize("call", CALLS)
def test_a_hot_journal_call_reads_no_hot_table_whole(journal: Any, call: str) -> None:
    db = shim.connection(journal)
    calls = _hot_calls(journal)
    for name in CALLS[: CALLS.index(call)]:  # the calls before it set up its rows (an intent, a fire)
        calls[name]()
    scans = query_plans.scans_of_calls(db, {call: calls[call]}, HOT_TABLES)[call]
    assert not scans, f"{call} reads a hot table whole:\n" + "\n".join(map(str, scans))


def test_the_checker_sees_a_full_scan_and_an_index_search(journal: Any) -> None:
    db = shim.connection(journal)
    scan = query_plans.full_scans(db, ["SELECT * FROM intents WHERE volume > 1"], HOT_TABLES)
    assert [s.detail for s in scan] == ["SCAN intents"]
    assert query_plans.full_scans(db, ["SELECT * FROM intents WHERE intent_id = 'x'"], HOT_TABLES) == []
    # a partial index (only unfinished rows) is not a full scan; a scan of another table is not hot
    assert query_plans.full_scans(db, ["SELECT * FROM intents WHERE reported = 0"], HOT_TABLES) == []
    assert query_plans.full_scans(db, ["SELECT * FROM meta"], HOT_TABLES) == []
