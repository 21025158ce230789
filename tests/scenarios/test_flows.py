"""Seed flows end to end: sandbox backend + simulated terminals + the real agent, over real sockets."""

from __future__ import annotations

import asyncio
import json

import pytest

from hedge_agent.config import RiskConfig
from hedge_agent.domain.models import parse_action, parse_position
from hedge_agent.engine.events import RecordEvent
from hedge_agent.terminals.simulated import DealReason, Fault, FaultKind

from .harness import World, eventually, sim_terminal

pytestmark = pytest.mark.timeout(90)


async def status_of(
    w: World, position_id: str, want: str, username: str = "alice", timeout: float = 10.0
) -> dict:
    async def check():
        p = await w.ui(username).position(position_id)
        return p if p["status"] == want else None

    result: dict = await eventually(check, timeout=timeout)
    return result


async def action_status(w: World, action_id: str, want: str, timeout: float = 10.0) -> dict:
    async def check():
        a = await w.ui().action(action_id)
        return a if a["status"] == want else None

    result: dict = await eventually(check, timeout=timeout)
    return result


async def move(term, running, position_id: str, bid: float, until) -> None:
    """Put a USDJPY bid on the broker and wait until the agent's trail state satisfies ``until``."""
    await eventually(lambda: running.agent.monitor.state(position_id) is not None, timeout=5)
    term.broker.set_quote("USDJPY", round(bid, 3))
    await eventually(lambda: until(running.agent.monitor.state(position_id)), timeout=5)


async def test_entry_flow_opens_once_and_reports_entry_data(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1, trail_width=10)
    await ui.create_action(sub, acc, pos["id"], "ENTRY")
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")

    opened = await status_of(world, pos["id"], "OPEN")
    (live,) = term.broker.positions()
    assert opened["mtTicket"] == str(live.ticket) and opened["entryPrice"] == pytest.approx(live.open_price)
    assert opened["entryTime"] is not None and live.side.value == "BUY"
    assert len([e for e in term.broker.order_log if e.action == "open"]) == 1


async def test_close_flow_closes_and_reports_exit_data(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "EXIT", "EURUSD", 0.2)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    await status_of(world, pos["id"], "OPEN")
    await ui.set_position_status(pos["id"], "OPEN", "CLOSING")

    closed = await status_of(world, pos["id"], "CLOSED")
    assert term.broker.positions() == []
    assert closed["exitPrice"] is not None and closed["exitTime"] is not None and closed["exitReason"]
    assert [e.action for e in term.broker.order_log] == ["open", "close"]


async def test_an_executing_entry_action_opens_its_position_and_ends_executed(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "XAUUSD", 0.05)
    act = await ui.create_action(sub, acc, pos["id"], "ENTRY")
    await ui.claim_action(act["id"])

    await action_status(world, act["id"], "EXECUTED")
    await status_of(world, pos["id"], "OPEN")
    assert len(term.broker.order_log) == 1


async def test_a_trail_fired_on_pc1_makes_pc2_open_the_triggered_entry(world: World):
    acc_a, acc_b = await world.account(number="A1"), await world.account(number="B2")
    term_a, term_b = sim_terminal("sim-a"), sim_terminal("sim-b", seed=2)
    pc1 = await world.start_agent("alice", {acc_a: term_a}, pc="pc1")
    pc2 = await world.start_agent("alice", {acc_b: term_b}, pc="pc2")
    ui, sub = world.ui(), world.sub("alice")
    hedge = await ui.create_position(sub, acc_b, "EXIT", "USDJPY", 0.1)
    trigger = await ui.create_action(sub, acc_b, hedge["id"], "ENTRY")
    main = await ui.create_position(
        sub, acc_a, "ENTRY", "USDJPY", 0.1, trail_width=10, trigger_action_ids=[trigger["id"]]
    )
    term_a.broker.set_quote("USDJPY", 150.000)
    await ui.set_position_status(main["id"], "PENDING", "OPENING")
    opened = await status_of(world, main["id"], "OPEN")
    entry = opened["entryPrice"]

    # 10 pips = 0.100: arm at entry + 0.100, peak at entry + 0.300, fire at the stop entry + 0.200
    await move(term_a, pc1, main["id"], entry + 0.100, lambda s: s.armed)
    await move(term_a, pc1, main["id"], entry + 0.300, lambda s: s.peak == round((entry + 0.300) * 1000))
    await move(term_a, pc1, main["id"], entry + 0.201, lambda s: not s.fired)
    await asyncio.sleep(0.3)
    assert (await ui.action(trigger["id"]))["status"] == "PENDING"
    term_a.broker.set_quote("USDJPY", round(entry + 0.200, 3))

    await action_status(world, trigger["id"], "EXECUTED")
    await status_of(world, hedge["id"], "OPEN")
    assert [e.action for e in term_b.broker.order_log] == ["open"]  # PC2 traded its own account
    assert [e.action for e in term_a.broker.order_log] == ["open"]  # PC1 only opened the trailed one
    state = pc1.agent.monitor.state(main["id"])
    assert state is not None and state.fired
    assert (
        pc1.agent.executor.counters.skipped_other_pc > 0 and pc2.agent.executor.counters.skipped_other_pc > 0
    )


async def test_repeated_late_and_out_of_order_events_never_duplicate_an_order(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "EURGBP", 0.1)
    act = await ui.create_action(sub, acc, pos["id"], "ENTRY")
    opening = parse_position(await ui.set_position_status(pos["id"], "PENDING", "OPENING"))
    await status_of(world, pos["id"], "OPEN")
    claimed = parse_action(await ui.claim_action(act["id"]))
    await action_status(world, act["id"], "EXECUTED")

    for record in (opening, claimed, opening, claimed):  # the same frames again, late
        running.agent.executor.handle(RecordEvent(record, "update", 0.0))
    await running.agent.executor.reconcile()
    assert len(term.broker.order_log) == 1
    assert (await ui.position(pos["id"]))["status"] == "OPEN"


async def test_a_stop_out_marks_the_position_stopped_and_fires_its_triggers(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    hedge = await ui.create_position(sub, acc, "EXIT", "EURUSD", 0.1)
    trigger = await ui.create_action(sub, acc, hedge["id"], "ENTRY")
    pos = await ui.create_position(sub, acc, "ENTRY", "EURUSD", 0.1, trigger_action_ids=[trigger["id"]])
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    opened = await status_of(world, pos["id"], "OPEN")

    result = term.broker.close(int(opened["mtTicket"]), reason=DealReason.SO)
    assert result.ok
    stopped = await status_of(world, pos["id"], "STOPPED")
    assert stopped["exitPrice"] is not None and "stop out" in stopped["exitReason"]
    await action_status(world, trigger["id"], "EXECUTED")
    await status_of(world, hedge["id"], "OPEN")


async def test_a_broker_rejection_cancels_the_position_with_the_reason(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    term.broker.inject(Fault(FaultKind.REJECT, code=10019, on="open"))
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1)
    act = await ui.create_action(sub, acc, pos["id"], "ENTRY")
    await ui.claim_action(act["id"])

    canceled = await status_of(world, pos["id"], "CANCELED")
    assert "10019" in canceled["exitReason"] and "money" in canceled["exitReason"].lower()
    await action_status(world, act["id"], "FAILED")
    assert term.broker.positions() == []


async def test_a_retryable_requote_is_retried_and_fills_once(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    term.broker.inject(Fault(FaultKind.REQUOTE, times=2, on="open"))
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    await status_of(world, pos["id"], "OPEN")
    assert len(term.broker.positions()) == 1


async def test_a_timeout_that_actually_filled_is_found_by_tag_not_sent_twice(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a", resolve_unknown=False)
    term.broker.inject(Fault(FaultKind.TIMEOUT, on="open"))
    await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    opened = await status_of(world, pos["id"], "OPEN")
    (live,) = term.broker.positions()
    assert opened["mtTicket"] == str(live.ticket) and len(term.broker.order_log) == 1


async def test_a_risk_cap_cancels_the_open_and_names_the_cap(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    await world.start_agent("alice", {acc: term}, risk=RiskConfig(max_volume_per_order=0.5))
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 1.0)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    canceled = await status_of(world, pos["id"], "CANCELED")
    assert "max_volume_per_order" in canceled["exitReason"]
    assert term.broker.order_log == []


async def test_paused_execution_refuses_new_work_with_a_reason(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    running.agent.pause()
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    canceled = await status_of(world, pos["id"], "CANCELED")
    assert "paused" in canceled["exitReason"] and term.broker.order_log == []


async def test_other_users_records_are_never_executed(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    bob_acc = await world.account("bob", "B1")
    bob_ui, bob = world.ui("bob"), world.sub("bob")
    pos = await bob_ui.create_position(bob, bob_acc, "ENTRY", "USDJPY", 0.1)
    await bob_ui.set_position_status(pos["id"], "PENDING", "OPENING")
    # a record of bob's that names alice's account id still belongs to bob
    sneaky = await bob_ui.create_position(bob, acc, "ENTRY", "USDJPY", 0.1)
    await bob_ui.set_position_status(sneaky["id"], "PENDING", "OPENING")
    await asyncio.sleep(1.0)
    assert term.broker.order_log == []
    assert (await bob_ui.position(sneaky["id"]))["status"] == "OPENING"
    assert running.agent.executor.counters.skipped_other_user == 0  # the sandbox never even delivered them


async def test_a_malformed_trigger_list_is_a_trigger_failure_not_a_crash(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    pos = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.1, trail_width=5)
    await ui.set_triggers(pos["id"], "PENDING", [])
    # an invalid JSON array string, as a buggy UI might write it
    await world.sb.graphql(
        "alice",
        "mutation($i: UpdatePositionInput!) { updatePosition(input: $i) { id userId accountId status triggerActionIds updatedAt } }",
        {"i": {"id": pos["id"], "status": "PENDING", "triggerActionIds": "[not-json"}},
    )
    term.broker.set_quote("USDJPY", 150.000)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    opened = await status_of(world, pos["id"], "OPEN")
    entry = opened["entryPrice"]
    await move(term, running, pos["id"], entry + 0.2, lambda s: s.armed)
    await move(term, running, pos["id"], entry + 0.1, lambda s: s.fired)
    await eventually(lambda: running.agent.executor.counters.trigger_failures >= 1, timeout=5)
    assert "triggerActionIds" in running.agent.status().last_error
    assert json.loads(
        json.dumps(running.agent.status().last_error)
    )  # a readable string, the agent still runs
    assert not running.task.done()


async def test_pc_status_is_online_while_running_and_offline_after_a_clean_exit(world: World):
    acc = await world.account()
    running = await world.start_agent("alice", {acc: sim_terminal("sim-a")})
    me = world.sub("alice")
    await eventually(lambda: _pc_status(world, me, "ONLINE"), timeout=10)
    assert await running.stop() == 0
    assert (await world.ui().user(me))["pcStatus"] == "OFFLINE"


async def _pc_status(world: World, sub: str, want: str) -> bool:
    return bool((await world.ui().user(sub))["pcStatus"] == want)


async def test_account_sync_pushes_balances_only_when_they_change(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    await eventually(lambda: running.agent.sync.pushed >= 1, timeout=10)
    first = await world.ui().account(acc)
    assert first["balance"] == pytest.approx(term.broker.account().balance)
    binding = running.agent.executor.bindings[acc]
    assert await running.agent.sync.sync(binding) is False  # nothing changed: nothing sent
    term.broker.deposit(500.0)
    assert await running.agent.sync.sync(binding) is True
    after = await world.ui().account(acc)
    assert after["balance"] == pytest.approx(first["balance"] + 500.0)
    assert after["lastUpdated"] > first["lastUpdated"]


async def test_a_trigger_id_that_does_not_exist_is_a_trigger_failure_not_a_crash(world: World):
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    ui, sub = world.ui(), world.sub("alice")
    bob_acc = await world.account("bob", "B1")
    bobs = await world.ui("bob").create_position(world.sub("bob"), bob_acc, "ENTRY", "USDJPY", 0.1)
    bobs_action = await world.ui("bob").create_action(world.sub("bob"), bob_acc, bobs["id"], "CLOSE")
    pos = await ui.create_position(
        sub,
        acc,
        "ENTRY",
        "USDJPY",
        0.1,
        trail_width=5,
        trigger_action_ids=["no-such-action", bobs_action["id"]],
    )
    term.broker.set_quote("USDJPY", 150.000)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    entry = (await status_of(world, pos["id"], "OPEN"))["entryPrice"]
    await move(term, running, pos["id"], entry + 0.2, lambda s: s.armed)
    await move(term, running, pos["id"], entry + 0.1, lambda s: s.fired)
    await eventually(lambda: running.agent.executor.counters.trigger_failures >= 2, timeout=10)
    assert "trigger failed" in running.agent.status().last_error
    assert (await world.ui("bob").action(bobs_action["id"]))["status"] == "PENDING"  # bob's stays untouched
    assert not running.task.done()
