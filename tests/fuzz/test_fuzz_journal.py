"""Damaged journals: every read and replay method returns well-typed values or raises a FatalError that says
what to do; no sqlite3, ValueError, KeyError or json error escapes.

The fuzz test runs a few hundred seeded cases (bench/fuzz.py runs 10,000); the tests after it pin the
crashes the fuzzer found, one each.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import new_trail
from hedge_agent.engine.journal import Journal
from hedge_agent.errors import FatalError

from .common import FUZZ, SEEDS
from .journal_target import TARGET, template


@FUZZ
@given(SEEDS)
def test_any_damaged_journal_replays_or_stops_with_a_fatal_error_saying_what_to_do(seed: int) -> None:
    TARGET.check(TARGET.case(seed))


def damaged(tmp_path: Path, *statements: str) -> Path:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(template())
    db = sqlite3.connect(path)
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize(
    ("sql", "read", "names"),
    [
        (
            "UPDATE intents SET symbol='GBPUSD' WHERE intent_id='open:p1'",
            "intents",
            ("intents", "open:p1", "symbol"),
        ),
        (
            "UPDATE intents SET magic='weird' WHERE intent_id='open:p4'",
            "intents",
            ("intents", "open:p4", "magic"),
        ),
        ("UPDATE intents SET side=CAST(X'C3' AS TEXT) WHERE intent_id='open:p2'", "intents", ("journal",)),
        (
            "UPDATE claims SET action_id=X'00' WHERE position_id='p1' AND action_id='a2'",
            "unsettled_fires",
            ("claims", "action_id"),
        ),
        (
            "UPDATE actions SET position_id=X'00' WHERE action_id='a2'",
            "unreported_actions",
            ("actions", "a2"),
        ),
    ],
)
def test_a_row_the_agent_cannot_have_written_is_a_fatal_error_naming_it(
    tmp_path: Path, sql: str, read: str, names: tuple[str, ...]
) -> None:
    j = Journal(damaged(tmp_path, sql))
    with pytest.raises(FatalError) as e:
        getattr(j, read)()
    assert all(name in str(e.value) for name in names) and "move" in str(e.value)
    j.close()


INFINITE_ENTRY = json.dumps(
    new_trail("p1", Symbol.EURUSD, Side.SELL, 110_000, 50).to_json() | {"entry": math.inf}
)


@pytest.mark.parametrize("state", [INFINITE_ENTRY, '{"position_id": "p1"}', "[", "[]", '"p1"'])
def test_a_trail_state_that_is_not_one_is_a_fatal_error_naming_the_row(tmp_path: Path, state: str) -> None:
    j = Journal(damaged(tmp_path, f"UPDATE trails SET state='{state}' WHERE position_id='p1'"))
    with pytest.raises(FatalError, match="'trails', row 'p1': field 'state'"):
        j.load_trail("p1")
    j.close()


def test_a_trail_stored_under_another_position_is_a_fatal_error(tmp_path: Path) -> None:
    j = Journal(damaged(tmp_path, "UPDATE trails SET position_id='p9' WHERE position_id='p1'"))
    with pytest.raises(FatalError, match="'trails', row 'p9'"):
        j.load_trail("p9")
    j.close()


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        (("UPDATE meta SET value='two' WHERE key='schema_version'",), "schema version 'two' is not a number"),
        ((f"UPDATE meta SET value='{'9' * 5000}' WHERE key='schema_version'",), "is not a number"),
        # the column's index goes first (SQLite refuses to drop an indexed column)
        (
            ("DROP INDEX intents_window", "ALTER TABLE intents DROP COLUMN created"),
            "table intents has no column created",
        ),
    ],
)
def test_a_journal_whose_schema_is_not_ours_is_refused_at_open(
    tmp_path: Path, sql: tuple[str, ...], why: str
) -> None:
    with pytest.raises(FatalError, match="cannot be used") as e:
        Journal(damaged(tmp_path, *sql))
    assert why in str(e.value)
