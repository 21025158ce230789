"""The terminal contract, run against the simulated terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hedge_agent.terminals.simulated import DealReason, Fault, SimBroker, SimulatedTerminal, default_symbols
from tests.terminals.contract import SYMBOLS, Harness, TerminalContract


class SimControl:
    def __init__(self, broker: SimBroker) -> None:
        self.broker = broker

    async def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.broker.set_quote(symbol, bid, ask)

    async def inject(self, fault: Fault) -> None:
        self.broker.inject(fault)

    async def set_trade_allowed(self, allowed: bool) -> None:
        self.broker.trade_allowed = allowed

    async def set_connected(self, connected: bool) -> None:
        (self.broker.reconnect if connected else self.broker.disconnect)()

    async def broker_close(self, ticket: str) -> None:
        self.broker.close(int(ticket), reason=DealReason.SO)

    async def duplicate_orders(self) -> int:
        return self.broker.duplicate_orders()


class TestSimulatedTerminalContract(TerminalContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        broker = SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}), seed=1)
        terminal = SimulatedTerminal("sim-1", broker, SYMBOLS, tick_interval=0.01, walk=False)
        await terminal.connect()
        yield Harness(terminal, SimControl(broker))
        await terminal.shutdown()
