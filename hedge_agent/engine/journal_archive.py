"""Finished work leaves the hot tables (issue 16): the journal stays as fast with years of trading as empty.

A position is *finished* when its open intent is settled for good (filled and its position closed, or
failed), every intent of it is reported, every claim of its fire is settled, every action of it is reported,
and nothing of it changed for ``keep_finished_s`` (``[journal] keep_finished_days``). Its rows then move, in
one transaction, from ``intents``/``fires``/``claims``/``actions`` to the same-shaped ``*_done`` tables.

What is kept: everything. The archive is read only by key, and only when the hot table does not have the
key: ``get_intent``, ``close_attempts``, ``intent_by_magic``, ``get_fire``, ``get_action`` fall back to it,
and a write of an id the archive holds is ignored as a write of an id the hot table holds is (the existing
one wins). So a record asking again, months later, for a step already done still gets its known result
(OPEN with its fill, CLOSED with its exit), a stray trade still names its position, a fire is still never
recorded twice. Nothing the reconciliation reads in bulk (unreported intents and actions, open tickets,
unsettled claims) is ever in the archive, by the definition above.
"""

from __future__ import annotations

import sqlite3

from . import journal_schema as schema

_CHUNK = 100  # positions per transaction: a quick call (an order) waits for one chunk at most

_FINISHED = """
SELECT position_id FROM intents GROUP BY position_id
HAVING SUM(kind = 'open' AND ((state = 'filled' AND closed = 1) OR state = 'failed')) > 0
   AND SUM(reported = 0) = 0 AND MAX(updated) < ?
"""
_BUSY = (
    "SELECT DISTINCT position_id FROM claims WHERE settled = 0",
    "SELECT DISTINCT position_id FROM actions WHERE reported = 0 OR updated >= ?",
    "SELECT position_id FROM fires WHERE fired_at >= ?",
)


def finished(db: sqlite3.Connection, cutoff: float) -> list[str]:
    """The positions whose rows may move to the archive (see the module doc)."""
    busy: set[str] = set()
    for sql in _BUSY:
        args = (cutoff,) if "?" in sql else ()
        busy.update(r[0] for r in db.execute(sql, args))
    return [r[0] for r in db.execute(_FINISHED, (cutoff,)) if r[0] not in busy]


def move(db: sqlite3.Connection, position_ids: list[str]) -> None:
    """Move these positions' rows to the archive (in the caller's transaction)."""
    marks = ",".join("?" * len(position_ids))
    for table in ("intents", "fires", "claims", "actions"):
        cols = ",".join(schema.COLUMNS[table])
        db.execute(
            f"INSERT OR IGNORE INTO {table}_done ({cols}) SELECT {cols} FROM {table} "
            f"WHERE position_id IN ({marks})",
            position_ids,
        )
        db.execute(f"DELETE FROM {table} WHERE position_id IN ({marks})", position_ids)


def chunks(position_ids: list[str]) -> list[list[str]]:
    return [position_ids[n : n + _CHUNK] for n in range(0, len(position_ids), _CHUNK)]
