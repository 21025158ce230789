"""The contract every terminal kind must meet, written once and run against each of them.

To run it against a terminal kind, subclass :class:`TerminalContract` in a test module and provide an
async ``harness`` fixture yielding a connected :class:`Harness`: the terminal under test plus a
:class:`BrokerControl` that drives the simulated broker behind it (in-process for the simulator, through
the fake ``MetaTrader5`` package's control file for MT5, through the EA emulator for MT4)::

    class TestMt4Contract(TerminalContract):
        @pytest.fixture
        async def harness(self, tmp_path):
            ...  # start the bridge + EA emulator on a SimBroker
            yield Harness(terminal, control)
            await terminal.shutdown()

Prices are set by hand (no random walk), so every expectation is exact. Symbols: the terminal must map
``USDJPY`` to the broker name ``USDJPY.raw`` (``SYMBOLS`` below) so the mapping is exercised too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.protective import stop_distance
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import IntentKind, OrderTag, intent_id, order_tag
from hedge_agent.errors import RetryableError
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import (
    Connection,
    Filled,
    Rejected,
    Terminal,
    TerminalQuote,
    TradeState,
    Unknown,
)
from hedge_agent.terminals.simulated import Fault, FaultKind

SYMBOLS = SymbolTable(broker_names={Symbol.USDJPY: "USDJPY.raw"})
LOGIN = 5_000_001
BALANCE = 10_000.0


class BrokerControl(Protocol):
    """What a test may do to the broker behind a terminal (names are broker symbol names)."""

    async def set_quote(self, symbol: str, bid: float, ask: float) -> None: ...

    async def inject(self, fault: Fault) -> None: ...

    async def set_trade_allowed(self, allowed: bool) -> None: ...

    async def set_connected(self, connected: bool) -> None: ...

    async def broker_close(self, ticket: str) -> None:
        """Close a position as the broker's stop-out would (no magic, reason "stop out")."""
        ...

    async def duplicate_orders(self) -> int: ...


@dataclass
class Harness:
    terminal: Terminal
    control: BrokerControl


def tag(record: str, kind: IntentKind = IntentKind.OPEN) -> OrderTag:
    return order_tag(intent_id(record, kind))


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await asyncio.sleep(0.01)


async def next_quote(quotes: AsyncIterator[TerminalQuote], timeout: float = 3.0) -> TerminalQuote:
    return await asyncio.wait_for(anext(quotes), timeout)


async def no_quote(quotes: AsyncIterator[TerminalQuote], within: float = 0.3) -> None:
    try:
        q = await asyncio.wait_for(anext(quotes), within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected quote {q}")


class TerminalContract:
    """Behaviour every ``Terminal`` shares. Subclasses provide the ``harness`` fixture."""

    @pytest.fixture
    def harness(self) -> Harness:
        raise NotImplementedError("a subclass provides the harness fixture")

    async def test_it_is_a_terminal_and_healthy_once_connected(self, harness: Harness):
        assert isinstance(harness.terminal, Terminal)
        assert isinstance(harness.terminal.name, str) and harness.terminal.name
        await eventually(lambda: harness.terminal.health().ok)

    async def test_account_info_reports_the_broker_account(self, harness: Harness):
        info = await harness.terminal.account_info()
        assert (info.login, info.balance, info.credit, info.equity) == (LOGIN, BALANCE, 0.0, BALANCE)
        assert info.margin == 0.0 and info.margin_level is None and info.trade_allowed

    async def test_a_buy_fills_at_the_ask_and_shows_in_positions_and_in_find(self, harness: Harness):
        t, c = harness.terminal, harness.control
        await c.set_quote("USDJPY.raw", 150.100, 150.115)
        res = await t.open_position(Symbol.USDJPY, Side.BUY, 0.1, tag("p1"))
        assert isinstance(res, Filled), res
        assert (res.price, res.volume) == (150.115, 0.1)
        (pos,) = await t.positions()
        assert (pos.ticket, pos.symbol, pos.side, pos.volume, pos.magic) == (
            res.ticket,
            Symbol.USDJPY,
            Side.BUY,
            0.1,
            tag("p1").magic,
        )
        (rec,) = await t.find(tag("p1"))
        assert (rec.ticket, rec.state, rec.open_price, rec.side) == (
            res.ticket,
            TradeState.OPEN,
            150.115,
            Side.BUY,
        )
        assert rec.open_time == res.time and rec.open_time.tzinfo is not None

    async def test_a_close_fills_at_the_bid_and_is_found_by_both_tags(self, harness: Harness):
        t, c = harness.terminal, harness.control
        await c.set_quote("EURUSD", 1.10000, 1.10012)
        opened = await t.open_position(Symbol.EURUSD, Side.BUY, 0.2, tag("p2"))
        assert isinstance(opened, Filled), opened
        await c.set_quote("EURUSD", 1.10100, 1.10112)
        closed = await t.close_position(opened.ticket, 0.2, tag("p2", IntentKind.CLOSE))
        assert isinstance(closed, Filled), closed
        assert (closed.ticket, closed.price, closed.volume) == (opened.ticket, 1.10100, 0.2)
        assert await t.positions() == []
        (by_close,) = await t.find(tag("p2", IntentKind.CLOSE))
        assert await t.find(tag("p2")) == [by_close]
        assert (by_close.state, by_close.close_price, by_close.close_magic) == (
            TradeState.CLOSED,
            1.10100,
            tag("p2", IntentKind.CLOSE).magic,
        )
        info = await t.account_info()
        assert info.balance == pytest.approx(BALANCE + 17.60)  # 88 points x 0.2 lot

    async def test_a_hedging_account_holds_opposite_positions_on_one_symbol(self, harness: Harness):
        t = harness.terminal
        buy = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("h1"))
        sell = await t.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("h2"))
        assert isinstance(buy, Filled) and isinstance(sell, Filled)
        sides = {p.ticket: p.side for p in await t.positions()}
        assert sides == {buy.ticket: Side.BUY, sell.ticket: Side.SELL}

    async def test_a_permanent_rejection_carries_its_code_and_a_readable_reason(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.REJECT, code=rc.NO_MONEY))
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("r1"))
        assert isinstance(res, Rejected), res
        assert (res.code, res.retryable) == (rc.NO_MONEY, False)
        assert "not enough money" in res.reason
        assert await harness.terminal.find(tag("r1")) == []

    async def test_a_requote_is_a_retryable_rejection(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.REQUOTE))
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("r2"))
        assert isinstance(res, Rejected) and res.retryable and res.code == rc.REQUOTE, res

    async def test_a_closed_market_is_a_permanent_rejection(self, harness: Harness):
        await harness.control.inject(Fault(FaultKind.MARKET_CLOSED))
        res = await harness.terminal.open_position(Symbol.XAUUSD, Side.BUY, 0.1, tag("r3"))
        assert isinstance(res, Rejected) and not res.retryable and res.code == rc.MARKET_CLOSED, res
        assert "market is closed" in res.reason

    async def test_an_invalid_volume_is_a_permanent_rejection(self, harness: Harness):
        res = await harness.terminal.open_position(Symbol.EURUSD, Side.BUY, 0.015, tag("r4"))
        assert isinstance(res, Rejected) and not res.retryable and res.code == rc.INVALID_VOLUME, res

    async def test_closing_an_already_closed_position_is_a_permanent_rejection(self, harness: Harness):
        t = harness.terminal
        opened = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("c1"))
        assert isinstance(opened, Filled)
        assert isinstance(await t.close_position(opened.ticket, 0.1, tag("c1", IntentKind.CLOSE)), Filled)
        again = await t.close_position(opened.ticket, 0.1, tag("c1", IntentKind.CLOSE))
        assert isinstance(again, Rejected) and not again.retryable, again
        assert await harness.control.duplicate_orders() == 0

    async def test_closing_an_unknown_ticket_is_a_permanent_rejection(self, harness: Harness):
        res = await harness.terminal.close_position("424242", 0.1, tag("c2", IntentKind.CLOSE))
        assert isinstance(res, Rejected) and not res.retryable, res

    async def test_an_order_that_timed_out_but_filled_is_found_again_by_its_tag_once(self, harness: Harness):
        t = harness.terminal
        await harness.control.inject(Fault(FaultKind.TIMEOUT))
        res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("u1"))
        assert isinstance(res, Filled | Unknown), res
        (rec,) = await t.find(tag("u1"))
        assert rec.state is TradeState.OPEN and rec.magic == tag("u1").magic
        if isinstance(res, Filled):
            assert res.ticket == rec.ticket
        assert await harness.control.duplicate_orders() == 0

    async def test_a_close_that_timed_out_but_filled_is_found_again_by_its_tag(self, harness: Harness):
        t = harness.terminal
        opened = await t.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("u2"))
        assert isinstance(opened, Filled)
        await harness.control.inject(Fault(FaultKind.TIMEOUT))
        res = await t.close_position(opened.ticket, 0.1, tag("u2", IntentKind.CLOSE))
        assert isinstance(res, Filled | Unknown), res
        (rec,) = await t.find(tag("u2", IntentKind.CLOSE))
        assert (rec.ticket, rec.state) == (opened.ticket, TradeState.CLOSED)
        assert await harness.control.duplicate_orders() == 0

    async def test_one_tag_never_yields_two_orders_through_the_adapter(self, harness: Harness):
        t = harness.terminal
        for kind in (FaultKind.REQUOTE, FaultKind.TIMEOUT):
            await harness.control.inject(Fault(kind))
        first = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("d1"))
        assert isinstance(first, Rejected) and first.retryable
        second = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("d1"))
        assert isinstance(second, Filled | Unknown)
        assert len(await t.find(tag("d1"))) == 1
        assert await harness.control.duplicate_orders() == 0

    async def test_quotes_of_watched_symbols_come_only_when_they_change(self, harness: Harness):
        t, c = harness.terminal, harness.control
        await c.set_quote("EURUSD", 1.20000, 1.20010)
        await c.set_quote("USDJPY.raw", 151.000, 151.010)
        quotes = t.quotes()
        await t.watch([Symbol.EURUSD, Symbol.USDJPY])
        first = {(q.symbol, q.bid, q.ask) for q in [await next_quote(quotes), await next_quote(quotes)]}
        assert first == {(Symbol.EURUSD, 1.20000, 1.20010), (Symbol.USDJPY, 151.000, 151.010)}
        await c.set_quote("EURUSD", 1.20000, 1.20010)  # unchanged
        await c.set_quote("XAUUSD", 2400.00, 2400.30)  # not watched
        await no_quote(quotes)
        await c.set_quote("EURUSD", 1.20001, 1.20011)
        q = await next_quote(quotes)
        assert (q.symbol, q.bid, q.ask, q.tradeable) == (Symbol.EURUSD, 1.20001, 1.20011, True)
        assert q.time <= time.monotonic()

    async def test_watch_replaces_the_watched_set(self, harness: Harness):
        t, c = harness.terminal, harness.control
        quotes = t.quotes()
        await t.watch([Symbol.EURUSD])
        assert (await next_quote(quotes)).symbol is Symbol.EURUSD
        await t.watch([Symbol.XAUUSD])
        assert (await next_quote(quotes)).symbol is Symbol.XAUUSD
        await c.set_quote("EURUSD", 1.30000, 1.30010)
        await no_quote(quotes)

    async def test_trading_disabled_shows_in_health_and_rejects_orders_permanently(self, harness: Harness):
        t = harness.terminal
        await harness.control.set_trade_allowed(False)
        await eventually(lambda: not t.health().trade_allowed)
        assert t.health().problems
        res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("t1"))
        assert isinstance(res, Rejected) and not res.retryable, res
        await harness.control.set_trade_allowed(True)
        await eventually(lambda: t.health().ok)

    async def test_a_lost_trade_server_connection_shows_in_health_and_orders_may_be_retried(
        self, harness: Harness
    ):
        t = harness.terminal
        await harness.control.set_connected(False)
        await eventually(lambda: t.health().connection is not Connection.CONNECTED)
        try:
            res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n1"))
        except RetryableError:
            pass
        else:
            assert isinstance(res, Rejected) and res.retryable, res
        await harness.control.set_connected(True)
        await eventually(lambda: t.health().ok)
        assert await t.find(tag("n1")) == []

    async def test_a_position_closed_by_the_broker_shows_as_closed_with_reason_and_no_close_magic(
        self, harness: Harness
    ):
        t = harness.terminal
        opened = await t.open_position(Symbol.XAUUSD, Side.SELL, 0.1, tag("s1"))
        assert isinstance(opened, Filled)
        await harness.control.broker_close(opened.ticket)
        await eventually(lambda: _no_positions(t))
        (rec,) = await t.find(tag("s1"))
        assert (rec.state, rec.close_magic, rec.close_reason) == (TradeState.CLOSED, None, "stop out")

    # -- the opt-in protective stop (protective_stop_pips): a broker-side stop-loss placed with the open --

    async def test_a_protective_stop_of_a_buy_closes_it_as_the_broker_does_when_the_bid_reaches_it(
        self, harness: Harness
    ):
        t, c = harness.terminal, harness.control
        await c.set_quote("EURUSD", 1.10000, 1.10012)
        distance = stop_distance(20, Symbol.EURUSD, SYMBOLS)  # 20 pips = 0.0020: the stop at 1.09812
        opened = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("ps1"), stop_distance=distance)
        assert isinstance(opened, Filled), opened
        await c.set_quote("EURUSD", 1.09813, 1.09825)  # one point above the stop: still open
        assert [p.ticket for p in await t.positions()] == [opened.ticket]
        await c.set_quote("EURUSD", 1.09790, 1.09802)  # the bid jumps through it
        await eventually(lambda: _no_positions(t))
        (rec,) = await t.find(tag("ps1"))
        assert (rec.ticket, rec.state, rec.close_magic, rec.close_reason) == (
            opened.ticket,
            TradeState.CLOSED,
            None,
            "stop loss",
        )
        assert rec.close_price == 1.09790  # the first price at or beyond the stop (a gap fills worse)
        assert await harness.control.duplicate_orders() == 0

    async def test_a_protective_stop_of_a_sell_closes_it_when_the_ask_reaches_it(self, harness: Harness):
        t, c = harness.terminal, harness.control
        await c.set_quote("USDJPY.raw", 150.000, 150.015)
        distance = stop_distance(30, Symbol.USDJPY, SYMBOLS)  # 30 pips = 0.30: above the bid, 150.300
        opened = await t.open_position(Symbol.USDJPY, Side.SELL, 0.1, tag("ps2"), stop_distance=distance)
        assert isinstance(opened, Filled), opened
        other = await t.open_position(Symbol.USDJPY, Side.SELL, 0.1, tag("ps2b"))  # no stop: stays
        assert isinstance(other, Filled), other
        await c.set_quote("USDJPY.raw", 150.285, 150.299)
        assert len(await t.positions()) == 2
        await c.set_quote("USDJPY.raw", 150.286, 150.300)  # the ask touches the stop
        await eventually(lambda: _only(t, other.ticket))
        (rec,) = await t.find(tag("ps2"))
        assert (rec.state, rec.close_magic, rec.close_reason, rec.close_price) == (
            TradeState.CLOSED,
            None,
            "stop loss",
            150.300,
        )

    async def test_a_protective_stop_inside_the_brokers_stops_level_is_refused_naming_the_setting(
        self, harness: Harness
    ):
        t, c = harness.terminal, harness.control
        await c.set_quote("EURUSD", 1.10000, 1.10012)
        # 1.5 pips from the ask is 3 points from the bid: the broker's minimum is 10 points
        distance = stop_distance(1.5, Symbol.EURUSD, SYMBOLS)
        res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("ps3"), stop_distance=distance)
        assert isinstance(res, Rejected) and not res.retryable, res
        assert res.code in (rc.INVALID_STOPS, 130), res  # MT5 10016 / MT4 ERR_INVALID_STOPS
        assert "protective_stop_pips" in res.reason
        assert await t.find(tag("ps3")) == [] and await t.positions() == []


async def _only(t: Terminal, ticket: str) -> bool:
    return [p.ticket for p in await t.positions()] == [ticket]


async def _no_positions(t: Terminal) -> bool:
    return await t.positions() == []
