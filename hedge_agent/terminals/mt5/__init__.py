"""MT5 terminals through one worker process each. Importing this package never imports ``MetaTrader5``:
only the worker process does, in :func:`hedge_agent.terminals.mt5.worker.main`. ``Mt5Terminal`` is
loaded lazily so a worker process (which imports :mod:`.worker` through this package) does not pay for
asyncio and the agent-side modules it never uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .terminal import Mt5Terminal

__all__ = ["Mt5Terminal"]


def __getattr__(name: str) -> Any:
    if name == "Mt5Terminal":
        from .terminal import Mt5Terminal

        return Mt5Terminal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
