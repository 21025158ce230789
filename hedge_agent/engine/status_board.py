"""Holds the current :class:`AgentStatus`; the engine updates it, the tray and the live view read it.

Updates happen on the event loop; readers on other threads get an immutable snapshot (an atomic
reference swap), so no lock is needed. Every notice of level warning or error is also a log line (here,
once, so no caller can forget it): what the tray shows, the log has.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import structlog

from hedge_agent.status import AgentStatus, Notice, TerminalStatus

log = structlog.get_logger(__name__)

MAX_NOTICES = 50


class StatusBoard:
    def __init__(self, user: str = "") -> None:
        self._status = AgentStatus(user=user)
        self._listeners: list[Callable[[AgentStatus], None]] = []

    def snapshot(self) -> AgentStatus:
        return self._status

    def subscribe(self, listener: Callable[[AgentStatus], None]) -> None:
        self._listeners.append(listener)

    def update(self, **changes: Any) -> None:
        new = dataclasses.replace(self._status, **changes)
        if new != self._status:
            self._status = new
            for listener in self._listeners:
                listener(new)

    def terminal(self, ts: TerminalStatus) -> None:
        others = tuple(t for t in self._status.terminals if t.name != ts.name)
        self.update(terminals=tuple(sorted((*others, ts), key=lambda t: t.name)))

    def notice(self, level: str, title: str, message: str) -> None:
        if level == "error":
            log.error(title, detail=message, notice=True)
        elif level == "warning":
            log.warning(title, detail=message, notice=True)
        notices = (*self._status.notices, Notice(level, title, message))[-MAX_NOTICES:]
        changes: dict[str, Any] = {"notices": notices}
        if level == "error":
            changes["last_error"] = f"{title}: {message}"
        self.update(**changes)
