"""An Mt5Terminal whose worker process imports the fake MetaTrader5 package (tests/fakes), and a control
that drives the fake's simulated broker through its control file (the way a test reaches into another
process: at the wire, never by patching)."""

from __future__ import annotations

import json
import pickle
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hedge_agent.terminals.mt5 import Mt5Terminal
from hedge_agent.terminals.simulated import Fault, SimBroker
from tests.terminals.contract import BALANCE, LOGIN, SYMBOLS

FAKES = str(Path(__file__).resolve().parents[2] / "fakes")
PASSWORD = "s3cret-pw"
SERVER = "SimBroker-Demo"


class FakeMt5Control:
    def __init__(self, directory: Path) -> None:
        self.state_path = directory / "mt5-state.pkl"
        self.control_path = directory / "mt5-control.jsonl"
        self.control_path.touch()

    def command(self, **cmd: Any) -> None:
        with self.control_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(cmd) + "\n")

    def broker(self) -> SimBroker:
        with self.state_path.open("rb") as f:
            broker = pickle.load(f)["broker"]
        assert isinstance(broker, SimBroker)
        return broker

    async def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.command(op="set_quote", symbol=symbol, bid=bid, ask=ask)

    async def inject(self, fault: Fault) -> None:
        self.command(op="fault", kind=fault.kind.value, code=fault.code, times=fault.times, on=fault.on)

    async def set_trade_allowed(self, allowed: bool) -> None:
        self.command(op="set", key="algo_trading", value=allowed)

    async def set_connected(self, connected: bool) -> None:
        self.command(op="set", key="connected", value=connected)

    async def broker_close(self, ticket: str) -> None:
        self.command(op="broker_close", ticket=int(ticket))

    async def duplicate_orders(self) -> int:
        return self.broker().duplicate_orders()


def scenario(control: FakeMt5Control, **extra: Any) -> dict[str, Any]:
    return {
        "login": LOGIN,
        "password": PASSWORD,
        "server": SERVER,
        "balance": BALANCE,
        "symbols": {"USDJPY": "USDJPY.raw"},
        "state_path": str(control.state_path),
        "control_path": str(control.control_path),
        "ticks_per_second": 0,
    } | extra


MakeTerminal = Callable[..., Mt5Terminal]


@pytest.fixture
def control(tmp_path: Path) -> FakeMt5Control:
    return FakeMt5Control(tmp_path)


@pytest.fixture
async def make_terminal(control: FakeMt5Control) -> AsyncIterator[MakeTerminal]:
    """Builds terminals on the fake (``fake=`` adds scenario keys, the rest goes to Mt5Terminal) and shuts
    every one of them down at the end."""
    made: list[Mt5Terminal] = []

    def make(name: str = "mt5-1", fake: dict[str, Any] | None = None, **kwargs: Any) -> Mt5Terminal:
        options: dict[str, Any] = {
            "login": LOGIN,
            "server": SERVER,
            "password": PASSWORD,
            "symbols": SYMBOLS,
            "poll_interval": 0.005,
            "status_interval": 0.05,
            "call_timeout": 10.0,
            "order_timeout": 10.0,
            "start_timeout": 30.0,
            "restart_backoff": (0.05, 0.5),
            "extra_sys_path": [FAKES],
            "worker_env": {"HEDGE_FAKE_MT5_SCENARIO": json.dumps(scenario(control, **(fake or {})))},
        } | kwargs
        terminal = Mt5Terminal(name, **options)
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        await terminal.shutdown()
