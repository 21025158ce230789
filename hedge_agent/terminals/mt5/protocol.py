"""What the agent and its MT5 worker process say to each other over their pipe.

Agent -> worker:  ``("call", request_id, op, args)`` and ``("stop",)``.
Worker -> agent:  ``("ready", info)`` once started, or ``("fatal"|"failed", message)`` if it could not start;
                  ``("reply", request_id, ok, payload)`` for each call (payload: the result, or the error text);
                  ``("quotes", [(broker_symbol, bid, ask, utc_time), ...])`` pushed when prices change;
                  ``("status", Status)`` pushed when the terminal's state changes;
                  ``("lost", message)`` before the worker exits because the terminal went away.

Everything here is plain data (picklable, no MetaTrader5 types), and nothing here imports MetaTrader5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["account", "positions", "find", "open", "close", "watch", "ping"]


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, passed once at spawn. ``password`` never appears in a repr or a log."""

    name: str
    login: int
    server: str | None
    path: str | None
    password: str | None = field(default=None, repr=False)
    symbols: tuple[str, ...] = ()  # broker names to select in Market Watch at start
    deviation: int = 20  # points
    init_timeout_ms: int = 60_000
    poll_interval: float = 0.01  # quote polling period, seconds
    status_interval: float = 1.0  # terminal/account state check period, seconds
    history_days: float = 30.0  # how far back find() searches the deal history
    server_time_offset: float | None = None  # seconds the server clock is ahead of UTC; None: estimate
    #: tests only: put these first on sys.path / into os.environ before importing MetaTrader5
    extra_sys_path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Status:
    connected: bool  # terminal_info().connected: the terminal is connected to the trade server
    algo_trading: bool  # terminal_info().trade_allowed: the "Algo Trading" button
    account_trade_allowed: bool  # account_info().trade_allowed
    expert_allowed: bool  # account_info().trade_expert
    server_time_offset: float = 0.0
