"""Never silent: a reason the program stops goes to the log file *and* to the user, with the fix in words.

The console program prints it on stderr. The windowed one (PyInstaller ``--windowed``: ``sys.stdout`` and
``sys.stderr`` are ``None``) has nowhere to print, so on Windows it shows a message box (``MessageBoxW``,
user32, loaded lazily through ctypes: nothing Windows-only is imported elsewhere). Logging is set up on
the default log dir first if nothing has set it up yet (a config error comes before the config's log dir).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

TITLE = "hedge-agent"
# MessageBoxW flags (winuser.h): MB_OK | MB_ICONERROR | MB_SETFOREGROUND | MB_TOPMOST
MB_OK = 0x0
MB_ICONERROR = 0x10
MB_ICONWARNING = 0x30
MB_YESNO = 0x4
MB_SETFOREGROUND = 0x10000
MB_TOPMOST = 0x40000
IDYES = 6


def windowed() -> bool:
    """The windowed build: no console to print to."""
    return sys.stdout is None or sys.stderr is None


def _user32() -> Any:
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    user32.MessageBoxW.argtypes = (wintypes.HWND, wintypes.LPCWSTR, wintypes.LPCWSTR, wintypes.UINT)
    user32.MessageBoxW.restype = ctypes.c_int
    return user32


def message_box(title: str, text: str, flags: int = MB_OK | MB_ICONERROR, *, user32: Any = None) -> int:
    """Show a Windows message box and wait for it; returns the button pressed (0 when none could be shown)."""
    if user32 is None:
        if sys.platform != "win32":
            return 0
        user32 = _user32()
    result: int = user32.MessageBoxW(None, text, title, flags | MB_SETFOREGROUND | MB_TOPMOST)
    return result


#: replaced by the tests (a recording fake): ``box(title, text, flags) -> button``
box: Callable[[str, str, int], int] = message_box


def render(problem: str, fix: str, log_file: Path | None) -> str:
    text = problem.rstrip(".") + "."
    if fix:
        text += f"\n\nWhat to do: {fix}"
    if log_file is not None:
        text += f"\n\nLog: {log_file}"
    return text


def ensure_log_file() -> Path | None:
    """The log file in use, setting up logging on the default log dir when nothing has yet."""
    from hedge_agent.logs import current_log_file, setup_logging

    current = current_log_file()
    if current is not None:
        return current
    try:
        return setup_logging("INFO", console=False)
    except OSError:
        return None


def fatal(problem: str, fix: str = "", *, event: str = "agent.fatal", **fields: Any) -> None:
    """Tell the user why the program stops: log line + message box (windowed) or stderr (console)."""
    log_file = ensure_log_file()
    log.error(event, problem=problem, fix=fix, **fields)
    tell(problem, fix, log_file)


def tell(problem: str, fix: str, log_file: Path | None, flags: int = MB_OK | MB_ICONERROR) -> None:
    """Only the user part of :func:`fatal` (the caller has logged already)."""
    if windowed():
        try:
            box(TITLE, render(problem, fix, log_file), flags)
        except Exception:
            log.exception("alert.message_box_failed")
        return
    lines = [f"hedge-agent: {problem}"]
    if fix:
        lines.append(f"  fix: {fix}")
    if log_file is not None:
        lines.append(f"  log: {log_file}")
    print("\n".join(lines), file=sys.stderr)
