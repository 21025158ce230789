"""What the agent shows the user (tray menu, live view, ``status``), as immutable snapshots.

The engine publishes a new :class:`AgentStatus` whenever something the user should see changes; the tray
and the demo's live view only read snapshots, and talk back through :class:`AgentControl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Overall(StrEnum):
    OK = "ok"  # everything connected: green
    DEGRADED = "degraded"  # something is down or retrying, or execution is paused: amber
    DISCONNECTED = "disconnected"  # the cloud link is down: red


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    name: str
    kind: str
    account_id: str
    connection: str  # terminals.base.Connection value
    trade_allowed: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth a desktop notification: a fill, a failure, a disconnect."""

    level: str  # "info" | "warning" | "error"
    title: str
    message: str


@dataclass(frozen=True, slots=True)
class AgentStatus:
    user: str = ""
    cloud: str = "connecting"  # engine.events.LinkState.state
    terminals: tuple[TerminalStatus, ...] = ()
    positions_trailing: int = 0
    positions_open: int = 0
    paused: bool = False
    last_error: str = ""
    notices: tuple[Notice, ...] = field(default_factory=tuple)  # newest last, bounded

    @property
    def overall(self) -> Overall:
        if self.cloud != "connected":
            return Overall.DISCONNECTED
        if self.paused or any(t.connection != "connected" or not t.trade_allowed for t in self.terminals):
            return Overall.DEGRADED
        return Overall.OK


class AgentControl(Protocol):
    """Commands from the UI to the running agent (thread-safe: the tray calls them from its thread)."""

    def status(self) -> AgentStatus: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def request_stop(self) -> None: ...
