"""The agent on a backend where nothing created the user's User record (AWS before the admin UI ran):
it says so at start, with the fix, and trades all the same."""

from __future__ import annotations

import pytest
import structlog

from hedge_agent.app import check_user_row

from .harness import World, eventually, sim_terminal

pytestmark = pytest.mark.timeout(90)


async def test_a_missing_user_record_is_a_warning_with_the_fix_and_trading_goes_on(
    world_without_user_rows: World,
):
    w = world_without_user_rows
    acc = await w.account()
    term = sim_terminal("sim-a")
    with structlog.testing.capture_logs() as logs:
        running = await w.start_agent("alice", {acc: term})
    notices = [n for n in running.agent.status().notices if n.title == "User record missing"]
    assert len(notices) == 1 and notices[0].level == "warning"
    assert "admin UI" in notices[0].message and w.sub("alice") in notices[0].message
    assert any(e["event"] == "User record missing" and e["log_level"] == "warning" for e in logs)
    # the backend refuses the pcStatus write, as AWS does for a missing record
    assert any(e["event"] == "pcStatus not set" for e in logs)

    ui, sub = w.ui(), w.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")

    async def opened():
        p = await ui.position(pos["id"])
        return p if p["status"] == "OPEN" else None

    assert (await eventually(opened, timeout=15))["mtTicket"]


async def test_with_the_user_record_there_is_no_such_warning(world: World):
    acc = await world.account()
    running = await world.start_agent("alice", {acc: sim_terminal("sim-a")})
    # the start checks run before the agent reports itself started: their notices are in by now
    assert running.agent.started.is_set()
    assert not [n for n in running.agent.status().notices if n.title == "User record missing"]
    assert await check_user_row(running.agent.parts.cloud, "alice") is None  # type: ignore[arg-type]
