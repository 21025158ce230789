"""What the tray shows and does, without any GUI: status snapshot -> icon, tooltip, menu, notifications.

The pystray shell (``hedge_agent.tray``) renders a :class:`TrayView` and forwards menu clicks to
:meth:`TrayModel.activate`, which turns them into :class:`AgentControl` calls, or into a path for the shell
to open. Texts are clipped to what the Windows shell displays (tooltip 127 characters, balloon title 63,
balloon text 255); a menu line too long to read is wrapped onto the next lines, never cut.

The icon has a glyph as well as a colour (colour alone is not a signal for everyone): a tick (ok), "!"
(degraded), a cross (cloud down), dots (starting, stopping). The default action (a click on the icon)
opens the trade log. Quit with trails active asks first and names them: trailing stops exist only while
the agent runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from hedge_agent.status import AgentControl, AgentStatus, Notice, Overall

APP = "hedge-agent"
TOOLTIP_MAX = 127
TITLE_MAX = 63
MESSAGE_MAX = 255
LINE_MAX = 80
# a burst of notices becomes one notification listing the newest few (balloons replace each other)
NOTIFY_LINES = 4


class IconKind(StrEnum):
    STARTING = "starting"  # grey with dots: signing in, waiting for the network, first connection
    OK = "ok"  # green
    DEGRADED = "degraded"  # amber
    DISCONNECTED = "disconnected"  # red
    STOPPING = "stopping"  # grey: Quit was chosen, the agent is shutting down


class Command(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    OPEN_TRADES = "open_trades"
    OPEN_LOGS = "open_logs"
    OPEN_CONFIG = "open_config"
    TOGGLE_AUTOSTART = "toggle_autostart"
    QUIT = "quit"
    QUIT_CONFIRMED = "quit_confirmed"  # Quit although positions are trailing
    CANCEL_QUIT = "cancel_quit"


@dataclass(frozen=True, slots=True)
class MenuEntry:
    text: str = ""
    command: Command | None = None  # None: a status line (shown disabled)
    enabled: bool = True
    checked: bool | None = None  # None: not a check item
    separator: bool = False
    default: bool = False  # the icon's click action


SEPARATOR = MenuEntry(enabled=False, separator=True)


@dataclass(frozen=True, slots=True)
class TrayView:
    icon: IconKind
    tooltip: str
    entries: tuple[MenuEntry, ...]


@dataclass(frozen=True, slots=True)
class Notification:
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class TrayUpdate:
    view: TrayView
    notifications: tuple[Notification, ...]


@dataclass(frozen=True, slots=True)
class OpenPath:
    """A request for the shell: show this folder, or open this file in its editor."""

    path: Path
    folder: bool


class AutostartSwitch(Protocol):
    def enabled(self) -> bool: ...

    def enable(self) -> object: ...

    def disable(self) -> object: ...


_ICONS = {
    Overall.STARTING: IconKind.STARTING,
    Overall.OK: IconKind.OK,
    Overall.DEGRADED: IconKind.DEGRADED,
    Overall.DISCONNECTED: IconKind.DISCONNECTED,
}


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: menus and tooltips show no newlines
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wrap(text: str, limit: int = LINE_MAX) -> list[str]:
    """A long status line as several menu lines (continuations indented), never cut."""
    import textwrap

    text = " ".join(text.split())
    return textwrap.wrap(text, limit, subsequent_indent="    ", break_long_words=True) or [""]


def phase_label(phase: str) -> str:
    return {"signing in": "Signing in…", "waiting for network": "Waiting for network…"}.get(
        phase, "Starting…"
    )


def health_label(status: AgentStatus) -> str:
    """Why the icon has its colour, in a few words."""
    overall = status.overall
    if overall is Overall.STARTING:
        return phase_label(status.phase).rstrip("…").lower()
    if overall is Overall.DISCONNECTED:
        return f"cloud {status.cloud}"
    if overall is Overall.OK:
        return "all connected"
    reasons = ["execution paused"] if status.paused else []
    for t in status.terminals:
        if t.connection != "connected":
            reasons.append(f"{t.name} {t.connection}")
        elif not t.trade_allowed:
            reasons.append(f"{t.name} trading disabled")
    return ", ".join(reasons)


def _terminal_line(name: str, kind: str, connection: str, trade_allowed: bool, detail: str) -> str:
    line = f"{name} ({kind}): {connection}"
    if not trade_allowed:
        line += ", trading disabled"
    if detail:
        line += f" - {detail}"
    return line


def _quit_question(status: AgentStatus) -> list[MenuEntry]:
    n = len(status.trailed) or status.positions_trailing
    lines = [f"Quit? {n} positions are trailed only while hedge-agent runs:"]
    lines += [f"  {name}" for name in status.trailed]
    lines.append("Their trailing stops stop with it (no stop at the broker).")
    entries = [MenuEntry(t, enabled=False) for text in lines for t in wrap(text)]
    return [
        *entries,
        SEPARATOR,
        MenuEntry(f"Quit and stop trailing {n} positions", Command.QUIT_CONFIRMED),
        MenuEntry("Keep running", Command.CANCEL_QUIT, default=True),
    ]


def render(
    status: AgentStatus,
    *,
    stopping: bool = False,
    has_config: bool = True,
    autostart: bool | None = None,
    confirm_quit: bool = False,
    ever_connected: bool = True,
) -> TrayView:
    """The whole tray for one snapshot. ``autostart`` None hides the start-with-Windows item.
    ``ever_connected`` False: the cloud has not been reached since start, so "connecting" is grey, not red."""
    overall = status.overall
    starting = overall is Overall.STARTING or (
        overall is Overall.DISCONNECTED and status.cloud == "connecting" and not ever_connected
    )
    lines = ["SIMULATED: dry run, no broker orders"] if status.simulate else []
    if status.phase:
        lines.append(
            f"{phase_label(status.phase)} ({status.user})" if status.user else phase_label(status.phase)
        )
        if status.phase_detail:
            lines.append(status.phase_detail)
    else:
        lines.append(f"Signed in as {status.user}" if status.user else "Not signed in")
        lines.append(f"Cloud: {status.cloud}")
        lines += [
            _terminal_line(t.name, t.kind, t.connection, t.trade_allowed, t.detail) for t in status.terminals
        ] or ["No terminals"]
        lines.append(f"Positions: {status.positions_open} open, {status.positions_trailing} trailing")
    if status.paused:
        lines.append("Execution paused: no new orders")
    if status.last_error:
        lines.append(f"Last error: {status.last_error}")
    if stopping:
        lines.append("Stopping…")

    live = not stopping
    entries = [MenuEntry(t, enabled=False) for text in lines for t in wrap(text)]
    entries.append(SEPARATOR)
    if confirm_quit and live:
        entries += _quit_question(status)
        entries.append(SEPARATOR)
    entries.append(MenuEntry("Open trade log", Command.OPEN_TRADES, default=not confirm_quit))
    if status.paused:
        entries.append(MenuEntry("Resume execution", Command.RESUME, enabled=live))
    else:
        entries.append(MenuEntry("Pause execution", Command.PAUSE, enabled=live))
    entries.append(MenuEntry("Open logs folder", Command.OPEN_LOGS))
    entries.append(MenuEntry("Open config file", Command.OPEN_CONFIG, enabled=has_config))
    if autostart is not None:
        entries.append(
            MenuEntry("Start with Windows", Command.TOGGLE_AUTOSTART, enabled=live, checked=autostart)
        )
    entries += [SEPARATOR, MenuEntry("Quit", Command.QUIT, enabled=live)]

    if stopping:
        icon, label = IconKind.STOPPING, "stopping"
    elif starting:
        icon, label = IconKind.STARTING, phase_label(status.phase).rstrip("…").lower()
    else:
        icon, label = _ICONS[overall], health_label(status)
    if status.simulate:
        label = f"SIMULATED, {label}"
    return TrayView(icon, clip(f"{APP}: {label}", TOOLTIP_MAX), tuple(entries))


def new_notices(previous: Sequence[Notice], current: Sequence[Notice]) -> tuple[Notice, ...]:
    """The notices in ``current`` that were not in ``previous``.

    The agent keeps the newest notices, oldest first, dropping from the front when full, so ``current`` is
    a tail of ``previous`` followed by the new ones. The longest such overlap wins: a notice is never
    reported twice (an identical repeat that coincides with a drop can go unreported, which is harmless).
    """
    prev, cur = tuple(previous), tuple(current)
    for start in range(len(prev) + 1):
        tail = prev[start:]
        if cur[: len(tail)] == tail:
            return cur[len(tail) :]
    return cur  # unreachable: the empty tail always matches


def summarise(notices: Sequence[Notice]) -> Notification | None:
    """One notification for a batch of notices (the newest few are listed)."""
    if not notices:
        return None
    if len(notices) == 1:
        n = notices[0]
        return Notification(clip(n.title, TITLE_MAX), clip(n.message, MESSAGE_MAX))
    errors = sum(1 for n in notices if n.level == "error")
    title = f"{len(notices)} new events" + (f", {errors} failed" if errors else "")
    shown = notices[-NOTIFY_LINES:]
    lines = [clip(f"{n.title}: {n.message}", MESSAGE_MAX // NOTIFY_LINES - 2) for n in shown]
    if len(notices) > len(shown):
        lines.insert(0, f"(+{len(notices) - len(shown)} earlier, see the log)")
    return Notification(clip(title, TITLE_MAX), "\n".join(lines)[:MESSAGE_MAX])


class TrayModel:
    """The tray's state between two polls. Thread-safe: polled by one thread, clicked from another."""

    def __init__(
        self,
        control: AgentControl,
        *,
        log_dir: Path,
        config_path: Path | None = None,
        autostart: AutostartSwitch | None = None,
        trades_path: Path | None = None,
    ) -> None:
        self._control = control
        self._log_dir = log_dir
        self._trades_path = trades_path or log_dir / "trades.log"
        self._confirm_quit = False
        self._ever_connected = False
        self._config_path = config_path
        self._autostart = autostart
        self._lock = threading.Lock()
        self._seen: tuple[Notice, ...] = ()
        self._own: list[Notification] = []  # problems of the tray itself, shown at the next poll
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def confirming_quit(self) -> bool:
        return self._confirm_quit

    def quit_question(self) -> str:
        """The Quit question as one text (for a dialog), naming the trailed positions."""
        status = self._control.status()
        n = len(status.trailed) or status.positions_trailing
        names = "".join(f"\n  {name}" for name in status.trailed)
        return (
            f"{n} positions are trailed only while hedge-agent runs:{names}\n\n"
            "If you quit, nothing trails them (there is no stop at the broker). Quit anyway?"
        )

    def poll(self) -> TrayUpdate:
        """Read the agent's snapshot: the view to show and the notifications not shown yet."""
        status = self._control.status()
        autostart = self._autostart_state()
        with self._lock:
            fresh = new_notices(self._seen, status.notices)
            self._seen = status.notices
            own, self._own = tuple(self._own), []
            stopping = self._stopping
            if status.cloud == "connected":
                self._ever_connected = True
            if self._confirm_quit and not (status.trailed or status.positions_trailing):
                self._confirm_quit = False  # nothing trails any more: the question is moot
            confirm, ever = self._confirm_quit, self._ever_connected
        view = render(
            status, stopping=stopping, has_config=self._config_path is not None, autostart=autostart,
            confirm_quit=confirm, ever_connected=ever,
        )  # fmt: skip
        summary = summarise(fresh)
        return TrayUpdate(view, own + ((summary,) if summary else ()))

    def activate(self, command: Command) -> OpenPath | None:
        """A menu click. Returns a path for the shell to open, if the command is about one."""
        if command is Command.PAUSE:
            self._control.pause()
        elif command is Command.RESUME:
            self._control.resume()
        elif command is Command.OPEN_TRADES:
            if not self._trades_path.exists():
                self._trades_path.parent.mkdir(parents=True, exist_ok=True)
                self._trades_path.touch()
            return OpenPath(self._trades_path, folder=False)
        elif command is Command.OPEN_LOGS:
            return OpenPath(self._log_dir, folder=True)
        elif command is Command.OPEN_CONFIG:
            return OpenPath(self._config_path, folder=False) if self._config_path else None
        elif command is Command.TOGGLE_AUTOSTART:
            self._toggle_autostart()
        elif command is Command.QUIT:
            status = self._control.status()
            if status.trailed or status.positions_trailing:
                with self._lock:
                    self._confirm_quit = True  # ask first: the next view shows the question
                n = len(status.trailed) or status.positions_trailing
                self.report(
                    "Quit hedge-agent?", f"{n} positions are trailed only while it runs: confirm in the menu"
                )
                return None
            self._quit()
        elif command is Command.QUIT_CONFIRMED:
            self._quit()
        elif command is Command.CANCEL_QUIT:
            with self._lock:
                self._confirm_quit = False
        return None

    def _quit(self) -> None:
        with self._lock:
            self._stopping = True
            self._confirm_quit = False
        self._control.request_stop()

    def report(self, title: str, message: str) -> None:
        """A problem of the tray itself (a folder that would not open...), notified at the next poll."""
        with self._lock:
            self._own.append(Notification(clip(title, TITLE_MAX), clip(message, MESSAGE_MAX)))

    def _autostart_state(self) -> bool | None:
        if self._autostart is None:
            return None
        try:
            return self._autostart.enabled()
        except OSError:
            return False

    def _toggle_autostart(self) -> None:
        if self._autostart is None:
            return
        try:
            if self._autostart.enabled():
                self._autostart.disable()
            else:
                self._autostart.enable()
        except OSError as e:
            self.report("Start with Windows", f"could not change it: {e}")
