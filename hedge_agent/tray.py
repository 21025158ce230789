"""The tray icon: pystray on the main thread, the agent (its own asyncio loop) in a worker thread.

What the tray shows and does is decided by the pure :mod:`hedge_agent.desktop.tray_model`; this shell
renders it, polls the agent's status every 500 ms, forwards menu clicks, and joins the threads on the way
out. pystray is imported only when an icon is really shown, so headless runs never load a GUI toolkit.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import structlog

from hedge_agent.desktop.environment import open_path
from hedge_agent.desktop.tray_model import (
    AutostartSwitch,
    Command,
    IconKind,
    MenuEntry,
    Notification,
    TrayModel,
    TrayView,
)
from hedge_agent.exit_codes import EXIT_FAILURE
from hedge_agent.status import AgentControl

log = structlog.get_logger(__name__)

POLL_S = 0.5
STOP_TIMEOUT_S = 20.0


class TrayIcon(Protocol):
    """What the shell needs from an icon (pystray here; a recording fake in the tests)."""

    def run(self, on_ready: Callable[[], None]) -> None:
        """Show the icon and block the calling (main) thread until :meth:`stop`; call ``on_ready`` once shown."""

    def stop(self) -> None: ...

    def show(self, view: TrayView) -> None: ...

    def notify(self, notification: Notification) -> None: ...


IconFactory = Callable[[Callable[[Command], None]], TrayIcon]

NO_MENU_MESSAGE = (
    "the tray icon here would have no menu (pystray's X backend cannot show one: no Pause, no Quit), so "
    "hedge-agent runs without it; stop it with Ctrl-C, and see `hedge-agent status`. "
    "Install the AppIndicator library (gir1.2-ayatanaappindicator3) for a tray with a menu, or use --no-tray"
)


def tray_without_menu() -> bool:
    """pystray picked a backend with no menu (Xorg): a tray without Quit would only pretend to be one."""
    try:
        import pystray

        return not bool(getattr(pystray.Icon, "HAS_MENU", True))
    except Exception:
        return False


def tray_available() -> bool:
    """Whether a tray icon can be shown here. Never raises: any doubt means headless."""
    try:
        if sys.platform == "win32":
            return True
        if sys.platform != "darwin" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
        import pystray  # noqa: F401  (on X11 this connects to the display: it fails when there is none)
    except Exception:
        return False
    return True


class PystrayIcon:
    """:class:`TrayIcon` on pystray: one image per :class:`IconKind`, the menu rebuilt when the view changes."""

    def __init__(self, on_command: Callable[[Command], None]) -> None:
        import pystray

        from hedge_agent.desktop.icons import draw_icon

        self._pystray: Any = pystray
        self._on_command = on_command
        self._images = {kind: draw_icon(kind) for kind in IconKind}
        self._icon: Any = pystray.Icon(
            "hedge-agent", icon=self._images[IconKind.STARTING], title="hedge-agent: starting"
        )
        self._menu_open = threading.Lock()
        self._pending_menu: tuple[MenuEntry, ...] | None = None
        self._entries: tuple[MenuEntry, ...] | None = None
        self._guard_native_menu()

    def run(self, on_ready: Callable[[], None]) -> None:
        def setup(icon: Any) -> None:
            icon.visible = True
            on_ready()

        self._icon.run(setup=setup)

    def stop(self) -> None:
        self._icon.stop()

    def show(self, view: TrayView) -> None:
        self._icon.icon = self._images[view.icon]
        self._icon.title = view.tooltip
        if view.entries != self._entries:
            self._pending_menu = view.entries
        # never rebuild the native menu while the user has it open: that would destroy it under the cursor
        if self._pending_menu is not None and self._menu_open.acquire(blocking=False):
            try:
                entries, self._pending_menu = self._pending_menu, None
                self._icon.menu = self._menu(entries)
                self._entries = entries
            finally:
                self._menu_open.release()

    def notify(self, notification: Notification) -> None:
        if getattr(self._icon, "HAS_NOTIFICATION", False):
            self._icon.notify(notification.message, notification.title)

    def _menu(self, entries: tuple[MenuEntry, ...]) -> Any:
        pystray = self._pystray
        items = []
        for entry in entries:
            if entry.separator:
                items.append(pystray.Menu.SEPARATOR)
                continue
            action = None if entry.command is None else partial(self._clicked, entry.command)
            checked = None if entry.checked is None else partial(_constant, entry.checked)
            items.append(
                pystray.MenuItem(
                    entry.text, action, checked=checked, enabled=entry.enabled, default=entry.default
                )
            )
        return pystray.Menu(*items)

    def _clicked(self, command: Command, _icon: Any, _item: Any) -> None:
        self._on_command(command)

    def message_handlers(self) -> dict[int, Any] | None:
        """The win32 backend's window-message map (for log-off / shutdown handling), if there is one."""
        handlers = getattr(self._icon, "_message_handlers", None)
        return handlers if isinstance(handlers, dict) else None

    def _guard_native_menu(self) -> None:
        # pystray's Windows backend shows the popup menu modally inside its notify-message handler: hold a
        # lock for that time so show() defers a rebuild (private API; without it, rebuilds just are not deferred)
        handlers = getattr(self._icon, "_message_handlers", None)
        if not isinstance(handlers, dict):
            return
        for message, handler in list(handlers.items()):
            if getattr(handler, "__name__", "") == "_on_notify":
                handlers[message] = partial(self._while_menu_open, handler)

    def _while_menu_open(self, handler: Callable[[Any, Any], Any], wparam: Any, lparam: Any) -> Any:
        with self._menu_open:
            return handler(wparam, lparam)


def ask_yes_no(question: str) -> bool:
    """A Yes/No message box (Windows); False when none can be shown."""
    from hedge_agent.desktop import alert

    button = alert.box("hedge-agent", question, alert.MB_YESNO | alert.MB_ICONWARNING)
    return button == alert.IDYES


def _constant(value: bool, _item: Any) -> bool:
    return value


class _Session:
    """The threads of one tray run: the agent's worker, the poller, and the icon on the calling thread."""

    def __init__(
        self,
        control: AgentControl,
        model: TrayModel,
        agent: Callable[[], int],
        *,
        poll_s: float,
        stop_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.control = control
        self.model = model
        self.poll_s = poll_s
        self.stop_timeout_s = stop_timeout_s
        self.clock = clock
        self.exit_code: int | None = None
        self.stop_deadline: float | None = None
        self.ask: Callable[[str], bool] | None = ask_yes_no if sys.platform == "win32" else None
        self.wake = threading.Event()
        self.agent_thread = threading.Thread(target=self._run_agent, args=(agent,), name="agent", daemon=True)

    def _run_agent(self, agent: Callable[[], int]) -> None:
        try:
            self.exit_code = agent()
        except SystemExit as e:
            self.exit_code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:
            log.exception("tray.agent_thread_crashed")
            self.exit_code = EXIT_FAILURE
        finally:
            self.wake.set()
            log.info("tray.agent_thread_ended", exit_code=self.exit_code)

    def on_command(self, command: Command) -> None:
        """A menu click (pystray's thread). Errors become a notification, never an exception into pystray."""
        try:
            request = self.model.activate(command)
            if request is not None:
                open_path(request.path, folder=request.folder)
            if self.model.confirming_quit and self.ask is not None:
                # Windows: ask at once in a dialog rather than in the menu the click just closed
                question = self.model.quit_question()
                if self.ask(question):
                    self.model.activate(Command.QUIT_CONFIRMED)
                else:
                    self.model.activate(Command.CANCEL_QUIT)
        except Exception as e:
            log.warning("tray.command_failed", command=str(command), error=str(e))
            self.model.report("hedge-agent", f"{command.value.replace('_', ' ')} failed: {e}")
        self.wake.set()

    def poll_until_done(self, icon: TrayIcon) -> None:
        """Keep the icon current until the agent ends (or ignores Quit for too long), then close it."""
        shown: TrayView | None = None
        try:
            while True:
                try:
                    update = self.model.poll()
                    if update.view != shown:
                        icon.show(update.view)
                        shown = update.view
                    for notification in update.notifications:
                        icon.notify(notification)
                except Exception:
                    log.exception("tray.update_failed")
                if not self.agent_thread.is_alive():
                    return
                if self.model.stopping:
                    if self.stop_deadline is None:
                        self.stop_deadline = self.clock() + self.stop_timeout_s
                    elif self.clock() > self.stop_deadline:
                        log.error("tray.agent_did_not_stop", timeout_s=self.stop_timeout_s)
                        return
                self.wake.wait(self.poll_s)
                self.wake.clear()
        finally:
            icon.stop()

    def finish(self, *, stop: bool) -> int:
        """After the icon: stop the agent if asked, wait for it (bounded when stopping), return its exit code."""
        if stop and self.agent_thread.is_alive():
            self.control.request_stop()
            if self.stop_deadline is None:
                self.stop_deadline = self.clock() + self.stop_timeout_s
        timeout = None if self.stop_deadline is None else max(0.0, self.stop_deadline - self.clock())
        self.agent_thread.join(timeout)
        if self.agent_thread.is_alive():
            log.error("tray.agent_abandoned", timeout_s=self.stop_timeout_s)
            return EXIT_FAILURE
        return EXIT_FAILURE if self.exit_code is None else self.exit_code


def run_with_tray(
    control: AgentControl,
    agent: Callable[[], int],
    *,
    log_dir: Path,
    config_path: Path | None = None,
    autostart: AutostartSwitch | None = None,
    poll_s: float = POLL_S,
    stop_timeout_s: float = STOP_TIMEOUT_S,
    icon_factory: IconFactory | None = None,
    stop_handlers: Any = None,
) -> int:
    """Run ``agent`` (e.g. ``lambda: asyncio.run(app.run())``) in a worker thread and the tray icon on this,
    the main, thread. Returns the agent's exit code.

    Quit calls ``control.request_stop()`` and waits up to ``stop_timeout_s`` for the agent; the agent ending
    by itself closes the icon. If the icon fails (the display went away), the agent goes on headless.
    """
    model = TrayModel(control, log_dir=log_dir, config_path=config_path, autostart=autostart)
    session = _Session(control, model, agent, poll_s=poll_s, stop_timeout_s=stop_timeout_s)
    if icon_factory is None and tray_without_menu():
        from hedge_agent.desktop import alert

        log.warning("tray.no_menu_running_headless", message=NO_MENU_MESSAGE)
        if not alert.windowed():
            print(f"hedge-agent: {NO_MENU_MESSAGE}", file=sys.stderr)
        session.agent_thread.start()
        return _wait_headless(session)
    try:
        icon = (icon_factory or PystrayIcon)(session.on_command)
    except Exception:
        log.exception("tray.unavailable_running_headless")
        session.agent_thread.start()
        return _wait_headless(session)
    handlers = getattr(icon, "message_handlers", None)
    window = handlers() if callable(handlers) else None
    if stop_handlers is not None and window is not None:
        stop_handlers.hook_window(window)  # Windows log-off / shutdown / end task -> clean stop
    session.agent_thread.start()
    poller = threading.Thread(target=session.poll_until_done, args=(icon,), name="tray-poller", daemon=True)
    try:
        icon.run(on_ready=poller.start)
    except KeyboardInterrupt:
        log.info("tray.interrupted")
        return session.finish(stop=True)
    except Exception:
        log.exception("tray.failed_running_headless")
    else:
        if model.stopping or not session.agent_thread.is_alive():
            return session.finish(stop=True)
        log.warning("tray.closed_running_headless")
    return _wait_headless(session)


def _wait_headless(session: _Session) -> int:
    try:
        return session.finish(stop=False)
    except KeyboardInterrupt:
        log.info("tray.interrupted")
        return session.finish(stop=True)
