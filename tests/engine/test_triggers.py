"""Trigger lists are bounded: a list over the cap is bad input said loudly, claims in flight are bounded,
and each claim settles its own row (issue 16)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hedge_agent.domain.models import Position
from hedge_agent.engine.context import Core, NullTradeSink
from hedge_agent.engine.journal import AsyncJournal, Journal
from hedge_agent.engine.outcomes import Ok
from hedge_agent.engine.status_board import StatusBoard
from hedge_agent.engine.triggers import MAX_CONCURRENT_CLAIMS, MAX_TRIGGER_IDS, Triggers

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def position(n: int) -> Position:
    return Position(
        id="p1", user_id="u", account_id="acc", execution_type="ENTRY", status="OPEN", symbol="USDJPY",
        volume=0.1, trail_width=5, trigger_action_ids=json.dumps([f"a{i}" for i in range(n)]),
        entry_price=150.0, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


class Cloud:
    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.claimed: list[str] = []

    async def claim_action(self, action_id: str) -> Ok:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        self.in_flight -= 1
        self.claimed.append(action_id)
        return Ok(None)


def core(tmp_path: Path, cloud: Any) -> Core:
    def fatal(e: Exception) -> None:
        raise e

    return Core(
        cloud=cloud, journal=AsyncJournal(Journal(tmp_path / "j.sqlite3"), inline=True), bindings=[],
        board=StatusBoard(user="u"), clock=lambda: 0.0, now=lambda: NOW, sink=NullTradeSink(),
        on_open=lambda p, b, i: None, on_gone=lambda pid: None, on_fatal=fatal,
    )  # fmt: skip


def test_a_list_over_the_cap_is_a_trigger_failure_naming_the_count_and_nothing_is_claimed(
    tmp_path: Path,
) -> None:
    c = core(tmp_path, Cloud())
    t = Triggers(c)
    assert len(t.trigger_ids(position(MAX_TRIGGER_IDS), "p1")) == MAX_TRIGGER_IDS
    assert c.counters.trigger_failures == 0
    assert t.trigger_ids(position(MAX_TRIGGER_IDS + 1), "p1") == ()
    assert c.counters.trigger_failures == 1
    notice = c.board.snapshot().notices[-1]
    assert notice.level == "error" and f"{MAX_TRIGGER_IDS + 1} action ids" in notice.message
    assert "p1" in notice.message and str(MAX_TRIGGER_IDS) in notice.message


async def test_claims_in_flight_are_bounded_and_each_settles(tmp_path: Path) -> None:
    cloud = Cloud()
    c = core(tmp_path, cloud)
    t = Triggers(c)
    ids = tuple(f"a{i}" for i in range(MAX_TRIGGER_IDS))
    fire = c.j.add_fire("p1", "trail", ids)
    await t.claim(fire)
    assert sorted(cloud.claimed) == sorted(ids)
    assert 1 < cloud.most <= MAX_CONCURRENT_CLAIMS
    after = c.j.get_fire("p1")
    assert after is not None and after.pending_ids == () and c.j.unsettled_fires() == []


async def test_the_monitor_claims_nothing_of_a_list_over_the_cap(tmp_path: Path) -> None:
    from hedge_agent.domain.enums import Symbol
    from hedge_agent.domain.symbols import SymbolTable
    from hedge_agent.engine.monitor import TrailMonitor
    from hedge_agent.terminals.base import TerminalQuote

    journal = AsyncJournal(Journal(tmp_path / "j.sqlite3"), inline=True)
    heard: list[str] = []
    monitor = TrailMonitor(
        journal, lambda pid, cause: heard.append(pid), stale_after_s=5.0, clock=lambda: 0.0
    )
    monitor.add_terminal("t", SymbolTable())
    await monitor.track(position(MAX_TRIGGER_IDS + 1), "t", 150.0)
    for bid in (150.100, 150.050):  # armed, then past the stop: fired
        await monitor.on_tick("t", TerminalQuote(Symbol.USDJPY, bid, bid + 0.002, 0.0))
    fire = journal.sync.get_fire("p1")
    assert heard == ["p1"] and fire is not None and fire.trigger_ids == ()
