"""Every way a session ends reaches the same clean stop (issue 14, point 9): SIGTERM, the Windows console's
close / log-off / shutdown events (SetConsoleCtrlHandler, through a fake kernel32) and the windowed
program's WM_QUERYENDSESSION / WM_ENDSESSION (through a fake window message map)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from hedge_agent.desktop.shutdown import (
    CTRL_C_EVENT,
    CTRL_CLOSE_EVENT,
    CTRL_LOGOFF_EVENT,
    WM_ENDSESSION,
    WM_QUERYENDSESSION,
    StopHandlers,
)


class FakeKernel32:
    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def SetConsoleCtrlHandler(self, handler: Any, add: bool) -> bool:
        assert add
        self.handlers.append(handler)
        return True


class FakeSignals:
    SIGINT, SIGTERM, SIGBREAK = 2, 15, 21

    def __init__(self) -> None:
        self.installed: dict[int, Any] = {}

    def signal(self, sig: int, handler: Any) -> None:
        self.installed[sig] = handler


def test_sigterm_and_sigint_request_the_stop() -> None:
    calls: list[str] = []
    fake = FakeSignals()
    StopHandlers(lambda: calls.append("stop"), platform="linux", signals=fake).install()
    assert set(fake.installed) == {fake.SIGINT, fake.SIGTERM}
    fake.installed[fake.SIGTERM](15, None)
    assert calls == ["stop"]


def test_windows_log_off_requests_the_stop_and_holds_the_process_until_the_agent_stopped() -> None:
    calls: list[str] = []
    kernel32 = FakeKernel32()
    handlers = StopHandlers(
        lambda: calls.append("stop"), platform="win32", kernel32=kernel32, signals=FakeSignals()
    )
    handlers.install()
    (routine,) = kernel32.handlers
    finished = threading.Timer(0.2, handlers.done.set)
    finished.start()
    t0 = time.monotonic()
    assert routine(CTRL_LOGOFF_EVENT) is True
    waited = time.monotonic() - t0
    assert calls == ["stop"] and handlers.done.is_set() and waited < handlers.wait_s
    assert routine(CTRL_C_EVENT) is True and routine(99) is False
    assert handlers.received == ["logoff", "ctrl_c"]


def test_closing_the_console_is_bounded_when_the_agent_never_finishes() -> None:
    handlers = StopHandlers(
        lambda: None, platform="win32", kernel32=FakeKernel32(), signals=FakeSignals(), wait_s=0.1
    )
    handlers.install()
    t0 = time.monotonic()
    assert handlers.on_console_event(CTRL_CLOSE_EVENT) is True
    assert time.monotonic() - t0 < 2


def test_the_end_of_the_windows_session_stops_the_windowed_agent() -> None:
    calls: list[str] = []
    handlers = StopHandlers(
        lambda: calls.append("stop"), platform="win32", kernel32=FakeKernel32(), signals=FakeSignals()
    )
    window: dict[int, Any] = {}
    handlers.hook_window(window)
    assert window[WM_QUERYENDSESSION](0, 0) == 1  # never blocks the log-off
    assert calls == ["stop"]
    handlers.done.set()
    assert window[WM_ENDSESSION](1, 0) == 0


def test_the_tray_hooks_the_session_end_into_the_icon_window(tmp_path: Path) -> None:
    from hedge_agent.tray import run_with_tray

    from .helpers import RecordingControl

    control = RecordingControl()
    window: dict[int, Any] = {}

    class WindowIcon:
        def __init__(self, on_command: Any) -> None:
            self.stopped = threading.Event()

        def message_handlers(self) -> dict[int, Any]:
            return window

        def run(self, on_ready: Any) -> None:
            on_ready()
            window[WM_QUERYENDSESSION](0, 0)  # Windows asks: the session ends
            assert self.stopped.wait(10)

        def stop(self) -> None:
            self.stopped.set()

        def show(self, view: Any) -> None: ...

        def notify(self, n: Any) -> None: ...

    handlers = StopHandlers(
        control.request_stop, platform="win32", kernel32=FakeKernel32(), signals=FakeSignals()
    )

    def agent() -> int:
        assert control.stop_requested.wait(10)
        return 0

    code = run_with_tray(
        control, agent, log_dir=tmp_path, poll_s=0.02, icon_factory=WindowIcon, stop_handlers=handlers
    )
    assert code == 0 and control.calls == ["request_stop"]


def test_the_x_backend_without_a_menu_runs_headless_and_says_so(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    import hedge_agent.tray as tray

    from .helpers import RecordingControl

    monkeypatch.setattr(tray, "tray_without_menu", lambda: True)
    code = tray.run_with_tray(RecordingControl(), lambda: 3, log_dir=tmp_path, poll_s=0.02)
    assert code == 3
    assert "no menu" in capsys.readouterr().err


def test_a_real_sigterm_stops_the_tray_agent_cleanly(tmp_path: Path) -> None:
    """Before: the agent ran in the tray's worker thread with no handler, so SIGTERM killed the process
    without the clean stop (pcStatus stayed ONLINE)."""
    from hedge_agent.tray import run_with_tray

    from .helpers import RecordingControl
    from .tests_icon import QuietIcon

    control = RecordingControl()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    handlers = StopHandlers(control.request_stop).install()
    try:

        def agent() -> int:
            os.kill(os.getpid(), signal.SIGTERM)  # the session manager / `kill` ends the agent
            assert control.stop_requested.wait(10)
            return 0

        code = run_with_tray(control, agent, log_dir=tmp_path, poll_s=0.02, icon_factory=QuietIcon)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    assert (
        code == 0 and control.calls == ["request_stop"] and handlers.received == [f"signal {signal.SIGTERM}"]
    )
