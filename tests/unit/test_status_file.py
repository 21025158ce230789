"""status.json and `hedge-agent status` (issue 14, point 6)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hedge_agent.status_file import describe, read, write_atomic

DATA = {
    "pid": os.getpid(), "simulate": False, "user": "alice", "cloud": "connected", "paused": False,
    "terminals": [{"name": "mt5-main", "kind": "mt5", "account_id": "acc-1", "connection": "connected",
                   "trade_allowed": True, "detail": ""}],
    "positions": [{"terminal": "mt5-main", "position_id": "p-1", "symbol": "USDJPY", "side": "BUY", "lots": "0.10",
                   "status": "OPEN", "ticket": "77", "entry": "150.100", "trail_pips": 5.0, "trail": "armed",
                   "stop": "150.130", "stop_pips": "3.0"}],
    "errors": [{"level": "error", "title": "Action a1 FAILED", "message": "market closed"}],
    "skipped_not_bound": {"count": 2, "accounts": {"acc-typo": ["p-9", "a-9"]}},
    "stopped": False,
}  # fmt: skip


def test_status_shows_the_running_agent_its_terminals_positions_stops_errors_and_skips(
    tmp_path: Path,
) -> None:
    path = tmp_path / "status.json"
    write_atomic(path, {**DATA, "written_at": time.time()})
    text = "\n".join(describe(read(path)))
    assert f"agent: running (pid {os.getpid()})" in text
    assert "terminal mt5-main (mt5, account acc-1): connected; 1 position(s)" in text
    assert "USDJPY BUY  0.10 lots OPEN    #77" in text and "stop 150.130 (3.0 pips from entry)" in text
    assert "skipped 2 record(s)" in text and "account acc-typo: p-9, a-9" in text
    assert "[error] Action a1 FAILED: market closed" in text
    assert not list(tmp_path.glob("*.tmp"))  # written atomically: no leftovers


def test_a_stale_status_of_a_dead_pid_says_not_running() -> None:
    lines = describe({**DATA, "pid": 2**22 + 12345, "written_at": time.time() - 600})
    assert lines[0].startswith("agent: not running (pid") and "10 min ago" in lines[0]


def test_no_status_file_says_it_has_not_run(tmp_path: Path) -> None:
    assert describe(read(tmp_path / "none.json"))[0].startswith("agent: not running (no status file")
