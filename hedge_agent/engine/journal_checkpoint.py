"""Checkpoints off the order's path: the WAL copied into the database on a thread of its own.

SQLite's own checkpoint runs inside whichever commit crosses ``wal_autocheckpoint`` pages: that commit
then copies the WAL into the database and fsyncs it, several milliseconds, and on the loop thread that
commit may be an order's. A :class:`Checkpointer` has its own connection and runs a ``PASSIVE`` checkpoint
every ``every_s`` (it never blocks a writer or a reader, https://www.sqlite.org/c3ref/wal_checkpoint_v2.html);
once it has copied everything, the next write restarts the WAL from its start, so the file stays small.
The journal keeps SQLite's own checkpoint as a safety net, at ``SAFETY_PAGES``, for a WAL written faster
than this thread copies it.
"""

from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger(__name__)

#: SQLite's own checkpoint, past this many WAL pages (4 KiB each), while a Checkpointer runs
SAFETY_PAGES = 8000


class Checkpointer:
    def __init__(self, path: str, *, every_s: float = 0.5) -> None:
        self.path = path
        self.every_s = every_s
        self.done = 0  # checkpoints that copied every frame (diagnostics, tests)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.execute("PRAGMA synchronous=FULL")  # the database file is fsynced after each copy
        self._stop = threading.Event()
        self._failed: str | None = None
        self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def run_once(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames copied), as SQLite reports them."""
        busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames == copied:
            self.done += 1
        return int(busy), int(frames), int(copied)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.run_once()
            except sqlite3.Error as e:  # the journal's own checkpoint still runs past SAFETY_PAGES
                if str(e) != self._failed:
                    self._failed = str(e)
                    log.warning(
                        "journal checkpoint failed; SQLite's own checkpoint takes over",
                        journal=self.path, error=str(e),
                    )  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._db.close()
