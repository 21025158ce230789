"""The write-ahead journal: SQLite in WAL mode (design §3).

Order of writes for every intent: the intent *before* the order leaves, the result after it, then the cloud
report. On start the journal is replayed: what was sent but not reported is resolved and reported, never
sent twice. Trail states (armed, peak, fired) live here too, so a restart does not reset them. The intent
table (``domain/intents.py``) is enforced here: an illegal transition is a FatalError naming it.

A journal file that disappears or is replaced while the agent runs (a restore, a sync tool, a user moving
it) would silently lose what is in flight: every write first checks the file is still the one opened.

Finished positions move to an archive after ``keep_finished_s`` (``journal_archive.py``): the hot tables
hold only unfinished and recent work, and every lookup by key still finds an archived row.

All methods are synchronous and fast; :class:`AsyncJournal` runs them on one dedicated thread (bulk work,
replay, trail batches), or on the loop thread for the order's short writes (``quick``: no thread hop on
the order's path, issue 16), or everything inline for the simulator.

Durability: one fsync per order, at the one commit after which the order may leave, ``mark_sent``. It makes
every earlier commit durable too (the WAL is one file, written in order), so the write-ahead before it
is committed without its own fsync (``synchronous=NORMAL``: it survives a crash of this process; a power
cut can lose a pending intent only, one whose order never left, which the cloud record recreates). Every
other commit keeps ``synchronous=FULL``. Checkpoints (copying the WAL into the database, an fsync of the
database file) run on a thread of their own (:class:`Checkpointer`), never inside an order's commit.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import ParamSpec, TypeVar

from hedge_agent.domain.intents import Intent, IntentState, check_fill, check_reported, check_transition
from hedge_agent.errors import FatalError, IllegalTransition

from . import journal_archive as archive
from . import journal_checkpoint
from . import journal_schema as schema
from .journal_rows import INTENT_COLS, fatal_on_failure, intent_from, intent_values
from .journal_side import ActionRecord, FireRecord, SideTables

SCHEMA_VERSION = schema.SCHEMA_VERSION
__all__ = ["SCHEMA_VERSION", "ActionRecord", "AsyncJournal", "FireRecord", "Intent", "IntentState", "Journal"]


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


#: SQLite's own checkpoint inside a commit (every this many WAL pages); with a :class:`Checkpointer`
#: running, only a safety net for a WAL it could not keep up with
AUTOCHECKPOINT_PAGES = 1000
SENT = "sent; no answer yet"  # the reason of an intent handed to its terminal (mark_sent)
#: default age after which a finished position leaves the hot tables (``[journal] keep_finished_days``)
KEEP_FINISHED_S = 7 * 86_400.0


class Journal(SideTables):
    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        keep_finished_s: float = KEEP_FINISHED_S,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self.keep_finished_s = keep_finished_s
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed intent survives a power cut, not only a crash of this process
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            self._migrate()
            self._check()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise FatalError(
                f"journal {self.path} cannot be used ({e}). Stop every other hedge-agent, and if the file "
                "is corrupt move it aside: in-flight orders must then be checked by hand on the terminal."
            ) from e
        self._ident = None if self.path == ":memory:" else _identity(self.path)
        self._checkpointer: journal_checkpoint.Checkpointer | None = None
        self.created = self._created()  # when this journal file was started (journal clock)

    def _created(self) -> float:
        raw = self.get_meta("created")
        try:
            value = float(raw) if raw is not None else 0.0
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FatalError(
                f"journal {self.path}: meta 'created' holds {str(raw)[:40]!r}, expected a time in seconds. "
                "The journal is damaged: stop the agent, move the file aside (a new one is started), and check "
                "in-flight orders by hand on the terminal."
            )
        return value

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(schema.STATEMENTS[0])
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                schema.create(self._db)
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (repr(self._clock()),))
            elif not re.fullmatch(r"[0-9]{1,9}", str(row["value"])):
                raise sqlite3.DatabaseError(f"its schema version {str(row['value'])[:40]!r} is not a number")
            elif int(row["value"]) > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"written by a newer hedge-agent (schema {row['value']} > {SCHEMA_VERSION}); upgrade the agent"
                )
            elif int(row["value"]) < SCHEMA_VERSION:
                schema.from_v1(self._db)
            else:
                self._check_columns(existing_only=True)  # before the indexes: they would name no table
                schema.create(self._db)
            self._check_columns()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _check_columns(self, *, existing_only: bool = False) -> None:
        for table, needed in schema.COLUMNS.items():  # a table of the same name from another program
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if existing_only and not have:
                continue
            if missing := [c for c in needed if c not in have]:
                raise sqlite3.DatabaseError(f"table {table} has no column {', '.join(missing)}")

    def _check(self) -> None:
        result = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result}")

    def check_identity(self) -> None:
        """FatalError when the file at ``path`` is gone or is not the file this journal opened."""
        if self._ident is None or _identity(self.path) == self._ident:
            return
        now = _identity(self.path)
        what = "was deleted" if now is None else "was replaced by another file"
        raise FatalError(
            f"journal {self.path} {what} while the agent was running. What this PC has in flight may be lost: "
            "stop the agent, put the journal back (or keep the new one), and check open orders by hand on "
            "every terminal before starting again."
        )

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[None]:
        """One transaction; ``durable=False`` commits it without an fsync (see the module's Durability)."""
        self.check_identity()
        if not durable:
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            if not durable:
                self._db.execute("PRAGMA synchronous=FULL")

    def checkpoint_in_background(self) -> None:
        """Checkpoints from now on on a thread of their own (``journal_checkpoint``), until ``close``;
        SQLite's own, inside a commit, only as the safety net."""
        if self._checkpointer is None and self.path != ":memory:":
            self._checkpointer = journal_checkpoint.Checkpointer(self.path)
            self._db.execute(f"PRAGMA wal_autocheckpoint={journal_checkpoint.SAFETY_PAGES}")

    def close(self) -> None:
        if self._checkpointer is not None:  # first: closing the last connection checkpoints what is left
            self._checkpointer.close()
            self._checkpointer = None
        self._db.close()

    @fatal_on_failure
    def finished_positions(self, limit: int = archive.CHUNK) -> list[str]:
        """Up to ``limit`` positions finished more than ``keep_finished_s`` ago (``journal_archive.py``)."""
        return archive.finished(self._db, self._clock() - self.keep_finished_s, limit)

    @fatal_on_failure
    def archive_positions(self, position_ids: list[str]) -> None:
        """Move these finished positions' rows to the archive, one transaction (at most
        ``journal_archive.CHUNK`` of them per call, so no other call waits long)."""
        with self._tx():
            archive.move(self._db, position_ids)

    def archive_finished(self) -> int:
        """Both steps until nothing is left (tests, the bench); the agent interleaves them with its other
        calls, a few chunks per reconcile pass."""
        moved = 0
        while ids := self.finished_positions():
            self.archive_positions(ids)
            moved += len(ids)
        return moved

    # -- meta: small per-install facts other parts persist (e.g. a terminal's learnt server-time offset) ---

    @fatal_on_failure
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    @fatal_on_failure
    def set_meta(self, key: str, value: str) -> None:
        if key == "schema_version":
            raise ValueError("schema_version is the journal's own")
        with self._tx():
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    # -- intents ------------------------------------------------------------------------------------------

    def _intent_row(self, intent_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM intents WHERE intent_id=?", (intent_id,)
        ).fetchone()
        if row is None:  # finished long ago: the archive (a record asking again gets the known result)
            row = self._db.execute("SELECT * FROM intents_done WHERE intent_id=?", (intent_id,)).fetchone()
        return row

    @fatal_on_failure
    def get_intent(self, intent_id: str) -> Intent | None:
        row = self._intent_row(intent_id)
        return None if row is None else intent_from(row)

    def _insert(self, intent: Intent, *, looked_up: bool = False) -> None:
        """``looked_up``: the caller found no such intent in either table, in this transaction."""
        if (
            not looked_up
            and self._db.execute(
                "SELECT 1 FROM intents_done WHERE intent_id=?", (intent.intent_id,)
            ).fetchone()
        ):
            return  # archived: the existing one wins, as in the hot table
        try:
            check_fill(intent.intent_id, intent.state, intent.ticket, intent.price)
        except IllegalTransition as e:
            raise FatalError(f"journal refused: {e}") from None
        now = self._clock()
        self._db.execute(
            f"INSERT OR IGNORE INTO intents ({','.join(INTENT_COLS)}, created, updated) "
            f"VALUES ({','.join('?' * len(INTENT_COLS))}, ?, ?)",
            (*intent_values(intent), now, now),
        )
        if intent.kind == "close" and intent.state is IntentState.FILLED:
            self._closed(intent.position_id)

    def _closed(self, position_id: str) -> None:
        self._db.execute("UPDATE intents SET closed=1 WHERE position_id=? AND kind='open'", (position_id,))

    @fatal_on_failure
    def add_intent(self, intent: Intent, *, sent: bool = False) -> Intent:
        """Write ahead. Returns the stored intent: an existing one wins (the same intent is never re-added).
        A pending intent is committed without an fsync: ``mark_sent`` syncs it before its order leaves.
        ``sent``: stored as sent, durably, as :meth:`write_ahead` does."""
        if sent:
            intent = _as_sent(intent)
        with self._tx(durable=intent.state is not IntentState.PENDING):
            self._insert(intent)
        stored = self.get_intent(intent.intent_id)
        assert stored is not None
        return stored

    @fatal_on_failure
    def write_ahead(
        self, draft: Intent, refusal: str | None, max_open: int | None, *, sent: bool = False
    ) -> tuple[Intent, bool]:
        """One transaction for the hot path: the stored intent if there is one (created False); else
        ``draft`` stored as pending, or as failed with the reason when refused by ``refusal`` or by the
        open-positions cap of its terminal (created True). A pending one is committed without an fsync:
        ``mark_sent`` syncs it before the order leaves; a refusal is reported as the cloud record's own
        failure. ``sent``: the order leaves right after this commit with no await point between
        (``OrderPolicy.free``), so the intent is stored as ``mark_sent`` would leave it, in this one
        durable commit."""
        with self._tx(durable=sent):
            row = self._intent_row(draft.intent_id)
            if row is not None:
                return intent_from(row), False
            if refusal is None and max_open is not None:
                (count,) = self._db.execute(
                    "SELECT COUNT(*) FROM intents WHERE kind='open' AND closed=0 "
                    "AND state IN ('filled','pending','unknown') AND terminal=?",
                    (draft.terminal,),
                ).fetchone()
                if count >= max_open:
                    refusal = f"risk cap max_open_positions: {count} already open on this terminal"
            if refusal is not None:
                stored = replace(draft, state=IntentState.FAILED, reason=refusal)
            else:
                stored = _as_sent(draft) if sent else draft
            self._insert(stored, looked_up=True)
        return stored, True

    @fatal_on_failure
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
        """The order's result, by the intent table: a settled intent never changes, a fill keeps its data."""
        with self._tx():
            before = self.get_intent(intent_id)
            if before is None:
                raise FatalError(f"journal refused: no intent {intent_id} to record a result for")
            try:
                check_transition(intent_id, before.state, state)
                check_fill(intent_id, state, ticket or before.ticket, price)
            except IllegalTransition as e:
                raise FatalError(f"journal refused: {e}") from None
            self._db.execute(
                "UPDATE intents SET state=?, ticket=COALESCE(?, ticket), price=?, fill_time=?, code=?, reason=?, "
                "updated=? WHERE intent_id=?",
                (state.value, ticket, price, fill_time, code, reason, self._clock(), intent_id),
            )
            if before.kind == "close" and state is IntentState.FILLED:
                self._closed(before.position_id)
        stored = self.get_intent(intent_id)
        assert stored is not None
        return stored

    @fatal_on_failure
    def mark_sent(self, intent_id: str) -> Intent:
        """pending -> unknown right before the order is handed to the terminal: a pending intent found after
        a crash never left (safe to send), an unknown one may have (looked up, never resent). The order's
        one fsync: committed with ``synchronous=FULL``, it makes the write-ahead before it durable too, so
        neither a crash nor a power cut can leave a sent order looking unsent."""
        with self._tx():
            before = self.get_intent(intent_id)
            if before is None:
                raise FatalError(f"journal refused: no intent {intent_id} to mark sent")
            try:
                check_transition(intent_id, before.state, IntentState.UNKNOWN)
            except IllegalTransition as e:
                raise FatalError(f"journal refused: {e}") from None
            sent = _as_sent(before)
            self._db.execute(
                "UPDATE intents SET state=?, price=NULL, fill_time=NULL, code=NULL, reason=?, updated=? "
                "WHERE intent_id=?",
                (sent.state.value, SENT, self._clock(), intent_id),
            )
        return sent  # what record_result would read back, without reading it back (the hot path)

    @fatal_on_failure
    def mark_reported(self, intent_id: str) -> None:
        with self._tx():
            before = self.get_intent(intent_id)
            if before is None:
                return
            try:
                check_reported(intent_id, before.state)
            except IllegalTransition as e:
                raise FatalError(f"journal refused: {e}") from None
            self._db.execute(
                "UPDATE intents SET reported=1, updated=? WHERE intent_id=?", (self._clock(), intent_id)
            )

    @fatal_on_failure
    def unreported_intents(self) -> list[Intent]:
        rows = self._db.execute("SELECT * FROM intents WHERE reported=0 ORDER BY created").fetchall()
        return [intent_from(r) for r in rows]

    @fatal_on_failure
    def intents(self) -> list[Intent]:
        """Every intent, archived ones included (diagnostics, not the hot path)."""
        rows = self._db.execute(
            "SELECT * FROM intents UNION ALL SELECT * FROM intents_done ORDER BY created"
        ).fetchall()
        return [intent_from(r) for r in rows]

    @fatal_on_failure
    def open_tickets(self) -> list[Intent]:
        """Filled opens whose position has no filled close: the positions this PC believes are open."""
        rows = self._db.execute(
            "SELECT * FROM intents WHERE kind='open' AND closed=0 AND state='filled'"
        ).fetchall()
        return [intent_from(r) for r in rows]

    @fatal_on_failure
    def intent_by_magic(self, terminal: str, magic: int) -> Intent | None:
        """The open intent whose tag is ``magic`` on ``terminal`` (a live trade's owner), if any."""
        row = self._db.execute(
            "SELECT * FROM intents WHERE magic=? AND terminal=? AND kind='open'", (magic, terminal)
        ).fetchone()
        if row is None:
            row = self._db.execute(
                "SELECT * FROM intents_done WHERE magic=? AND terminal=? AND kind='open'", (magic, terminal)
            ).fetchone()
        return None if row is None else intent_from(row)

    @fatal_on_failure
    def close_attempts(self, position_id: str) -> list[Intent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE position_id=? AND kind='close' ORDER BY created, intent_id",
            (position_id,),
        ).fetchall()
        if not rows:  # a position's rows are all in the hot table or all in the archive
            rows = self._db.execute(
                "SELECT * FROM intents_done WHERE position_id=? AND kind='close' ORDER BY created, intent_id",
                (position_id,),
            ).fetchall()
        return [intent_from(r) for r in rows]

    @fatal_on_failure
    def orders_in_window(self, terminal: str, since: float) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM intents WHERE terminal=? AND created>=? AND state!='failed'",
            (terminal, since),
        ).fetchone()
        return int(row[0])


def _as_sent(intent: Intent) -> Intent:
    """An intent as it is once its order may have left (``mark_sent``)."""
    return replace(intent, state=IntentState.UNKNOWN, price=None, fill_time=None, code=None, reason=SENT)


P = ParamSpec("P")
T = TypeVar("T")


class AsyncJournal:
    """Runs journal calls on one dedicated thread, in order, or on the loop thread.

    ``call`` hops to the journal thread (bulk work: trail batches, replay reads, the archive). ``quick``
    runs a short write on the loop thread (the order's write-ahead and ``mark_sent``, issue 16): two thread
    hops cost more than the write itself (0.5-7 ms p50, up to 100 ms p99 on a busy PC, against ~0.3 ms for
    an indexed write with its fsync), and the loop is blocked for that one write only. A lock keeps the two
    from ever interleaving on the one connection (a quick call waits for the journal thread's current call).

    ``inline=True`` runs every call on the loop thread (no thread at all: the deterministic simulator and
    tests that need one ordering of events use it)."""

    def __init__(self, journal: Journal, *, inline: bool = False) -> None:
        self.sync = journal
        self.inline = inline
        self._lock = threading.Lock()
        self._pool = None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        if not inline:
            journal.checkpoint_in_background()

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._pool is None:
            return fn(*args, **kwargs)

        def locked() -> T:
            with self._lock:
                return fn(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(self._pool, locked)

    async def quick(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return fn(*args, **kwargs)

    def close(self) -> None:
        if self._pool is None:
            self.sync.close()
            return
        self._pool.submit(self.sync.close).result()
        self._pool.shutdown(wait=True)
