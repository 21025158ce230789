"""Every hot journal call finds its rows through an index: no full scan of a hot table (issue 16).

The statements are the ones each call really runs (traced), checked with ``EXPLAIN QUERY PLAN``
(``bench/query_plans.py``), on a journal holding a few finished trades as the agent writes them.

ADAPT AT MERGE (engine rework): ``HOT_CALLS`` is the list to keep in step with the journal's API, and
``HOT_TABLES`` with its schema names; ``NOT_YET_INDEXED`` lists the calls that scan on the schema this was
written against (strict xfail: once a call is indexed its entry fails as XPASS and must be removed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import query_plans, shim

# ADAPT AT MERGE: the tables whose size grows with trading history
HOT_TABLES = ("intents", "fires", "claims")


def _hot_calls(j: Any) -> dict[str, Callable[[], object]]:
    """ADAPT AT MERGE: the journal calls on the hot path (every order, every second, every start)."""
    return {
        "write_ahead": lambda: shim.write_ahead(j, "new-1", "t1", 1, 100),
        "record_result": lambda: shim.record_fill(j, "open:new-1", "555"),
        "mark_reported": lambda: j.mark_reported("open:new-1"),
        "get_intent": lambda: j.get_intent("open:new-1"),
        "open_tickets": lambda: shim.open_tickets(j),
        "close_attempts": lambda: j.close_attempts("new-1"),
        "orders_in_window": lambda: j.orders_in_window("t1", 0.0),
        "unreported_intents": lambda: j.unreported_intents(),
        "unreported_actions": lambda: j.unreported_actions(),
        "unsettled_fires": lambda: j.unsettled_fires(),
        "add_fire": lambda: j.add_fire("new-1", "trail", ("a-1", "a-2")),
        "settle_claim": lambda: j.settle_claim("new-1", "a-1"),
        "begin_action": lambda: j.begin_action("a-1", "new-1", "ENTRY"),
        "decide_action": lambda: j.decide_action("a-1", "EXECUTED", None),
    }


# ADAPT AT MERGE: scanning on the schema of c3fb040/f9f64a2; remove each entry as the rework indexes it.
# orders_in_window is called by no part of the agent (only the journal fuzzer): index it or delete it.
NOT_YET_INDEXED = {"write_ahead", "open_tickets", "close_attempts", "orders_in_window", "unsettled_fires"}

CALLS = list(_hot_calls(None))


@pytest.fixture
def journal(tmp_path: Path) -> Any:
    j = shim.open_journal(tmp_path / "j.sqlite3")
    for n in range(5):
        shim.finished_trade(j, f"p-{n}", f"h-{n}", f"a-{n}", n)
    yield j
    j.close()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            c,
            marks=pytest.mark.xfail(strict=True, reason="issue 16: indexed by the engine rework")
            if c in NOT_YET_INDEXED
            else (),
        )
        for c in CALLS
    ],
)
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
