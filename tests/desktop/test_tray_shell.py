"""run_with_tray's threads, with a recording icon in place of pystray (no real icon is ever shown)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hedge_agent.desktop.tray_model import Command, IconKind, Notification, TrayView
from hedge_agent.tray import run_with_tray

from .helpers import RecordingControl, healthy, notice

Script = Callable[["RecordingIcon"], None]


class RecordingIcon:
    """Plays the user: ``script`` runs on the icon's (main) thread once the icon is up, like menu clicks."""

    def __init__(self, on_command: Callable[[Command], None], script: Script | None, fail: bool) -> None:
        self.on_command = on_command
        self.script = script
        self.fail = fail
        self.views: list[TrayView] = []
        self.notifications: list[Notification] = []
        self.stopped = threading.Event()
        self.shown = threading.Event()

    def run(self, on_ready: Callable[[], None]) -> None:
        if self.fail:
            raise RuntimeError("the display went away")
        on_ready()
        if self.script:
            self.script(self)
        assert self.stopped.wait(10), "the shell never closed the icon"

    def stop(self) -> None:
        self.stopped.set()

    def show(self, view: TrayView) -> None:
        self.views.append(view)
        self.shown.set()

    def notify(self, notification: Notification) -> None:
        self.notifications.append(notification)

    def click(self, command: Command) -> None:
        assert self.shown.wait(5)
        self.on_command(command)


def run(control, agent, *, script=None, fail=False, tmp_path=Path("/nonexistent"), **kwargs):
    icons: list[RecordingIcon] = []

    def factory(on_command: Callable[[Command], None]) -> RecordingIcon:
        icons.append(RecordingIcon(on_command, script, fail))
        return icons[-1]

    t0 = time.monotonic()
    code = run_with_tray(control, agent, log_dir=tmp_path, poll_s=0.02, icon_factory=factory, **kwargs)
    return code, icons[0], time.monotonic() - t0


def until_stopped(control: RecordingControl, code: int = 0) -> Callable[[], int]:
    def agent() -> int:
        assert control.stop_requested.wait(10)
        return code

    return agent


def test_the_agent_ending_by_itself_closes_the_icon_and_its_exit_code_is_returned():
    def agent() -> int:
        time.sleep(0.1)
        return 7

    code, icon, _ = run(RecordingControl(), agent)
    assert code == 7
    assert icon.stopped.is_set()
    assert icon.views[0].icon is IconKind.OK


def test_quit_requests_a_stop_waits_for_the_agent_and_shows_it_is_stopping():
    control = RecordingControl()
    code, icon, _ = run(control, until_stopped(control), script=lambda i: i.click(Command.QUIT))
    assert code == 0
    assert control.calls == ["request_stop"]
    assert icon.views[-1].icon is IconKind.STOPPING


def test_an_agent_that_ignores_quit_is_abandoned_after_the_timeout():
    control = RecordingControl()
    release = threading.Event()
    code, icon, elapsed = run(
        control,
        lambda: (release.wait(10), 0)[1],
        script=lambda i: i.click(Command.QUIT),
        stop_timeout_s=0.3,
    )
    release.set()
    assert code == 1
    assert icon.stopped.is_set()
    assert 0.3 <= elapsed < 3


def test_an_agent_that_crashes_ends_the_tray_with_a_failure_code():
    def agent() -> int:
        raise RuntimeError("boom")

    code, icon, _ = run(RecordingControl(), agent)
    assert code == 1
    assert icon.stopped.is_set()


def test_pause_from_the_menu_reaches_the_agent():
    control = RecordingControl()

    def script(icon: RecordingIcon) -> None:
        icon.click(Command.PAUSE)
        icon.click(Command.QUIT)

    run(control, until_stopped(control), script=script)
    assert control.calls == ["pause", "request_stop"]


def test_notices_published_while_running_are_each_notified_once():
    control = RecordingControl()

    def agent() -> int:
        for i in range(1, 4):
            control.current = healthy(notices=tuple(notice(j) for j in range(1, i + 1)))
            time.sleep(0.08)
        return 0

    _, icon, _ = run(control, agent)
    assert [n.title for n in icon.notifications] == ["Filled #1", "Filled #2", "Filled #3"]


def test_a_folder_that_cannot_be_opened_becomes_a_notification(tmp_path):
    control = RecordingControl()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")

    def script(icon: RecordingIcon) -> None:
        icon.click(Command.OPEN_LOGS)
        time.sleep(0.1)
        icon.click(Command.QUIT)

    _, icon, _ = run(control, until_stopped(control), script=script, tmp_path=blocker / "logs")
    assert [n.title for n in icon.notifications] == ["hedge-agent"]
    assert "open logs failed" in icon.notifications[0].message


@pytest.mark.parametrize("where", ["factory", "run"])
def test_when_the_tray_cannot_be_shown_the_agent_runs_on_headless(where):
    control = RecordingControl()
    if where == "run":
        code, _, _ = run(control, lambda: 5, fail=True)
    else:

        def broken(_on_command: Callable[[Command], None]) -> RecordingIcon:
            raise RuntimeError("no tray here")

        code = run_with_tray(control, lambda: 5, log_dir=Path("/nonexistent"), icon_factory=broken)
    assert code == 5
    assert control.calls == []


def test_on_windows_quit_with_trails_asks_in_a_dialog_and_no_keeps_it_running(tmp_path):
    # issue 14, point 4: the question names the trailed positions; "No" keeps the agent (and its trails) running
    from hedge_agent.desktop.tray_model import TrayModel
    from hedge_agent.tray import _Session

    control = RecordingControl(healthy(positions_trailing=1, trailed=("mt5-main USDJPY BUY 0.10",)))
    model = TrayModel(control, log_dir=tmp_path)
    session = _Session(control, model, lambda: 0, poll_s=0.02, stop_timeout_s=1)
    asked: list[str] = []
    answers = iter([False, True])

    def ask(question: str) -> bool:
        asked.append(question)
        return next(answers)

    session.ask = ask
    session.on_command(Command.QUIT)
    assert control.calls == [] and "mt5-main USDJPY BUY 0.10" in asked[0] and not model.confirming_quit
    session.on_command(Command.QUIT)
    assert control.calls == ["request_stop"] and model.stopping
