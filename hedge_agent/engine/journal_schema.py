"""The journal's schema (version 2) and its migration from version 1.

Every hot query is served by an index (issue 16 measures them):

* ``write_ahead``'s open-positions count and ``open_tickets``: ``intents_live``, a partial index over open
  intents whose position has no filled close (``closed`` is kept on the open intent, set in the same
  transaction as the close's fill: no correlated NOT EXISTS);
* ``unreported_intents`` / ``unreported_actions``: partial indexes on ``reported = 0``;
* ``close_attempts``: ``intents_position``;
* ``unsettled_fires``: claims are rows (settling one is an O(1) primary-key update), ``claims_unsettled``
  is a partial index on ``settled = 0``;
* ``orders_in_window``: ``intents_window`` on ``(terminal, created)``.

Finished work leaves the hot tables (``journal_archive.py``): the ``*_done`` tables hold the same rows, read
only by key (an intent id, a position id, a magic, an action id) when the hot table does not have it.
"""

from __future__ import annotations

import json
import sqlite3

SCHEMA_VERSION = 2

STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS intents (
    intent_id   TEXT PRIMARY KEY,   -- open:<position id> | close:<position id>:<attempt>
    kind        TEXT NOT NULL,      -- open | close
    position_id TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL,      -- side of the order itself
    volume      REAL NOT NULL,
    magic       INTEGER NOT NULL,
    comment     TEXT NOT NULL,
    ticket      TEXT,               -- open: the resulting ticket; close: the ticket being closed
    state       TEXT NOT NULL,      -- pending | filled | failed | unknown (domain/intents.py)
    price       REAL,
    fill_time   TEXT,
    code        INTEGER,
    reason      TEXT,
    reported    INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL,
    updated     REAL NOT NULL,
    closed      INTEGER NOT NULL DEFAULT 0  -- open intents: 1 once a close of the position filled
)""",
    "CREATE INDEX IF NOT EXISTS intents_unreported ON intents (reported) WHERE reported = 0",
    "CREATE INDEX IF NOT EXISTS intents_position ON intents (position_id, kind)",
    "CREATE INDEX IF NOT EXISTS intents_magic ON intents (magic)",
    "CREATE INDEX IF NOT EXISTS intents_live ON intents (state, terminal) WHERE kind = 'open' AND closed = 0",
    "CREATE TABLE IF NOT EXISTS trails (position_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL)",
    """CREATE TABLE IF NOT EXISTS fires (
    position_id TEXT PRIMARY KEY,   -- one fire (trail or stop-out) per position, ever
    cause       TEXT NOT NULL,      -- trail | stopped
    fired_at    REAL NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS claims (
    position_id TEXT NOT NULL,      -- the fire's position
    action_id   TEXT NOT NULL,      -- a trigger action to claim
    seq         INTEGER NOT NULL,   -- its place in the position's triggerActionIds
    settled     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (position_id, action_id)
)""",
    "CREATE INDEX IF NOT EXISTS claims_unsettled ON claims (position_id) WHERE settled = 0",
    """CREATE TABLE IF NOT EXISTS actions (
    action_id   TEXT PRIMARY KEY,
    position_id TEXT NOT NULL,
    type        TEXT NOT NULL,
    outcome     TEXT,               -- EXECUTED | FAILED once decided
    reason      TEXT,
    reported    INTEGER NOT NULL DEFAULT 0,
    updated     REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS actions_unreported ON actions (reported) WHERE reported = 0",
    "CREATE INDEX IF NOT EXISTS intents_window ON intents (terminal, created)",
)


def _done(statement: str, table: str) -> str:
    return statement.replace(f"EXISTS {table} (", f"EXISTS {table}_done (", 1)


#: the archive of finished positions (``journal_archive.py``): same columns, looked up by key only
ARCHIVE_STATEMENTS = (
    _done(STATEMENTS[1], "intents"),
    "CREATE INDEX IF NOT EXISTS intents_done_position ON intents_done (position_id, kind)",
    "CREATE INDEX IF NOT EXISTS intents_done_magic ON intents_done (magic)",
    _done(STATEMENTS[7], "fires"),
    _done(STATEMENTS[8], "claims"),
    _done(STATEMENTS[10], "actions"),
    "CREATE INDEX IF NOT EXISTS actions_done_position ON actions_done (position_id)",
    "CREATE INDEX IF NOT EXISTS actions_position ON actions (position_id)",
    "CREATE INDEX IF NOT EXISTS intents_settled ON intents (updated) WHERE kind = 'open' AND (closed = 1 OR state = 'failed')",
)

#: the columns each table must have (a newer agent may add some; none may be missing)
COLUMNS = {
    "meta": ("key", "value"),
    "intents": ("intent_id", "kind", "position_id", "account_id", "terminal", "symbol", "side", "volume",
                "magic", "comment", "ticket", "state", "price", "fill_time", "code", "reason", "reported",
                "created", "updated", "closed"),
    "trails": ("position_id", "state", "updated"),
    "fires": ("position_id", "cause", "fired_at"),
    "claims": ("position_id", "action_id", "seq", "settled"),
    "actions": ("action_id", "position_id", "type", "outcome", "reason", "reported", "updated"),
}  # fmt: skip


def create(db: sqlite3.Connection) -> None:
    for statement in (*STATEMENTS, *ARCHIVE_STATEMENTS):
        db.execute(statement)


def _ids(raw: object, what: str) -> list[str]:
    try:
        ids = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise sqlite3.DatabaseError(f"version-1 fires row holds {what} {str(raw)[:60]!r}, not a JSON id list")
    return ids


def from_v1(db: sqlite3.Connection) -> None:
    """Version 1 -> 2, in the caller's transaction: ``closed`` on open intents, fires' JSON id lists
    become claim rows, the new indexes."""
    have = {r[1] for r in db.execute("PRAGMA table_info(intents)")}
    if "closed" not in have:
        db.execute("ALTER TABLE intents ADD COLUMN closed INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE intents SET closed = 1 WHERE kind = 'open' AND position_id IN "
        "(SELECT position_id FROM intents WHERE kind = 'close' AND state = 'filled')"
    )
    fire_cols = {r[1] for r in db.execute("PRAGMA table_info(fires)")}
    old = []
    if "pending_ids" in fire_cols:
        old = db.execute(
            "SELECT position_id, cause, trigger_ids, pending_ids, fired_at FROM fires"
        ).fetchall()
        db.execute("DROP TABLE fires")
    create(db)
    for position_id, cause, trigger_ids, pending_ids, fired_at in old:
        db.execute("INSERT INTO fires VALUES (?, ?, ?)", (position_id, cause, fired_at))
        pending = set(_ids(pending_ids, "pending_ids"))
        db.executemany(
            "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)",
            [
                (position_id, a, n, int(a not in pending))
                for n, a in enumerate(_ids(trigger_ids, "trigger_ids"))
            ],
        )
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
