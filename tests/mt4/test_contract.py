"""The terminal contract, run against the MT4 bridge with the EA emulator on a SimBroker, over real sockets.

Four contract tests assert MT5 retcodes in ``Rejected.code``; an MT4 terminal reports MT4 error numbers
(what GetLastError() says), so this module overrides exactly those four with the MT4 code of the same
broker answer, and the same checks otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.terminals.base import Rejected
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.simulated import DealReason, Fault, FaultKind, SimBroker, default_symbols
from tests.terminals.contract import LOGIN, SYMBOLS, Harness, TerminalContract, tag

from .conftest import TOKEN


class EaControl:
    """The broker behind the EA emulator is in this process: drive it directly."""

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


class TestMt4BridgeContract(TerminalContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[Harness]:
        broker = SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}), seed=1)
        terminal = Mt4BridgeTerminal("mt4-contract", 0, TOKEN, SYMBOLS, login=LOGIN, heartbeat_s=0.2)
        await terminal.connect()
        # MaxRetries=0: one broker answer per order, as the contract's fault injections assume
        ea = EaEmulator(
            f"ws://127.0.0.1:{terminal.port}",
            TOKEN,
            broker,
            login=LOGIN,
            server="SimBroker-Demo",
            max_retries=0,
            timer_ms=5,
        )
        await ea.start()
        await ea.wait_welcomed()
        yield Harness(terminal, EaControl(broker))
        await ea.stop()
        await terminal.shutdown()

    # -- the same checks with MT4 error numbers -------------------------------------------------------

    async def test_a_permanent_rejection_carries_its_code_and_a_readable_reason(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.REJECT, code=10019))  # no money
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("r1"))
        assert isinstance(res, Rejected), res
        assert (res.code, res.retryable) == (134, False)  # ERR_NOT_ENOUGH_MONEY
        assert "not enough money" in res.reason
        assert await harness.terminal.find(tag("r1")) == []

    async def test_a_requote_is_a_retryable_rejection(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.REQUOTE))
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("r2"))
        assert isinstance(res, Rejected) and res.retryable and res.code == 138, res  # ERR_REQUOTE

    async def test_a_closed_market_is_a_permanent_rejection(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.MARKET_CLOSED))
        res = await harness.terminal.open_position(Symbol.XAUUSD, Side.BUY, 0.1, tag("r3"))
        assert isinstance(res, Rejected) and not res.retryable and res.code == 132, res  # ERR_MARKET_CLOSED
        assert "market is closed" in res.reason

    async def test_an_invalid_volume_is_a_permanent_rejection(self, harness: Harness):
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.BUY, 0.015, tag("r4"))
        assert isinstance(res, Rejected) and not res.retryable and res.code == 131, (
            res
        )  # ERR_INVALID_TRADE_VOLUME
