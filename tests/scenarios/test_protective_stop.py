from __future__ import annotations

import pytest

from .harness import World, sim_terminal
from .test_flows import action_status, status_of

pytestmark = pytest.mark.timeout(90)


async def test_a_protective_stop_hit_is_stopped_and_fires_triggers(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    term.broker.set_quote("EURUSD", 1.10000, 1.10012)
    running = await world.start_agent("alice", {acc: term})
    running.agent.executor.bindings[
        acc
    ].protective_stop_pips = 20  # as `protective_stop_pips = 20` in its config
    ui, sub = world.ui(), world.sub("alice")
    hedge = await ui.create_position(sub, acc, "EXIT", "EURUSD", 0.1)
    trigger = await ui.create_action(sub, acc, hedge["id"], "ENTRY")
    pos = await ui.create_position(sub, acc, "ENTRY", "EURUSD", 0.1, trigger_action_ids=[trigger["id"]])
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    await status_of(world, pos["id"], "OPEN")
    (live,) = term.broker.positions()
    assert live.sl == 1.09812
    term.broker.set_quote("EURUSD", 1.09800, 1.09812)
    stopped = await status_of(world, pos["id"], "STOPPED")
    assert stopped["exitPrice"] == pytest.approx(1.098) and "stop loss" in stopped["exitReason"]
    await action_status(world, trigger["id"], "EXECUTED")
    await status_of(world, hedge["id"], "OPEN")
