"""What the simulated terminal adds to its broker: latency, a ticker, lifecycle, typed results."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.errors import RetryableError
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import Connection, Filled, Rejected, Unknown
from hedge_agent.terminals.simulated import (
    Fault,
    FaultKind,
    SimAccountConfig,
    SimBroker,
    SimulatedTerminal,
)
from tests.terminals.contract import next_quote, tag


@pytest.fixture
async def terminal():
    t = SimulatedTerminal("sim", SimBroker(seed=3), tick_interval=None)
    await t.connect()
    yield t
    await t.shutdown()


async def test_every_order_waits_the_latency_both_ways():
    t = SimulatedTerminal("sim", SimBroker(), latency=0.02, tick_interval=None)
    await t.connect()
    started = time.perf_counter()
    assert isinstance(await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("l1")), Filled)
    assert time.perf_counter() - started >= 0.04
    await t.shutdown()


async def test_the_ticker_walks_prices_and_pushes_the_changes_of_watched_symbols():
    t = SimulatedTerminal("sim", SimBroker(seed=9), tick_interval=0.005)
    await t.connect()
    quotes = t.quotes()
    await t.watch([Symbol.EURUSD])
    seen = [(q.bid, q.ask) for q in [await next_quote(quotes) for _ in range(5)]]
    assert all(a != b for a, b in itertools.pairwise(seen))
    await t.shutdown()


async def test_shutdown_ends_the_quote_stream_and_later_calls_say_not_connected(terminal):
    quotes = terminal.quotes()
    reader = asyncio.create_task(anext(quotes, None))
    await asyncio.sleep(0)
    await terminal.shutdown()
    assert await asyncio.wait_for(reader, 1) is None
    assert terminal.health().connection is Connection.DISCONNECTED
    with pytest.raises(RetryableError, match="not connected"):
        await terminal.account_info()


async def test_without_resolution_a_timeout_is_returned_as_unknown_with_its_code():
    broker = SimBroker()
    t = SimulatedTerminal("sim", broker, tick_interval=None, resolve_unknown=False)
    await t.connect()
    broker.inject(Fault(FaultKind.TIMEOUT))
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("u1"))
    assert isinstance(res, Unknown) and res.code == rc.TIMEOUT, res
    assert len(await t.find(tag("u1"))) == 1
    await t.shutdown()


async def test_broker_symbol_names_are_mapped_both_ways():
    from hedge_agent.terminals.simulated import default_symbols

    broker = SimBroker(symbols=default_symbols({"XAUUSD": "XAUUSDm"}))
    t = SimulatedTerminal(
        "sim", broker, SymbolTable(broker_names={Symbol.XAUUSD: "XAUUSDm"}), tick_interval=None
    )
    await t.connect()
    res = await t.open_position(Symbol.XAUUSD, Side.SELL, 0.01, tag("x1"))
    assert isinstance(res, Filled)
    assert broker.positions()[0].symbol == "XAUUSDm"
    assert [p.symbol for p in await t.positions()] == [Symbol.XAUUSD]
    await t.shutdown()


async def test_a_stop_out_shows_through_the_terminal_with_the_account_after_it():
    broker = SimBroker(account_config=SimAccountConfig(balance=1_000, stop_out_level=50))
    t = SimulatedTerminal("sim", broker, tick_interval=None)
    await t.connect()
    broker.set_quote("EURUSD", 1.0, 1.0)
    opened = await t.open_position(Symbol.EURUSD, Side.BUY, 0.5, tag("s1"))
    assert isinstance(opened, Filled)
    broker.set_quote("EURUSD", 0.985, 0.985)
    assert await t.positions() == []
    (rec,) = await t.find(tag("s1"))
    assert (rec.close_reason, rec.close_magic) == ("stop out", None)
    info = await t.account_info()
    assert info.balance == pytest.approx(250.0) and info.margin_level is None
    await t.shutdown()


async def test_a_ticket_that_is_not_a_number_is_a_permanent_rejection(terminal):
    res = await terminal.close_position("abc", 0.1, tag("b1"))
    assert isinstance(res, Rejected) and res.code == rc.INVALID and not res.retryable
