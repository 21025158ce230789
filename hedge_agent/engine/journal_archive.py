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

CHUNK = 100  # positions per transaction: a quick call (an order) waits for one chunk at most

# candidates through the partial index ``intents_settled`` (open intents settled for good), then per
# position through its indexes: the cost grows with what moves, not with the history
_FINISHED = """
SELECT o.position_id FROM intents o
WHERE o.kind = 'open' AND (o.closed = 1 OR o.state = 'failed') AND o.updated < ?1
  AND NOT EXISTS (SELECT 1 FROM intents i WHERE i.position_id = o.position_id AND (i.reported = 0 OR i.updated >= ?1))
  AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.position_id = o.position_id AND c.settled = 0)
  AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.position_id = o.position_id AND (a.reported = 0 OR a.updated >= ?1))
  AND NOT EXISTS (SELECT 1 FROM fires f WHERE f.position_id = o.position_id AND f.fired_at >= ?1)
ORDER BY o.updated LIMIT ?2
"""


def finished(db: sqlite3.Connection, cutoff: float, limit: int) -> list[str]:
    """Up to ``limit`` positions whose rows may move to the archive (see the module doc), oldest first."""
    return [r[0] for r in db.execute(_FINISHED, (cutoff, limit))]


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
