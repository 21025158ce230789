"""Start with Windows: a small ``hedge-agent.cmd`` in the user's Startup folder that launches the agent.

A .cmd needs neither COM (a .lnk does) nor VBScript (being removed from Windows), and the user can see it
and remove it by hand or in Task Manager's startup apps. ``start`` detaches the agent, so the console window
of the .cmd only flashes. The file is UTF-8 after ``chcp 65001``: user folders are often not ASCII.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hedge_agent.desktop.environment import is_frozen
from hedge_agent.errors import PermanentError
from hedge_agent.exit_codes import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE

FILE_NAME = "hedge-agent.cmd"


class AutostartUnavailable(PermanentError):
    """No Startup folder here (not Windows): nothing was changed."""


def default_startup_dir() -> Path:
    appdata = os.environ.get("APPDATA")
    if sys.platform != "win32" or not appdata:
        raise AutostartUnavailable("start with Windows is only available on Windows")
    return Path(appdata) / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"


def agent_command(config_path: Path) -> list[str]:
    """The command line that runs this installation of the agent on ``config_path``."""
    config = str(config_path.resolve())
    if is_frozen():
        exe = Path(sys.executable)
        # started from hedge-agent-cli.exe: sign-in should start the windowed hedge-agent.exe next to it
        windowed = exe.with_name(exe.stem.removesuffix("-cli") + exe.suffix)
        return [str(windowed if windowed.exists() else exe), "run", "--config", config]
    python = Path(sys.executable)
    pythonw = python.with_name("pythonw.exe")  # no console window for a source install on Windows
    exe = pythonw if sys.platform == "win32" and pythonw.exists() else python
    return [str(exe), "-m", "hedge_agent", "run", "--config", config]


def quote_for_cmd(arg: str) -> str:
    """One argument for a .cmd line: always quoted, ``%`` doubled (cmd expands it even in quotes), and
    trailing backslashes doubled (the program's argument parser would read ``\\"`` as a quote)."""
    if any(c in arg for c in '"\r\n\0'):
        raise ValueError(f"cannot write {arg!r} into a .cmd file (quote or line break in it)")
    body = arg.rstrip("\\")
    return '"' + body.replace("%", "%%") + "\\" * (2 * (len(arg) - len(body))) + '"'


def render_cmd(command: Sequence[str]) -> str:
    if not command:
        raise ValueError("empty command")
    lines = [
        "@echo off",
        "rem Starts hedge-agent when you sign in. Written by: hedge-agent autostart on",
        "rem Remove it with: hedge-agent autostart off (or delete this file)",
        "chcp 65001 >nul",
        'start "" ' + " ".join(quote_for_cmd(a) for a in command),
        "",
    ]
    return "\r\n".join(lines)


class Autostart:
    """The Startup-folder entry for ``command``. ``startup_dir`` defaults to the user's Startup folder."""

    def __init__(self, command: Sequence[str], *, startup_dir: Path | None = None) -> None:
        self.command = list(command)
        self.startup_dir = startup_dir if startup_dir is not None else default_startup_dir()

    @property
    def path(self) -> Path:
        return self.startup_dir / FILE_NAME

    def enabled(self) -> bool:
        return self.path.is_file()

    def enable(self) -> Path:
        content = render_cmd(self.command).encode("utf-8")
        self.startup_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE_NAME + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, self.path)  # never a half-written file in the Startup folder
        return self.path

    def disable(self) -> bool:
        """Remove the entry; False when there was none."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def installed_line(self) -> str | None:
        """The ``start`` line of the installed file, for ``autostart status``."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        return next((line for line in text.splitlines() if line.startswith("start ")), "")


def autostart_command(action: str, config: str | None, startup_dir: str | None) -> int:
    """``hedge-agent autostart on|off|status``: prints what it did, returns the exit code."""
    try:
        folder = Path(startup_dir) if startup_dir else default_startup_dir()
    except AutostartUnavailable as e:
        print(f"hedge-agent autostart: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if action == "on":
        if not config:
            print("hedge-agent autostart on: --config PATH is required", file=sys.stderr)
            return EXIT_CONFIG
        problem = _config_problem(config)
        if problem:
            print(f"hedge-agent autostart on: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        entry = Autostart(agent_command(Path(config)), startup_dir=folder)
        try:
            path = entry.enable()
        except OSError as e:
            print(f"hedge-agent autostart on: cannot write {entry.path}: {e}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"autostart on: {path}")
        return EXIT_OK
    entry = Autostart([], startup_dir=folder)
    if action == "off":
        try:
            removed = entry.disable()
        except OSError as e:
            print(f"hedge-agent autostart off: cannot remove {entry.path}: {e}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        print(f"autostart off (removed {entry.path})" if removed else "autostart off (it was not on)")
        return EXIT_OK
    line = entry.installed_line()
    print(f"autostart on: {entry.path}\n  {line}" if line is not None else "autostart off")
    return EXIT_OK


def _config_problem(config: str) -> str | None:
    """Refuse to start a config at every sign-in that would fail at every sign-in."""
    from hedge_agent.config import load_config
    from hedge_agent.errors import ConfigError

    try:
        load_config(config)
    except ConfigError as e:
        return f"{e} (see: hedge-agent check-config {config})"
    except OSError as e:
        return f"cannot read {config}: {e}"
    return None
