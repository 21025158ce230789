"""Security pass (issue 8): other users' records, ADMIN tokens, and secrets in logs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from hedge_agent.demo.world import write_sandbox_toml
from hedge_agent.domain.models import parse_action, parse_position
from hedge_agent.engine.events import RecordEvent

from .harness import World, eventually, sim_terminal

pytestmark = pytest.mark.timeout(180)

JWT = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}")


async def test_a_thousand_records_of_other_users_are_never_executed(world: World):
    """The sandbox never delivers them (the subscription filter); the ownership rule is the second
    line: handed 1,000 other users' OPENING positions and EXECUTING actions, the engine sends nothing."""
    acc = await world.account()
    term = sim_terminal("sim-a")
    running = await world.start_agent("alice", {acc: term})
    bob = world.sub("bob")
    for i in range(500):
        # bob's records, some even naming alice's account id
        p = {
            "id": f"bob-pos-{i}", "userId": bob, "accountId": acc if i % 2 else "bob-acc", "executionType": "ENTRY",
            "status": "OPENING", "symbol": "USDJPY", "volume": 0.1, "trailWidth": 0.0,
            "updatedAt": "2026-01-01T00:00:00.000Z",
        }  # fmt: skip
        a = {
            "id": f"bob-act-{i}", "userId": bob, "accountId": acc, "positionId": f"bob-pos-{i}", "type": "ENTRY",
            "status": "EXECUTING", "updatedAt": "2026-01-01T00:00:00.000Z",
        }  # fmt: skip
        running.agent.executor.handle(RecordEvent(parse_position(p), "update", 0.0))
        running.agent.executor.handle(RecordEvent(parse_action(a), "update", 0.0))
    await asyncio.sleep(1.0)
    assert term.broker.order_log == []
    assert running.agent.executor.counters.skipped_other_user == 1000


async def test_an_admin_token_never_makes_the_agent_execute_another_users_records(world: World):
    carol = world.sub("carol")  # in group ADMIN: AppSync would let her see and change everything
    carol_acc = await world.account("carol", "C1")
    term = sim_terminal("sim-c")
    running = await world.start_agent("carol", {carol_acc: term})
    alice, ui = world.sub("alice"), world.ui("alice")
    alice_acc = await world.account("alice", "A1")
    for acc in (alice_acc, carol_acc):  # alice's records, on her account and on carol's account id
        pos = await ui.create_position(alice, acc, "ENTRY", "USDJPY", 0.1) if acc == alice_acc else None
        if pos is None:
            pos = await world.ui("carol").create_position(alice, acc, "ENTRY", "USDJPY", 0.1)
        act = await ui.create_action(alice, pos["accountId"], pos["id"], "ENTRY")
        await ui.claim_action(act["id"])
        await ui.set_position_status(pos["id"], "PENDING", "OPENING")
    await asyncio.sleep(1.5)
    assert term.broker.order_log == []
    # carol's own work still runs
    own = await world.ui("carol").create_position(carol, carol_acc, "ENTRY", "USDJPY", 0.1)
    await world.ui("carol").set_position_status(own["id"], "PENDING", "OPENING")
    await eventually(lambda: len(term.broker.order_log) == 1, timeout=10)
    assert running.agent.executor.counters.skipped_other_user >= 0


async def test_logs_of_a_real_run_hold_no_tokens_or_passwords(world: World, tmp_path: Path):
    """``hedge-agent run`` at DEBUG as a real process, a full open/close, then every log line is scanned."""
    info = world.sb.info
    alice = info.user("alice")
    acc = await world.account()
    config = tmp_path / "agent.toml"
    sim = {"name": "sim", "kind": "simulated", "account_id": acc, "login": 1}
    write_sandbox_toml(config, info, "alice", [sim], log_level="DEBUG")
    log_dir = tmp_path / "logs"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--no-tray", "--password-stdin",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(alice.password.encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    ui = world.ui()
    pos = await ui.create_position(alice.sub, acc, "ENTRY", "USDJPY", 0.1)
    await asyncio.sleep(3.0)
    await ui.set_position_status(pos["id"], "PENDING", "OPENING")

    async def opened() -> bool:
        return bool((await ui.position(pos["id"]))["status"] == "OPEN")

    await eventually(opened, timeout=30)
    await ui.set_position_status(pos["id"], "OPEN", "CLOSING")

    async def closed() -> bool:
        return bool((await ui.position(pos["id"]))["status"] == "CLOSED")

    await eventually(closed, timeout=30)
    proc.send_signal(signal.SIGTERM)
    console = (await asyncio.wait_for(proc.stdout.read(), 30)).decode()
    assert await proc.wait() == 0
    tokens = world.sb.tokens("alice")
    secrets = [alice.password, tokens.refresh_token, tokens.id_token, tokens.access_token]
    texts = [p.read_text() for p in log_dir.rglob("*.log*")] + [console]
    assert sum(len(t) for t in texts) > 1000, "the run logged nothing to scan"
    for text in texts:
        assert not JWT.search(text), JWT.search(text)
        for secret in secrets:
            assert secret not in text
