"""``EXPLAIN QUERY PLAN`` for the journal's hot calls: which of their statements read a hot table whole.

The statements are not copied from the journal's source: :func:`traced` records what a call really runs
(``sqlite3.Connection.set_trace_callback`` gives each statement with its values filled in), and
:func:`full_scans` asks SQLite how it would run each of them. A plan line ``SCAN <table>`` is a full table
scan; ``SCAN <table> USING [COVERING] INDEX i`` walks the whole index, which is as bad unless ``i`` is a
partial index (``CREATE INDEX ... WHERE``: it holds only the unfinished rows); ``SEARCH`` is a lookup.

Used by ``tests/engine/test_query_plans.py``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_SKIP = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|PRAGMA|SAVEPOINT|RELEASE|CREATE|DROP|ANALYZE|VACUUM)\b", re.I)


@contextmanager
def traced(db: sqlite3.Connection) -> Iterator[list[str]]:
    """Every data statement ``db`` runs inside the block (expanded SQL, in order)."""
    seen: list[str] = []

    def note(sql: str) -> None:
        if not _SKIP.match(sql):
            seen.append(sql)

    db.set_trace_callback(note)
    try:
        yield seen
    finally:
        db.set_trace_callback(None)


def plan(db: sqlite3.Connection, sql: str) -> list[str]:
    return [str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]


def _partial_indexes(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL").fetchall()
    return {str(name) for name, sql in rows if re.search(r"\bWHERE\b", str(sql), re.I)}


_SCAN = re.compile(r"^SCAN (\w+)(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?")


@dataclass(frozen=True)
class FullScan:
    sql: str
    detail: str

    def __str__(self) -> str:
        return f"{self.detail}  <-  {self.sql}"


def full_scans(db: sqlite3.Connection, statements: Collection[str], hot: Collection[str]) -> list[FullScan]:
    """The plan lines of ``statements`` that read a table of ``hot`` (or a whole index of it) in full."""
    partial = _partial_indexes(db)
    aliases = {t.lower() for t in hot}
    out: list[FullScan] = []
    for sql in dict.fromkeys(statements):
        for detail in plan(db, sql):
            m = _SCAN.match(detail)
            if m is None:
                continue
            table = _table_of(sql, m.group(1))
            if table.lower() in aliases and (m.group(2) is None or m.group(2) not in partial):
                out.append(FullScan(sql, detail))
    return out


def _table_of(sql: str, name: str) -> str:
    """``SCAN o`` names the alias: find which table ``o`` stands for in the statement."""
    for m in re.finditer(rf"\b(\w+)\s+(?:AS\s+)?{re.escape(name)}\b", sql, re.I):
        if m.group(1).upper() not in _KEYWORDS:
            return m.group(1)
    return name


_KEYWORDS = {
    "FROM",
    "JOIN",
    "UPDATE",
    "INTO",
    "SELECT",
    "WHERE",
    "AND",
    "OR",
    "ON",
    "NOT",
    "BY",
    "SET",
    "DISTINCT",
}


def scans_of_calls(
    db: sqlite3.Connection, calls: dict[str, Callable[[], object]], hot: Collection[str]
) -> dict[str, list[FullScan]]:
    """Run each named call with tracing on; the full scans of the statements each one ran."""
    out: dict[str, list[FullScan]] = {}
    for name, call in calls.items():
        with traced(db) as seen:
            call()
        if not seen:
            raise AssertionError(
                f"{name} ran no SQL statement: the trace saw nothing (is it the same connection?)"
            )
        out[name] = full_scans(db, seen, hot)
    return out
