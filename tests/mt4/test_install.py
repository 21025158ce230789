"""Point 1: a default install connects the first time. The documented steps (ea/README.md, the example
config) are read literally and checked against the code: one token location both sides use, created by
the agent, and the EA inputs printed when the bridge listens."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import structlog

from hedge_agent.config import TerminalConfig
from hedge_agent.terminals.factory import build_terminal
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal, load_or_create_token
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.mt4.tokenfile import DEFAULT_BRIDGE_PORT, DEFAULT_TOKEN_NAME, ea_token_input

from .conftest import Rig, free_port, until

ROOT = Path(__file__).parents[2]
EA = (ROOT / "ea" / "HedgeBridge.mq4").read_text(encoding="utf-8")
README = (ROOT / "ea" / "README.md").read_text(encoding="utf-8")
EXAMPLE = tomllib.loads((ROOT / "config" / "hedge_agent.example.toml").read_text(encoding="utf-8"))


def ea_input(name: str) -> str:
    m = re.search(rf"^input\s+\w+\s+{name}\s*=\s*(.+?);", EA, re.M)
    assert m, f"no input {name} in HedgeBridge.mq4"
    value = m[1].strip()
    return value[1:-1].replace("\\\\", "\\") if value.startswith('"') else value


def readme_default(name: str) -> str:
    m = re.search(rf"^\| `{name}` \| `?([^|`]+?)`? \|", README, re.M)
    assert m, f"no row for {name} in the README's inputs table"
    return m[1]


def mt4_example() -> dict[str, object]:
    (table,) = [t for t in EXAMPLE["terminals"] if t["kind"] == "mt4"]
    return dict(table)


def test_the_ea_defaults_the_readme_and_the_example_config_name_one_port_and_one_token_file():
    port, token_file = ea_input("BridgePort"), ea_input("TokenFile")
    assert int(port) == DEFAULT_BRIDGE_PORT == mt4_example()["bridge_port"]
    assert readme_default("BridgePort") == port
    assert token_file == DEFAULT_TOKEN_NAME.replace("/", "\\") == readme_default("TokenFile")
    assert "token_file" not in mt4_example()  # the default is the one the EA reads
    assert "Common\\Files\\" + token_file in README


def test_the_agents_default_token_is_where_the_eas_default_input_looks(tmp_path: Path, monkeypatch):
    """Windows: under %APPDATA%\\MetaQuotes\\Terminal\\Common\\Files (FILE_COMMON), not the agent's data dir."""
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.setattr("sys.platform", "win32")
    common = tmp_path / "Roaming" / "MetaQuotes" / "Terminal" / "Common" / "Files"
    t = build_terminal(TerminalConfig.model_validate(mt4_example()), data_dir=tmp_path / "agent-data")
    assert isinstance(t, Mt4BridgeTerminal)
    assert (common / "hedge-agent" / "bridge.token").is_file()
    assert not (tmp_path / "agent-data").exists()
    assert t.ea_inputs() == f"BridgePort={DEFAULT_BRIDGE_PORT}, TokenFile={ea_input('TokenFile')}"


def test_a_token_file_outside_the_common_files_folder_is_named_as_a_problem(tmp_path: Path):
    common = tmp_path / "Common" / "Files"
    assert ea_token_input(common / "hedge-agent" / "bridge.token", common) == "hedge-agent\\bridge.token"
    assert ea_token_input(common / "x.token", common) == "x.token"
    assert ea_token_input(tmp_path / "elsewhere.token", common) is None


async def test_the_documented_install_connects_the_first_time(rig: Rig, tmp_path: Path, monkeypatch):
    """Start the agent once (it creates the token and says what to type into the EA's inputs), attach the
    EA with its default TokenFile: welcomed. The port is a free one here (17001 may be taken on this
    machine); its equality with the EA's default is the test above."""
    monkeypatch.delenv("APPDATA", raising=False)
    port = free_port()
    table = {**mt4_example(), "bridge_port": port, "login": 5_000_001}
    terminal = build_terminal(TerminalConfig.model_validate(table), data_dir=tmp_path)
    assert isinstance(terminal, Mt4BridgeTerminal)
    rig.terminals.append(terminal)
    with structlog.testing.capture_logs() as logs:
        await terminal.connect()
    (said,) = [e for e in logs if e["event"] == "bridge.ea_inputs"]
    assert said["message"] == f"set the EA inputs BridgePort={port}, TokenFile={ea_input('TokenFile')}"
    assert said["message"] in terminal.health().detail  # the tray says it too, until the EA is there
    # the EA: FILE_COMMON + its default TokenFile (the fallback dir plays the common files folder off Windows)
    token_file = tmp_path.joinpath(*ea_input("TokenFile").split("\\"))
    ea = EaEmulator(f"ws://127.0.0.1:{port}", "", rig.broker, login=5_000_001, server="S", token_file=token_file, timer_ms=5)  # fmt: skip
    rig.eas.append(ea)
    await ea.start()
    await ea.wait_welcomed()
    assert terminal.health().connection.value == "connected"


async def test_the_ea_waits_for_the_token_file_and_picks_it_up_when_the_agent_creates_it(
    rig: Rig, tmp_path: Path
):
    token_file = tmp_path / "hedge-agent" / "bridge.token"
    t = await rig.bridge(token=load_or_create_token(tmp_path / "later.token"))
    ea = EaEmulator(f"ws://127.0.0.1:{t.port}", "", rig.broker, login=5_000_001, server="S", token_file=token_file, timer_ms=5, backoff_initial_s=0.02, backoff_max_s=0.05)  # fmt: skip
    rig.eas.append(ea)
    await ea.start()
    await until(lambda: ea.attempts >= 2)
    assert any("not found" in line for line in ea.experts_log)
    token_file.parent.mkdir(parents=True)
    token_file.write_text((tmp_path / "later.token").read_text())
    await ea.wait_welcomed()
