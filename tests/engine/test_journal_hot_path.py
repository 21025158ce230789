"""The order's journal calls on the loop thread (issue 16): what they return is what is stored, and they
never interleave with a call running on the journal thread (one sqlite connection)."""

from __future__ import annotations

import threading
from pathlib import Path

from bench import shim
from hedge_agent.engine.journal import AsyncJournal, IntentState, Journal


def test_mark_sent_returns_exactly_what_it_stored(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    shim.write_ahead(j, "p1", "t1", 1, 100)
    sent = j.mark_sent("open:p1")
    assert sent.state is IntentState.UNKNOWN and sent == j.get_intent("open:p1")
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for the next write


async def test_the_journal_thread_and_the_loop_thread_share_one_lock_around_every_call(
    tmp_path: Path,
) -> None:
    """Whoever runs a call holds the lock for all of it, so a quick call on the loop thread waits for the
    journal thread's call in flight (and the other way round): never two transactions at once."""
    journal = AsyncJournal(Journal(tmp_path / "j.sqlite3"))
    held: list[tuple[str, bool]] = []

    def probe(where: str) -> None:
        held.append((where, journal._lock.locked() and not journal._lock.acquire(blocking=False)))

    await journal.call(probe, threading.current_thread().name)
    await journal.quick(probe, "loop")
    assert [h for _, h in held] == [True, True]
    journal.close()
