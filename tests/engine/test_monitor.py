"""The trail monitor: a fire is durable (latch, fire, pending claims) before anyone hears of it, and
trailWidth edits take effect on a tracked position."""

from datetime import UTC, datetime, timedelta

from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.models import Position
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.journal import AsyncJournal, Journal
from hedge_agent.engine.monitor import TrailMonitor
from hedge_agent.terminals.base import TerminalQuote


def position(trail_width: float = 5, triggers: str | None = '["a1","a2"]', updated: float = 0.0) -> Position:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Position(
        id="p1", user_id="u", account_id="acc", execution_type="ENTRY", status="OPEN", symbol="USDJPY",
        volume=0.1, trail_width=trail_width, trigger_action_ids=triggers, entry_price=150.0, created_at=now,
        updated_at=now + timedelta(seconds=updated),
    )  # fmt: skip


def quote(bid: float) -> TerminalQuote:
    return TerminalQuote(Symbol.USDJPY, bid, bid + 0.002, 0.0)


async def run(tmp_path, edits=()):  # type: ignore[no-untyped-def]
    path = tmp_path / "j.sqlite3"
    journal = AsyncJournal(Journal(path), inline=True)
    heard: list[str] = []
    monitor = TrailMonitor(
        journal, lambda pid, cause: heard.append(pid), stale_after_s=5.0, clock=lambda: 0.0
    )
    monitor.add_terminal("t", SymbolTable())
    await monitor.track(position(), "t", 150.0)
    await monitor.on_tick("t", quote(150.100))  # armed, peak 150.100, stop 150.050
    for width in edits:
        await monitor.track(position(trail_width=width), "t", 150.0)
    return path, journal, monitor, heard


async def test_a_fire_is_journaled_with_its_latch_and_claims_before_it_is_handed_on(tmp_path):
    path, journal, monitor, heard = await run(tmp_path)
    await monitor.on_tick("t", quote(150.050))
    assert heard == ["p1"]
    journal.close()  # the process dies here: the claims task never ran
    after = Journal(path)
    fire = after.get_fire("p1")
    trail = after.load_trail("p1")
    assert fire is not None and fire.cause == "trail" and fire.pending_ids == ("a1", "a2")
    assert trail is not None and trail.fired


async def test_width_zero_stops_trailing_and_a_new_width_moves_the_stop(tmp_path):
    _, journal, monitor, heard = await run(tmp_path, edits=[50])
    state = monitor.state("p1")
    assert state is not None and state.armed and state.peak == 150_100 and state.stop == 150_100 - 500
    assert journal.sync.load_trail("p1") == state
    await monitor.on_tick("t", quote(150.040))  # past the old 5-pip stop
    assert heard == []
    await monitor.track(position(trail_width=0), "t", 150.0)
    assert monitor.state("p1") is None and journal.sync.load_trail("p1") is None
    await monitor.on_tick("t", quote(149.000))
    await monitor.sweep()
    assert heard == []


async def test_an_edit_made_while_the_agent_was_down_applies_on_resume(tmp_path):
    path, journal, monitor, _ = await run(tmp_path)
    await monitor.sweep()  # the cadence persists the armed state
    journal.close()
    again = AsyncJournal(Journal(path), inline=True)
    m2 = TrailMonitor(again, lambda pid, cause: None, stale_after_s=5.0, clock=lambda: 0.0)
    m2.add_terminal("t", SymbolTable())
    await m2.track(position(trail_width=20), "t", 150.0)
    state = m2.state("p1")
    assert state is not None and state.armed and state.width == 200 and state.peak == 150_100


async def test_an_older_record_version_never_undoes_a_width_edit(tmp_path):
    """The intake hands the newest frame over at once while a flow still holds the version it started
    with: a 5 -> 50 pip edit must survive the older version handed over after it."""
    _, journal, monitor, heard = await run(tmp_path)
    await monitor.track(position(trail_width=50, updated=2.0), "t", 150.0)
    await monitor.track(position(trail_width=5, updated=1.0), "t", 150.0)  # the older version, late
    state = monitor.state("p1")
    assert state is not None and state.width == 500 and journal.sync.load_trail("p1") == state
    await monitor.on_tick("t", quote(150.040))  # past the old 5-pip stop, not the 50-pip one
    assert heard == []


async def test_a_position_gone_while_its_trail_is_read_is_never_trailed_again(tmp_path):
    """The close filled (``untrack``) while a track call read the trail from the journal: that call must
    not start trailing a closed position (its fire would claim the triggers of a trade that is gone)."""
    import asyncio
    import threading

    journal = AsyncJournal(Journal(tmp_path / "j.sqlite3"))  # the real journal thread
    monitor = TrailMonitor(journal, lambda pid, cause: None, stale_after_s=5.0, clock=lambda: 0.0)
    monitor.add_terminal("t", SymbolTable())
    reading, release = threading.Event(), threading.Event()
    load = journal.sync.load_trail

    def slow_load(pid):  # type: ignore[no-untyped-def]
        reading.set()
        release.wait(10)
        return load(pid)

    journal.sync.load_trail = slow_load  # type: ignore[method-assign]
    task = asyncio.create_task(monitor.track(position(), "t", 150.0))
    await asyncio.to_thread(reading.wait, 10)
    monitor.untrack("p1")  # the close filled meanwhile
    release.set()
    await task
    assert monitor.state("p1") is None and monitor.trailing == 0
    journal.sync.load_trail = load  # type: ignore[method-assign]
    await monitor.track(position(updated=1.0), "t", 150.0)  # a later call (a reopened record) still can
    assert monitor.state("p1") is not None
    journal.close()
