"""The commands as a user runs them: ``login`` stores a refresh token, ``run`` signs in with it alone,
SIGTERM stops it cleanly (OFFLINE, exit 0), ``status`` reads the journal, ``logout`` forgets the token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
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


async def _stdout_of_status(tmp: Path, config: Path, *want: str) -> bool:
    r = await asyncio.to_thread(cli, tmp, "status", "--config", str(config), "--simulate")
    return r.returncode == 0 and all(w in r.stdout for w in want)


async def test_a_simulated_run_is_a_dry_run_and_status_says_what_it_does(
    world: World, tmp_path: Path
) -> None:
    """Issue 14, points 2, 3, 4 and 6: a refused sign-in stops with the fix; --simulate uses its own journal
    and says so; `status` shows the running agent, its terminal, the position with its trail, and the
    records skipped because their account is not bound here; the shutdown line names the untrailed."""
    alice = world.sb.info.user("alice")
    account = await world.account()
    elsewhere = await world.account(number="1002")  # alice's, but not bound in this config
    config = tmp_path / "agent.toml"
    write_config(world, config, account)

    refused = await asyncio.to_thread(
        cli, tmp_path, "run", "--config", str(config), "--no-tray", "--password-stdin", stdin="nope\n"
    )
    assert (
        refused.returncode == 5 and "sign-in refused" in refused.stderr and "login --config" in refused.stderr
    )

    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--no-tray", "--simulate",
        "--password-stdin", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path),
    )  # fmt: skip
    assert agent.stdin is not None and agent.stderr is not None
    agent.stdin.write((alice.password + "\n").encode())
    await agent.stdin.drain()
    agent.stdin.close()
    ui = world.ui()
    try:
        await eventually(lambda: _online(world, alice.sub), timeout=30)
        pos = await ui.create_position(alice.sub, account, "ENTRY", "USDJPY", 0.1, trail_width=5)
        await ui.set_position_status(pos["id"], "PENDING", "OPENING")
        other = await ui.create_position(alice.sub, elsewhere, "ENTRY", "EURUSD", 0.1)
        await ui.set_position_status(other["id"], "PENDING", "OPENING")
        await eventually(lambda: _status(world, pos["id"], "OPEN"), timeout=30)
        await eventually(
            lambda: _stdout_of_status(
                tmp_path, config, "agent: running (pid", "SIMULATED", "terminal sim (simulated",
                "USDJPY BUY  0.10 lots OPEN", "trail waiting to arm", "arms at",
                f"account {elsewhere}: ", other["id"],
            ),
            timeout=20,
        )  # fmt: skip
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 30) == 0
    err = (await agent.stderr.read()).decode()
    assert "SIMULATED (dry run)" in err
    assert "1 positions are no longer trailed until it runs again: sim USDJPY BUY 0.10" in err
    assert not (tmp_path / "journal.sqlite3").exists()  # the live journal of this config was never touched
    assert (tmp_path / "data" / "hedge-agent" / "simulate" / "journal.sqlite3").exists()
    after = await asyncio.to_thread(cli, tmp_path, "status", "--config", str(config), "--simulate")
    assert "agent: not running (stopped cleanly" in after.stdout


def test_the_readme_using_it_commands_work_literally_against_demo_serve(tmp_path: Path) -> None:
    """Issue 14, point 12: `hedge-agent demo --serve` leaves a sandbox and a ready config; the README's
    first commands run as written (relative paths, from the folder where --serve was started)."""
    env = {**cli_env(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    readme = (ROOT / "README.md").read_text()
    assert "hedge-agent demo --serve" in readme
    assert (
        "hedge-agent run --config sandbox/agent.toml --no-tray --password-stdin < sandbox/password.txt"
        in readme
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "hedge_agent", "demo", "--serve"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    agent = None
    try:
        assert serve.stdout is not None
        printed = ""
        while "Serving until Ctrl-C" not in printed:  # the sentinel: config written, sandbox up
            line = serve.stdout.readline()
            assert line, f"demo --serve ended: {printed} {serve.stderr.read() if serve.stderr else ''}"
            printed += line
        assert (
            "hedge-agent run --config sandbox/agent.toml --no-tray --password-stdin < sandbox/password.txt"
            in printed
        )

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "hedge_agent", *args], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip

        checked = run("check-config", "sandbox/agent.toml")
        assert checked.returncode == 0, checked.stderr
        with (tmp_path / "sandbox" / "password.txt").open() as password:
            agent = subprocess.Popen(
                [sys.executable, "-m", "hedge_agent", "run", "--config", "sandbox/agent.toml", "--no-tray",
                 "--password-stdin"], cwd=tmp_path, env=env, stdin=password,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            status = run("status", "--config", "sandbox/agent.toml")
            if "agent: running" in status.stdout and "): connected" in status.stdout:
                break
            assert agent.poll() is None, agent.communicate()
            assert time.monotonic() < deadline, status.stdout
            time.sleep(0.5)
        assert (tmp_path / "sandbox" / "logs" / "hedge-agent.log").exists()
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(30) == 0
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0


async def test_check_is_an_online_preflight_with_a_fix_per_failure(world: World, tmp_path: Path) -> None:
    """Issue 14, point 7: `hedge-agent check --config` signs in, finds a mistyped account_id, the User row,
    a bridge port in use, and connects each terminal to see its account and its symbols quote."""
    import socket

    alice = world.sb.info.user("alice")
    account = await world.account()
    typo = account[:-1] + ("0" if account[-1] != "0" else "1")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    busy_port = held.getsockname()[1]
    config = tmp_path / "agent.toml"
    write_sandbox_toml(config, world.sb.info, "alice", [
        {"name": "sim", "kind": "simulated", "account_id": account, "login": 1},
        {"name": "typo", "kind": "simulated", "account_id": typo, "login": 2},
        {"name": "mt4", "kind": "mt4", "account_id": "acc-mt4", "login": 3, "bridge_port": busy_port},
    ])  # fmt: skip
    try:
        r = await asyncio.to_thread(
            cli, tmp_path, "check", "--config", str(config), "--password-stdin", stdin=alice.password + "\n"
        )
    finally:
        held.close()
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "OK    sign-in as alice" in out
    assert f"OK    sim: account {account} is yours" in out
    assert f"FAIL  typo: account {typo} is not one of your accounts" in out and f"(yours: {account})" in out
    assert f"OK    User row for {alice.sub} exists" in out
    assert (
        f"FAIL  mt4: bridge port {busy_port} is in use" in out and "fix: quit the program holding it" in out
    )
    assert "OK    sim: terminal connected" in out and "OK    sim: symbol USDJPY -> USDJPY quotes" in out


async def test_run_writes_a_readable_trade_log_next_to_the_json_log(world: World, tmp_path: Path) -> None:
    """Issue 14, point 5, wired end to end: `run` gives the engine the trades.log sink (app.build_agent's
    trade_sink must reach the engine's ``sink``)."""
    alice = world.sb.info.user("alice")
    account = await world.account()
    config = tmp_path / "agent.toml"
    write_config(world, config, account)
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--no-tray", "--password-stdin",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env=cli_env(tmp_path),
    )  # fmt: skip
    assert agent.stdin is not None
    agent.stdin.write((alice.password + "\n").encode())
    agent.stdin.close()
    ui = world.ui()
    try:
        await eventually(lambda: _online(world, alice.sub), timeout=30)
        pos = await ui.create_position(alice.sub, account, "ENTRY", "USDJPY", 0.1)
        await ui.set_position_status(pos["id"], "PENDING", "OPENING")
        await eventually(lambda: _status(world, pos["id"], "OPEN"), timeout=30)
        await ui.set_position_status(pos["id"], "OPEN", "CLOSING")
        await eventually(lambda: _status(world, pos["id"], "CLOSED"), timeout=30)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 30) == 0
    lines = (tmp_path / "logs" / "trades.log").read_text().splitlines()
    import re

    # USDJPY keeps its 3 digits; the ticket and the reason close the line
    fill = re.compile(r"  FILL\s+sim\s+USDJPY\s+BUY\s+0\.10 lots\s+at \d+\.\d{3}\s+#\d+\s+\(.+\)$")
    assert any(fill.search(ln) for ln in lines), lines
    assert any(re.search(r"  CLOSE\s+sim\s+USDJPY\s+BUY\s+0\.10 lots\s+at \d+\.\d{3}", ln) for ln in lines), (
        lines
    )
