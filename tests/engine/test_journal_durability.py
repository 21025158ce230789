"""Where the journal's fsync is (issue 16): once per order, at ``mark_sent``, the last commit before the
order leaves; and checkpoints off the order's commits, on a thread of their own."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from bench import shim
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.engine import journal_checkpoint
from hedge_agent.engine.journal import AsyncJournal, Intent, IntentState, Journal

LEVEL = {"PRAGMA synchronous=NORMAL": 1, "PRAGMA synchronous=FULL": 2}


def commits_by_level(j: Journal, act: object) -> list[int]:
    """The ``synchronous`` level in force at each COMMIT while ``act()`` runs (2 = FULL: an fsync)."""
    level = [int(j._db.execute("PRAGMA synchronous").fetchone()[0])]
    commits: list[int] = []

    def trace(sql: str) -> None:
        if sql in LEVEL:
            level[0] = LEVEL[sql]
        elif sql == "COMMIT":
            commits.append(level[0])

    j._db.set_trace_callback(trace)
    try:
        act()  # type: ignore[operator]
    finally:
        j._db.set_trace_callback(None)
    return commits


def test_an_order_has_one_durable_commit_and_it_is_the_one_before_it_leaves(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    assert commits_by_level(j, lambda: shim.write_ahead(j, "p1", "t1", 1, 100)) == [1]
    assert commits_by_level(j, lambda: j.mark_sent("open:p1")) == [2]
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL for every other write
    assert j.get_intent("open:p1").state is IntentState.UNKNOWN  # type: ignore[union-attr]


def test_a_pending_close_waits_for_its_mark_sent_and_a_settled_intent_is_durable_at_once(
    tmp_path: Path,
) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    close = Intent("close:p1:1", "close", "p1", "a", "t1", Symbol.USDJPY, Side.SELL, 0.1, 7, "c", ticket="9")
    assert commits_by_level(j, lambda: j.add_intent(close)) == [1]
    failed = Intent(
        "close:p2:1", "close", "p2", "a", "t1", Symbol.USDJPY, Side.SELL, 0.1, 8, "c",
        state=IntentState.FAILED, reason="paused",
    )  # fmt: skip
    assert commits_by_level(j, lambda: j.add_intent(failed)) == [2]


def test_a_failing_write_ahead_still_restores_full_sync(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    j._db.execute(
        "CREATE TRIGGER no_more BEFORE INSERT ON intents BEGIN SELECT RAISE(ABORT, 'full disk'); END"
    )
    try:
        shim.write_ahead(j, "p1", "t1", 1, 100)
    except Exception as e:
        assert "full disk" in str(e)
    else:
        raise AssertionError("the write did not fail")
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def test_a_full_background_checkpoint_lets_the_next_write_restart_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    checkpointer = journal_checkpoint.Checkpointer(str(path), every_s=3600)  # driven by hand below
    try:
        for n in range(200):
            shim.write_ahead(j, f"p{n}", "t1", n, 1000)
        grown = wal_size(path)
        busy, frames, copied = checkpointer.run_once()
        assert (busy, copied) == (0, frames) and frames > 0
        for n in range(200, 210):
            shim.write_ahead(j, f"p{n}", "t1", n, 1000)
        assert wal_size(path) == grown  # written again from its start: the file did not grow
        assert checkpointer.run_once()[1] < frames  # and holds only the new frames
    finally:
        checkpointer.close()
        j.close()
    assert not Path(f"{path}-wal").exists()  # the last connection closed: everything in the database


async def test_the_agents_journal_checkpoints_on_its_own_thread_not_in_a_commit(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = AsyncJournal(Journal(path))
    j = journal.sync
    assert j._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == journal_checkpoint.SAFETY_PAGES
    checkpointer = j._checkpointer
    assert checkpointer is not None and checkpointer.every_s <= 1.0
    for n in range(50):
        await journal.quick(j.write_ahead, shim.open_intent(f"p{n}", "t1", n), None, 1000)
    deadline = time.monotonic() + 10
    while checkpointer.done == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert checkpointer.done > 0
    journal.close()
    assert not checkpointer._thread.is_alive()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM intents").fetchone()[0] == 50
    check.close()


def test_an_inline_journal_keeps_sqlites_own_checkpoints(tmp_path: Path) -> None:
    journal = AsyncJournal(Journal(tmp_path / "j.sqlite3"), inline=True)
    assert journal.sync._checkpointer is None
    assert journal.sync._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    journal.close()


def test_an_intent_written_as_sent_is_what_mark_sent_leaves_in_one_durable_commit(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    shim.write_ahead(j, "p1", "t1", 1, 100)
    via_mark = j.mark_sent("open:p1")
    draft = shim.open_intent("p2", "t1", 2)
    commits = commits_by_level(j, lambda: j.write_ahead(draft, None, 100, sent=True))
    assert commits == [2]
    stored = j.get_intent("open:p2")
    assert stored is not None and (stored.state, stored.reason) == (via_mark.state, via_mark.reason)
    refused = shim.open_intent("p3", "t1", 3)
    stored_refusal, created = j.write_ahead(refused, "paused", 100, sent=True)
    assert created and stored_refusal.state is IntentState.FAILED and stored_refusal.reason == "paused"
