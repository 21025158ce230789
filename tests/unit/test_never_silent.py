"""Nothing fails silently (issue 14, points 1, 2, 3 and 8).

The windowed program is emulated as PyInstaller's ``--windowed`` runs it: ``sys.stdout`` and ``sys.stderr``
are ``None``. The message box is a recording fake in place of ``MessageBoxW``; every other case runs the
real command line in a subprocess and asserts the reason reaches the user *and* the log, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = (ROOT / "tests" / "data" / "minimal.toml").read_text()

WINDOWED = """
import json, os, sys
sys.stdout = None
sys.stderr = None
from hedge_agent.desktop import alert
def box(title, text, flags):
    with open(os.environ["BOX_LOG"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"title": title, "text": text, "flags": flags}) + "\\n")
    return 1
alert.box = box
from hedge_agent.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_STATE_HOME": str(tmp / "state"),  # the default log dir lands here
        "XDG_DATA_HOME": str(tmp / "data"),  # journal, lock, credentials
        "PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring",
        "HEDGE_TEST_KEYRING": str(tmp / "keyring.json"),
        "BOX_LOG": str(tmp / "boxes.jsonl"),
        **extra,
    }


def default_log(tmp: Path) -> Path:
    return tmp / "state" / "hedge-agent" / "log" / "hedge-agent.log"


def windowed(tmp: Path, *args: str, stdin: str = "", **extra: str) -> tuple[int, list[dict[str, Any]]]:
    r = subprocess.run(
        [sys.executable, "-c", WINDOWED, *args], input=stdin, capture_output=True, text=True,
        env=env_for(tmp, **extra), timeout=60,
    )  # fmt: skip
    assert r.stdout == "" and r.stderr == "", "the windowed program has no console"
    boxes = tmp / "boxes.jsonl"
    shown = [json.loads(line) for line in boxes.read_text().splitlines()] if boxes.exists() else []
    return r.returncode, shown


def cli(tmp: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedge_agent", *args], input=stdin, capture_output=True, text=True,
        env=env_for(tmp, **extra), timeout=60,
    )  # fmt: skip


def log_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_config(tmp: Path) -> Path:
    """A config whose Cognito and AppSync are on a port nobody listens on: the network is not up."""
    port = closed_port()
    text = MINIMAL.replace(
        'username = "alice"', f'username = "alice"\nendpoint_url = "http://127.0.0.1:{port}"'
    )
    text = text.replace(
        "https://abc.appsync-api.eu-west-1.amazonaws.com/graphql", f"http://127.0.0.1:{port}/graphql"
    )
    path = tmp / "offline.toml"
    path.write_text(f'log_dir = "{(tmp / "logs").as_posix()}"\n' + text)
    return path


# -- point 1: the windowed program tells the user --------------------------------------------------------


def test_a_config_error_in_the_windowed_program_is_a_message_box_and_a_log_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "\n[trailling]\n")
    code, boxes = windowed(tmp_path, "run", "--config", str(bad))
    assert code == 2
    (box,) = boxes
    assert "trailling: unknown key" in box["text"] and "What to do:" in box["text"]
    assert str(default_log(tmp_path)) in box["text"]
    assert any(e["event"] == "config.invalid" for e in log_events(default_log(tmp_path)))


def test_no_stored_sign_in_in_the_windowed_program_says_run_login(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'log_dir = "{(tmp_path / "logs").as_posix()}"\n' + MINIMAL)
    code, boxes = windowed(tmp_path, "run", "--config", str(config), "--no-tray")
    assert code == 5
    (box,) = boxes
    assert "sign-in refused" in box["text"] and "login --config" in box["text"]
    assert any(e["event"] == "signin.refused" for e in log_events(tmp_path / "logs" / "hedge-agent.log"))


def test_already_running_in_the_windowed_program_is_a_message_box(tmp_path: Path) -> None:
    from hedge_agent.desktop.single_instance import InstanceLock

    config = tmp_path / "c.toml"
    config.write_text(MINIMAL)
    with InstanceLock(lock_dir=tmp_path / "data" / "hedge-agent"):
        code, boxes = windowed(tmp_path, "run", "--config", str(config), "--no-tray")
    assert code == 4
    assert "already running" in boxes[0]["text"] and f"pid {os.getpid()}" in boxes[0]["text"]
    assert any(e["event"] == "agent.already_running" for e in log_events(default_log(tmp_path)))


def test_a_usage_error_in_the_windowed_program_is_a_message_box(tmp_path: Path) -> None:
    code, boxes = windowed(tmp_path, "run")
    assert code == 2 and "--config" in boxes[0]["text"]


def test_the_message_box_is_the_win32_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from hedge_agent.desktop import alert

    calls: list[tuple[Any, ...]] = []

    class User32:
        def MessageBoxW(self, hwnd: Any, text: str, title: str, flags: int) -> int:
            calls.append((hwnd, text, title, flags))
            return 1

    assert alert.message_box("hedge-agent", "text", user32=User32()) == 1
    hwnd, text, title, flags = calls[0]
    assert hwnd is None and text == "text" and title == "hedge-agent"
    assert flags & alert.MB_ICONERROR and flags & alert.MB_TOPMOST


# -- the catch-all at main() ---------------------------------------------------------------------------


def test_an_unexpected_error_is_logged_with_its_traceback_and_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hedge_agent import cli, logs

    def boom(_args: Any) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "_check_config", boom)
    monkeypatch.setattr(logs, "default_log_dir", lambda: tmp_path / "logs")
    monkeypatch.setattr(logs, "_current_log_file", None)
    assert cli.main(["check-config", "x.toml"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: kaboom" in err[0] and str(tmp_path / "logs") in err[0]
    (crash,) = [e for e in log_events(tmp_path / "logs" / "hedge-agent.log") if e["event"] == "agent.crashed"]
    assert "Traceback" in crash["exception"] and "kaboom" in crash["exception"]


# -- point 8: no tracebacks -------------------------------------------------------------------------------


def test_check_config_on_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    r = cli(tmp_path, "check-config", str(tmp_path))
    assert r.returncode == 2 and "is a folder" in r.stderr and "Traceback" not in r.stderr


def test_logout_without_a_keyring_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(MINIMAL)
    r = cli(
        tmp_path, "logout", "--config", str(config), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"
    )
    assert r.returncode == 3 and "credential store" in r.stderr and "Traceback" not in r.stderr


def test_an_unwritable_log_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "c.toml"
    config.write_text(f'log_dir = "{(blocker / "logs").as_posix()}"\n' + MINIMAL)
    r = cli(tmp_path, "run", "--config", str(config), "--no-tray")
    assert r.returncode == 2 and "cannot write the log" in r.stderr and "log_dir" in r.stderr
    assert "Traceback" not in r.stderr


def test_ctrl_c_at_the_password_prompt_is_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(MINIMAL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedge_agent", "login", "--config", str(config)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for(tmp_path), text=True,
        start_new_session=True,  # no controlling terminal: getpass prompts on stderr and reads stdin
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    while "Password for" not in seen:  # the sentinel: the prompt is up
        chunk = proc.stderr.read(1)
        assert chunk, f"exited before prompting: {seen}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in seen + rest and "interrupted" in rest


# -- point 2: start without the network ------------------------------------------------------------------


def test_without_the_network_the_agent_waits_and_ctrl_c_stops_it_cleanly(tmp_path: Path) -> None:
    config = unreachable_config(tmp_path)
    (tmp_path / "pw").write_text("secret\n")
    with (tmp_path / "pw").open() as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--no-tray", "--password-stdin"],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for(tmp_path), text=True,
        )  # fmt: skip
    log = tmp_path / "logs" / "hedge-agent.log"
    deadline = time.monotonic() + 40
    retries: list[dict[str, Any]] = []
    while len(retries) < 2:  # it is still there, retrying: not exited with rc 1 after 1.7 s
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no retry logged"
        retries = [
            e for e in log_events(log) if e["event"] in ("signin.waiting_for_network", "signin.retrying")
        ]
        time.sleep(0.1)
    assert retries[0]["event"] == "signin.waiting_for_network" and "will retry" in retries[0]["error"]
    status = cli(tmp_path, "status", "--config", str(config))
    assert "agent: running (pid" in status.stdout and "waiting for network: " in status.stdout, status.stdout
    proc.send_signal(signal.SIGINT)  # Ctrl-C during start-up
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err
    assert any(e["event"] == "agent.stop_requested" for e in log_events(log))


# -- point 3: --simulate is a dry run --------------------------------------------------------------------


def test_simulate_refuses_a_real_backend(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(MINIMAL)
    r = cli(tmp_path, "run", "--config", str(config), "--simulate", "--no-tray")
    assert r.returncode == 2 and "real backend" in r.stderr and "--against-live-cloud" in r.stderr
    assert not (tmp_path / "data" / "hedge-agent" / "journal.sqlite3").exists()
