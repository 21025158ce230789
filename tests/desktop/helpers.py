"""A control that records what the tray asked of it, and status snapshots to feed the tray."""

from __future__ import annotations

import threading

from hedge_agent.status import AgentStatus, Notice, TerminalStatus


class RecordingControl:
    """AgentControl as the tray sees it: a status snapshot, and commands that are recorded."""

    def __init__(self, status: AgentStatus | None = None) -> None:
        self.current = status or healthy()
        self.calls: list[str] = []
        self.stop_requested = threading.Event()

    def status(self) -> AgentStatus:
        return self.current

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def request_stop(self) -> None:
        self.calls.append("request_stop")
        self.stop_requested.set()


def terminal(
    name: str = "mt5-main", connection: str = "connected", trade_allowed: bool = True
) -> TerminalStatus:
    return TerminalStatus(name, "mt5", "acc-1", connection, trade_allowed)


def healthy(**changes: object) -> AgentStatus:
    base: dict[str, object] = {
        "user": "trader@example.com",
        "cloud": "connected",
        "terminals": (terminal("mt5-main"), terminal("mt4-b")),
        "positions_open": 3,
        "positions_trailing": 0,  # Quit with trails asks first: see test_quit_with_trails_asks_first
    }
    base.update(changes)
    return AgentStatus(**base)  # type: ignore[arg-type]


def notice(n: int, level: str = "info") -> Notice:
    return Notice(level, f"Filled #{n}", f"position p{n} opened at 150.{n:03d}")
