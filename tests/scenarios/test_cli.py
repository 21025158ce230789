"""The commands as a user runs them: ``login`` stores a refresh token, ``run`` signs in with it alone,
SIGTERM stops it cleanly (OFFLINE, exit 0), ``status`` reads the journal, ``logout`` forgets the token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hedge_agent.demo.world import write_sandbox_toml

from .harness import World, eventually

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def write_config(world: World, path: Path, account: str) -> None:
    sim = {"name": "sim", "kind": "simulated", "account_id": account, "login": 1}
    write_sandbox_toml(path, world.sb.info, "alice", [sim])


def cli_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring",
        "HEDGE_TEST_KEYRING": str(tmp / "keyring.json"),
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp / "data"),  # the encrypted-token fallback lands here, not in the home dir
    }


def cli(tmp: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedge_agent", *args], input=stdin, capture_output=True, text=True,
        env=cli_env(tmp), timeout=60,
    )  # fmt: skip


async def test_login_run_status_logout(world: World, tmp_path: Path) -> None:
    alice = world.sb.info.user("alice")
    account = await world.account()
    config = tmp_path / "agent.toml"
    write_config(world, config, account)

    bad = await asyncio.to_thread(
        cli, tmp_path, "login", "--config", str(config), "--password-stdin", stdin="nope\n"
    )
    assert bad.returncode == 5 and "incorrect username or password" in bad.stderr
    ok = await asyncio.to_thread(
        cli, tmp_path, "login", "--config", str(config), "--password-stdin", stdin=alice.password + "\n"
    )
    assert ok.returncode == 0, ok.stderr
    assert "signed in as alice" in ok.stdout and alice.password not in (ok.stdout + ok.stderr)

    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--no-tray",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path),
    )  # fmt: skip
    ui = world.ui()
    try:
        await eventually(lambda: _online(world, alice.sub), timeout=30)
        pos = await ui.create_position(alice.sub, account, "ENTRY", "USDJPY", 0.1, trail_width=5)
        await ui.set_position_status(pos["id"], "PENDING", "OPENING")
        await eventually(lambda: _status(world, pos["id"], "OPEN"), timeout=30)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 30) == 0
    assert (await ui.user(alice.sub))["pcStatus"] == "OFFLINE"

    status = await asyncio.to_thread(cli, tmp_path, "status", "--config", str(config))
    assert status.returncode == 0 and pos["id"] in status.stdout and "0 not yet reported" in status.stdout
    out = await asyncio.to_thread(cli, tmp_path, "logout", "--config", str(config))
    assert out.returncode == 0 and "signed out" in out.stdout
    again = await asyncio.to_thread(cli, tmp_path, "run", "--config", str(config), "--no-tray")
    assert again.returncode == 5 and "hedge-agent login" in again.stderr


async def _online(world: World, sub: str) -> bool:
    return bool((await world.ui().user(sub))["pcStatus"] == "ONLINE")


async def _status(world: World, position_id: str, want: str) -> bool:
    return bool((await world.ui().position(position_id))["status"] == want)
