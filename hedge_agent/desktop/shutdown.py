"""Stop cleanly however the session ends: Ctrl-C, SIGTERM, closing the console, Windows log-off or shutdown,
Task Manager's "End task".

A clean stop matters: it drains in-flight orders and sets ``User.pcStatus`` OFFLINE. Each way in calls the
same ``request_stop`` and, where the OS kills the process as soon as the handler returns (Windows console
close / log-off / shutdown, ``WM_ENDSESSION``), waits a bounded time for the agent to finish.

- POSIX and Windows: ``SIGINT`` / ``SIGTERM`` (and ``SIGBREAK`` on Windows) through :mod:`signal`.
- Windows console program: ``SetConsoleCtrlHandler`` for ``CTRL_CLOSE_EVENT``, ``CTRL_LOGOFF_EVENT`` and
  ``CTRL_SHUTDOWN_EVENT`` (kernel32, loaded lazily through ctypes).
- Windows windowed program: ``WM_QUERYENDSESSION`` / ``WM_ENDSESSION`` on the tray icon's hidden window
  (pystray's win32 backend dispatches its window messages through ``_message_handlers``).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
WM_QUERYENDSESSION = 0x0011
WM_ENDSESSION = 0x0016
#: Windows ends a console process ~5 s after CTRL_CLOSE_EVENT, and allows a little more at log-off
END_SESSION_WAIT_S = 4.5

_EVENT_NAMES = {
    CTRL_C_EVENT: "ctrl_c",
    CTRL_BREAK_EVENT: "ctrl_break",
    CTRL_CLOSE_EVENT: "console_closed",
    CTRL_LOGOFF_EVENT: "logoff",
    CTRL_SHUTDOWN_EVENT: "shutdown",
}


class StopHandlers:
    """Installs every way in; ``done`` is set by the caller when the agent has finished its clean stop."""

    def __init__(
        self,
        request_stop: Callable[[], None],
        *,
        wait_s: float = END_SESSION_WAIT_S,
        platform: str = sys.platform,
        kernel32: Any = None,
        signals: Any = signal,
    ) -> None:
        self.request_stop = request_stop
        self.done = threading.Event()
        self.wait_s = wait_s
        self.platform = platform
        self._kernel32 = kernel32
        self._signals = signals
        self._ctrl_handler: Any = None  # keep the ctypes callback alive while installed
        self.received: list[str] = []

    def install(self) -> StopHandlers:
        if threading.current_thread() is threading.main_thread():
            names = (
                ["SIGINT", "SIGTERM", "SIGBREAK"]
                if self.platform == "win32"
                else ["SIGINT", "SIGTERM", "SIGHUP"]
            )
            for name in names:
                sig = getattr(self._signals, name, None)
                if sig is not None:
                    self._signals.signal(sig, self._on_signal)
        if self.platform == "win32":
            self._install_console_handler()
        return self

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop(f"signal {signum}")

    def _stop(self, why: str) -> None:
        self.received.append(why)
        log.info("agent.stop_requested", by=why)
        self.request_stop()

    # -- Windows console ---------------------------------------------------------------------------------

    def on_console_event(self, event: int) -> bool:
        """``HandlerRoutine``: True = handled. For close/log-off/shutdown, block until the agent stopped."""
        why = _EVENT_NAMES.get(event)
        if why is None:
            return False
        self._stop(why)
        if event in (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT):
            self.done.wait(self.wait_s)  # the OS ends the process when this returns
        return True

    def _install_console_handler(self) -> None:
        kernel32 = self._kernel32
        if kernel32 is None:
            import ctypes
            from ctypes import wintypes

            kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
            routine = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)  # type: ignore[attr-defined,unused-ignore]
            self._ctrl_handler = routine(lambda event: bool(self.on_console_event(int(event))))
        else:
            self._ctrl_handler = self.on_console_event
        if not kernel32.SetConsoleCtrlHandler(self._ctrl_handler, True):
            log.warning("shutdown.console_handler_not_installed")

    # -- Windows session end (windowed program) ----------------------------------------------------------

    def hook_window(self, message_handlers: dict[int, Callable[[Any, Any], Any]]) -> None:
        """Add session-end handling to a window's message map (pystray win32: ``icon._message_handlers``)."""
        message_handlers[WM_QUERYENDSESSION] = self._on_query_end_session
        message_handlers[WM_ENDSESSION] = self._on_end_session

    def _on_query_end_session(self, _wparam: Any, _lparam: Any) -> int:
        self._stop("session_ending")
        return 1  # TRUE: never block the user's log-off; the stop has begun

    def _on_end_session(self, wparam: Any, _lparam: Any) -> int:
        if wparam:  # the session really ends: the process is terminated when this returns
            self.done.wait(self.wait_s)
        return 0
