"""MT5 terminals through one worker process each. Importing this package never imports ``MetaTrader5``:
only the worker process does, in :func:`hedge_agent.terminals.mt5.worker.main`."""

from .terminal import Mt5Terminal

__all__ = ["Mt5Terminal"]
