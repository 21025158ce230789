from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hedge_agent.cli import main
from hedge_agent.desktop.autostart import Autostart, agent_command, quote_for_cmd, render_cmd

EXAMPLE = Path(__file__).parents[2] / "config" / "hedge_agent.example.toml"
EXE = r"C:\Users\田中\AppData\Local\hedge-agent\hedge-agent.exe"
CONFIG = r"C:\Users\田中\Documents\100% hedge\agent.toml"


def test_enabling_writes_a_cmd_that_starts_the_agent_detached_and_disabling_removes_it(tmp_path):
    entry = Autostart([EXE, "run", "--config", CONFIG], startup_dir=tmp_path)
    assert not entry.enabled()
    path = entry.enable()
    assert path == tmp_path / "hedge-agent.cmd"
    assert entry.enabled()
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # a BOM would break cmd's first line
    lines = raw.decode("utf-8").split("\r\n")
    assert lines[0] == "@echo off"
    # the code page switch comes before the first non-ASCII line
    assert lines.index("chcp 65001 >nul") < next(i for i, line in enumerate(lines) if not line.isascii())
    assert f'start "" "{EXE}" "run" "--config" "{CONFIG.replace("%", "%%")}"' in lines
    assert entry.disable() is True
    assert not path.exists()
    assert entry.disable() is False


def test_enabling_twice_leaves_one_entry_with_the_latest_command(tmp_path):
    Autostart(["old.exe"], startup_dir=tmp_path).enable()
    Autostart(["new.exe"], startup_dir=tmp_path).enable()
    assert [p.name for p in tmp_path.iterdir()] == ["hedge-agent.cmd"]
    assert Autostart([], startup_dir=tmp_path).installed_line() == 'start "" "new.exe"'


def test_arguments_are_quoted_for_cmd_and_for_the_programs_argument_parser():
    assert quote_for_cmd("a b&c^d") == '"a b&c^d"'  # inside quotes & and ^ are plain characters
    assert quote_for_cmd("50%") == '"50%%"'  # cmd expands %...% even inside quotes
    assert quote_for_cmd("C:\\dir\\") == '"C:\\dir\\\\"'  # \" would escape the closing quote
    with pytest.raises(ValueError, match="quote"):
        quote_for_cmd('say "hi"')
    with pytest.raises(ValueError, match="empty"):
        render_cmd([])


def test_the_command_runs_this_installation_on_the_absolute_config_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = agent_command(Path("agent.toml"))
    assert command[0] == sys.executable
    assert command[-4:] == ["hedge_agent", "run", "--config", str(tmp_path / "agent.toml")]


def test_the_autostart_command_turns_it_on_shows_it_and_turns_it_off(tmp_path, capsys):
    startup = str(tmp_path)
    assert main(["autostart", "on", "--config", str(EXAMPLE), "--startup-dir", startup]) == 0
    assert (tmp_path / "hedge-agent.cmd").is_file()
    assert main(["autostart", "status", "--startup-dir", startup]) == 0
    assert str(EXAMPLE.resolve()) in capsys.readouterr().out
    assert main(["autostart", "off", "--startup-dir", startup]) == 0
    assert not (tmp_path / "hedge-agent.cmd").exists()
    assert main(["autostart", "status", "--startup-dir", startup]) == 0
    assert capsys.readouterr().out.strip().endswith("autostart off")


def test_autostart_refuses_a_config_that_would_fail_at_every_sign_in(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("log_level = 'LOUD'\n")
    assert main(["autostart", "on", "--config", str(bad), "--startup-dir", str(tmp_path)]) == 2
    assert "check-config" in capsys.readouterr().err
    assert not (tmp_path / "hedge-agent.cmd").exists()
    assert main(["autostart", "on", "--startup-dir", str(tmp_path)]) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has a Startup folder")
def test_autostart_says_it_is_windows_only_elsewhere(capsys):
    assert main(["autostart", "status"]) == 3
    assert "only available on Windows" in capsys.readouterr().err
