"""The write-ahead journal: SQLite in WAL mode (design §3).

Order of writes for every intent: the intent *before* the order leaves, the result after it, then the cloud
report. On start the journal is replayed: what was sent but not reported is resolved and reported, never
sent twice. Trail states (armed, peak, fired) live here too, so a restart does not reset them.

All methods are synchronous and fast; the async shell runs them on one dedicated thread (``AsyncJournal``),
because sqlite3 connections belong to one thread and fsyncs must not block the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import ParamSpec, TypeVar

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import TrailState
from hedge_agent.errors import FatalError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    intent_id   TEXT PRIMARY KEY,   -- open:<position id> | close:<position id>
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
    state       TEXT NOT NULL,      -- pending | filled | failed | unknown
    price       REAL,
    fill_time   TEXT,
    code        INTEGER,
    reason      TEXT,
    reported    INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_unreported ON intents (reported) WHERE reported = 0;
CREATE TABLE IF NOT EXISTS trails (position_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fires (
    position_id TEXT PRIMARY KEY,   -- one fire (trail or stop-out) per position, ever
    cause       TEXT NOT NULL,      -- trail | stopped
    trigger_ids TEXT NOT NULL,      -- JSON array
    pending_ids TEXT NOT NULL,      -- JSON array: claims not settled yet
    fired_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    action_id   TEXT PRIMARY KEY,
    position_id TEXT NOT NULL,
    type        TEXT NOT NULL,
    outcome     TEXT,               -- EXECUTED | FAILED once decided
    reason      TEXT,
    reported    INTEGER NOT NULL DEFAULT 0,
    updated     REAL NOT NULL
);
"""


#: the columns each table must have (a newer agent may add some; none may be missing)
_COLUMNS = {
    "meta": ("key", "value"),
    "intents": ("intent_id", "kind", "position_id", "account_id", "terminal", "symbol", "side", "volume",
                "magic", "comment", "ticket", "state", "price", "fill_time", "code", "reason", "reported",
                "created", "updated"),
    "trails": ("position_id", "state", "updated"),
    "fires": ("position_id", "cause", "trigger_ids", "pending_ids", "fired_at"),
    "actions": ("action_id", "position_id", "type", "outcome", "reason", "reported", "updated"),
}  # fmt: skip


class IntentState(StrEnum):
    PENDING = "pending"  # written; the order may have left
    FILLED = "filled"
    FAILED = "failed"  # rejected for good (or refused by a risk cap before leaving)
    UNKNOWN = "unknown"  # the terminal could not say: reconcile by tag


@dataclass(frozen=True, slots=True)
class Intent:
    intent_id: str
    kind: str
    position_id: str
    account_id: str
    terminal: str
    symbol: Symbol
    side: Side
    volume: float
    magic: int
    comment: str
    ticket: str | None = None
    state: IntentState = IntentState.PENDING
    price: float | None = None
    fill_time: str | None = None
    code: int | None = None
    reason: str | None = None
    reported: bool = False


@dataclass(frozen=True, slots=True)
class FireRecord:
    position_id: str
    cause: str
    trigger_ids: tuple[str, ...]
    pending_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    action_id: str
    position_id: str
    type: str
    outcome: str | None
    reason: str | None
    reported: bool


_INTENT_COLS = [f for f in Intent.__dataclass_fields__]


def _intent_values(i: Intent) -> tuple[object, ...]:
    return (
        i.intent_id, i.kind, i.position_id, i.account_id, i.terminal, i.symbol.value, i.side.value, i.volume,
        i.magic, i.comment, i.ticket, i.state.value, i.price, i.fill_time, i.code, i.reason, int(i.reported),
    )  # fmt: skip


_DAMAGED = (
    "The journal is damaged: stop the agent, move the file aside (a new one is started), and check in-flight "
    "orders by hand on the terminal."
)
E = TypeVar("E", bound=StrEnum)


class _Row:
    """Reads one stored row. A value the agent cannot have written (SQLite keeps whatever type it is given)
    is a FatalError naming the table, the row and the field, instead of a bad value travelling on."""

    def __init__(self, table: str, row: sqlite3.Row, key: str) -> None:
        self.table, self.row = table, row
        self.key = row[key] if key in row.keys() else None

    def _get(self, field: str) -> object:
        try:
            return self.row[field]
        except IndexError:
            raise self._bad(field, "missing", "a column of that name") from None

    def _bad(self, field: str, value: object, expected: str) -> FatalError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return FatalError(
            f"journal table {self.table!r}, row {self.key!r}: field {field!r} holds {shown}, expected "
            f"{expected}. {_DAMAGED}"
        )

    def text(self, field: str) -> str:
        value = self._get(field)
        if not isinstance(value, str):
            raise self._bad(field, value, "text")
        return value

    def opt_text(self, field: str) -> str | None:
        return None if self._get(field) is None else self.text(field)

    def integer(self, field: str) -> int:
        value = self._get(field)
        if not isinstance(value, int):
            raise self._bad(field, value, "an integer")
        return value

    def opt_integer(self, field: str) -> int | None:
        return None if self._get(field) is None else self.integer(field)

    def real(self, field: str) -> float:
        value = self._get(field)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise self._bad(field, value, "a finite number")
        return float(value)

    def opt_real(self, field: str) -> float | None:
        return None if self._get(field) is None else self.real(field)

    def enum(self, field: str, cls: type[E]) -> E:
        value = self._get(field)
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise self._bad(field, value, f"one of {', '.join(cls)}")

    def ids(self, field: str) -> tuple[str, ...]:
        value = self._get(field)
        try:
            ids = json.loads(value) if isinstance(value, str) else None
        except (ValueError, RecursionError):
            ids = None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise self._bad(field, value, "a JSON array of action ids")
        return tuple(ids)

    def trail(self, field: str) -> TrailState:
        value = self._get(field)
        try:
            return TrailState.from_json(json.loads(self.text(field)))
        except FatalError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as e:
            raise self._bad(field, value, f"a trail state ({type(e).__name__}: {e})") from None


def _intent(row: sqlite3.Row) -> Intent:
    r = _Row("intents", row, "intent_id")
    return Intent(
        r.text("intent_id"), r.text("kind"), r.text("position_id"), r.text("account_id"), r.text("terminal"),
        r.enum("symbol", Symbol), r.enum("side", Side), r.real("volume"), r.integer("magic"),
        r.text("comment"), r.opt_text("ticket"), r.enum("state", IntentState), r.opt_real("price"), r.opt_text("fill_time"),
        r.opt_integer("code"), r.opt_text("reason"), bool(r.integer("reported")),
    )  # fmt: skip


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _fatal_on_failure(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """An SQLite error after opening (damage quick_check did not see, text that is not UTF-8, a lock held
    past busy_timeout, a full disk) is the FatalError the constructor raises: the journal is not to be
    trusted any more."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise FatalError(
                f"journal {getattr(args[0], 'path', '')} failed ({e}). Stop every other hedge-agent; if this "
                "persists the file is damaged: move it aside and check in-flight orders by hand on the "
                "terminal."
            ) from e

    return guarded


class Journal:
    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed intent survives a power cut, not only a crash of this process
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
            self._check()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise FatalError(
                f"journal {self.path} cannot be used ({e}). Stop every other hedge-agent, and if the file "
                "is corrupt move it aside: in-flight orders must then be checked by hand on the terminal."
            ) from e

    def _migrate(self) -> None:
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif not re.fullmatch(r"[0-9]{1,9}", str(row["value"])):
            raise sqlite3.DatabaseError(f"its schema version {str(row['value'])[:40]!r} is not a number")
        elif int(row["value"]) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"written by a newer hedge-agent (schema {row['value']} > {SCHEMA_VERSION}); upgrade the agent"
            )
        for table, needed in _COLUMNS.items():  # a table of the same name from another program or version
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if missing := [c for c in needed if c not in have]:
                raise sqlite3.DatabaseError(f"table {table} has no column {', '.join(missing)}")

    def _check(self) -> None:
        result = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # -- meta: small per-install facts other parts persist (e.g. a terminal's learnt server-time offset) ---

    @_fatal_on_failure
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    @_fatal_on_failure
    def set_meta(self, key: str, value: str) -> None:
        if key == "schema_version":
            raise ValueError("schema_version is the journal's own")
        with self._tx():
            self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    # -- intents ------------------------------------------------------------------------------------------

    @_fatal_on_failure
    def get_intent(self, intent_id: str) -> Intent | None:
        row = self._db.execute("SELECT * FROM intents WHERE intent_id=?", (intent_id,)).fetchone()
        return None if row is None else _intent(row)

    @_fatal_on_failure
    def add_intent(self, intent: Intent) -> Intent:
        """Write ahead. Returns the stored intent: an existing one wins (the same intent is never re-added)."""
        now = self._clock()
        with self._tx():
            self._db.execute(
                f"INSERT OR IGNORE INTO intents ({','.join(_INTENT_COLS)}, created, updated) "
                f"VALUES ({','.join('?' * len(_INTENT_COLS))}, ?, ?)",
                (*_intent_values(intent), now, now),
            )
        stored = self.get_intent(intent.intent_id)
        assert stored is not None
        return stored

    @_fatal_on_failure
    def write_ahead(self, draft: Intent, refusal: str | None, max_open: int | None) -> tuple[Intent, bool]:
        """One transaction for the hot path: the stored intent if there is one (created False); else
        ``draft`` stored as pending, or as failed with the reason when refused by ``refusal`` or by the
        open-positions cap of its terminal (created True)."""
        with self._tx():
            row = self._db.execute("SELECT * FROM intents WHERE intent_id=?", (draft.intent_id,)).fetchone()
            if row is not None:
                return _intent(row), False
            if refusal is None and max_open is not None:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM intents o WHERE o.kind='open' AND o.state IN ('filled','pending','unknown') "
                    "AND o.terminal=? AND NOT EXISTS (SELECT 1 FROM intents c WHERE c.position_id=o.position_id "
                    "AND c.kind='close' AND c.state='filled')",
                    (draft.terminal,),
                ).fetchone()
                if count >= max_open:
                    refusal = f"risk cap max_open_positions: {count} already open on this terminal"
            stored = draft if refusal is None else replace(draft, state=IntentState.FAILED, reason=refusal)
            now = self._clock()
            self._db.execute(
                f"INSERT INTO intents ({','.join(_INTENT_COLS)}, created, updated) "
                f"VALUES ({','.join('?' * len(_INTENT_COLS))}, ?, ?)",
                (*_intent_values(stored), now, now),
            )
        return stored, True

    @_fatal_on_failure
    def record_result(
        self,
        intent_id: str,
        state: IntentState,
        *,
        ticket: str | None = None,
        price: float | None = None,
        fill_time: str | None = None,
        code: int | None = None,
        reason: str | None = None,
    ) -> Intent:
        with self._tx():
            self._db.execute(
                "UPDATE intents SET state=?, ticket=COALESCE(?, ticket), price=?, fill_time=?, code=?, reason=?, "
                "updated=? WHERE intent_id=?",
                (state.value, ticket, price, fill_time, code, reason, self._clock(), intent_id),
            )
        stored = self.get_intent(intent_id)
        assert stored is not None
        return stored

    @_fatal_on_failure
    def mark_reported(self, intent_id: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE intents SET reported=1, updated=? WHERE intent_id=?", (self._clock(), intent_id)
            )

    @_fatal_on_failure
    def unreported_intents(self) -> list[Intent]:
        rows = self._db.execute("SELECT * FROM intents WHERE reported=0 ORDER BY created").fetchall()
        return [_intent(r) for r in rows]

    @_fatal_on_failure
    def intents(self) -> list[Intent]:
        return [_intent(r) for r in self._db.execute("SELECT * FROM intents ORDER BY created").fetchall()]

    @_fatal_on_failure
    def open_tickets(self) -> list[Intent]:
        """Filled opens whose position has no filled close: the positions this PC believes are open."""
        rows = self._db.execute(
            "SELECT o.* FROM intents o WHERE o.kind='open' AND o.state='filled' AND NOT EXISTS "
            "(SELECT 1 FROM intents c WHERE c.position_id = o.position_id AND c.kind='close' AND c.state='filled')"
        ).fetchall()
        return [_intent(r) for r in rows]

    @_fatal_on_failure
    def close_attempts(self, position_id: str) -> list[Intent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE position_id=? AND kind='close' ORDER BY created, intent_id",
            (position_id,),
        ).fetchall()
        return [_intent(r) for r in rows]

    @_fatal_on_failure
    def orders_in_window(self, terminal: str, since: float) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM intents WHERE terminal=? AND created>=? AND state!='failed'",
            (terminal, since),
        ).fetchone()
        return int(row[0])

    # -- trails ------------------------------------------------------------------------------------------

    @_fatal_on_failure
    def save_trails(self, states: list[TrailState]) -> None:
        if not states:
            return
        now = self._clock()
        with self._tx():
            self._db.executemany(
                "INSERT INTO trails VALUES (?, ?, ?) ON CONFLICT(position_id) DO UPDATE SET state=excluded.state, "
                "updated=excluded.updated",
                [(s.position_id, json.dumps(s.to_json()), now) for s in states],
            )

    @_fatal_on_failure
    def load_trail(self, position_id: str) -> TrailState | None:
        row = self._db.execute("SELECT * FROM trails WHERE position_id=?", (position_id,)).fetchone()
        if row is None:
            return None
        r = _Row("trails", row, "position_id")
        state = r.trail("state")
        if state.position_id != position_id:
            raise r._bad("state", state.position_id, f"the trail of {position_id!r}")
        return state

    @_fatal_on_failure
    def delete_trail(self, position_id: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM trails WHERE position_id=?", (position_id,))

    # -- fires (trail fired / stopped out) -> trigger claims --------------------------------------------

    @_fatal_on_failure
    def add_fire(self, position_id: str, cause: str, trigger_ids: tuple[str, ...]) -> FireRecord:
        """Record a fire once; a second fire of the same position returns the first record."""
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO fires VALUES (?, ?, ?, ?, ?)",
                (position_id, cause, json.dumps(trigger_ids), json.dumps(trigger_ids), self._clock()),
            )
        fire = self.get_fire(position_id)
        assert fire is not None
        return fire

    @_fatal_on_failure
    def get_fire(self, position_id: str) -> FireRecord | None:
        row = self._db.execute("SELECT * FROM fires WHERE position_id=?", (position_id,)).fetchone()
        if row is None:
            return None
        r = _Row("fires", row, "position_id")
        return FireRecord(r.text("position_id"), r.text("cause"), r.ids("trigger_ids"), r.ids("pending_ids"))

    @_fatal_on_failure
    def settle_claim(self, position_id: str, action_id: str) -> None:
        with self._tx():
            fire = self.get_fire(position_id)
            if fire is not None:
                pending = [a for a in fire.pending_ids if a != action_id]
                self._db.execute(
                    "UPDATE fires SET pending_ids=? WHERE position_id=?", (json.dumps(pending), position_id)
                )

    @_fatal_on_failure
    def unsettled_fires(self) -> list[FireRecord]:
        rows = self._db.execute("SELECT position_id FROM fires WHERE pending_ids != '[]'").fetchall()
        return [f for r in rows if (f := self.get_fire(r["position_id"])) is not None]

    # -- actions -----------------------------------------------------------------------------------------

    @_fatal_on_failure
    def get_action(self, action_id: str) -> ActionRecord | None:
        row = self._db.execute("SELECT * FROM actions WHERE action_id=?", (action_id,)).fetchone()
        if row is None:
            return None
        r = _Row("actions", row, "action_id")
        return ActionRecord(
            r.text("action_id"),
            r.text("position_id"),
            r.text("type"),
            r.opt_text("outcome"),
            r.opt_text("reason"),
            bool(r.integer("reported")),
        )

    @_fatal_on_failure
    def begin_action(self, action_id: str, position_id: str, type_: str) -> ActionRecord:
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO actions (action_id, position_id, type, updated) VALUES (?, ?, ?, ?)",
                (action_id, position_id, type_, self._clock()),
            )
        rec = self.get_action(action_id)
        assert rec is not None
        return rec

    @_fatal_on_failure
    def decide_action(self, action_id: str, outcome: str, reason: str | None) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE actions SET outcome=?, reason=?, updated=? WHERE action_id=? AND outcome IS NULL",
                (outcome, reason, self._clock(), action_id),
            )

    @_fatal_on_failure
    def mark_action_reported(self, action_id: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE actions SET reported=1, updated=? WHERE action_id=?", (self._clock(), action_id)
            )

    @_fatal_on_failure
    def unreported_actions(self) -> list[ActionRecord]:
        rows = self._db.execute("SELECT action_id FROM actions WHERE reported=0").fetchall()
        return [a for r in rows if (a := self.get_action(r["action_id"])) is not None]


P = ParamSpec("P")
T = TypeVar("T")


class AsyncJournal:
    """Runs every journal call on one dedicated thread, in order."""

    def __init__(self, journal: Journal) -> None:
        self.sync = journal
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.submit(self.sync.close).result()
        self._pool.shutdown(wait=True)
