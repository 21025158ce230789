"""The quote buffer behind Terminal.quotes(): changes only, latest per symbol, cancellation-safe."""

from __future__ import annotations

import asyncio

import pytest

from hedge_agent.domain.enums import Symbol
from hedge_agent.terminals.base import TerminalQuote
from hedge_agent.terminals.quotes import QuoteChannel


def q(symbol: Symbol, bid: float, ask: float, tradeable: bool = True) -> TerminalQuote:
    return TerminalQuote(symbol, bid, ask, 0.0, tradeable)


async def drain(ch: QuoteChannel) -> list[TerminalQuote]:
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(ch.next(), 0.01))
        except TimeoutError:
            return out


async def test_an_unchanged_quote_is_dropped_and_a_change_in_tradeability_is_not():
    ch = QuoteChannel()
    assert ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    assert not ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    assert ch.publish(q(Symbol.EURUSD, 1.1, 1.2, tradeable=False))
    assert [x.tradeable for x in await drain(ch)] == [False]


async def test_a_slow_consumer_gets_the_latest_quote_of_each_symbol_in_order_of_change():
    ch = QuoteChannel()
    ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    ch.publish(q(Symbol.USDJPY, 150.0, 150.1))
    ch.publish(q(Symbol.EURUSD, 1.3, 1.4))
    got = await drain(ch)
    assert [(x.symbol, x.bid) for x in got] == [(Symbol.USDJPY, 150.0), (Symbol.EURUSD, 1.3)]
    assert ch.conflated == 1


async def test_a_consumer_cancelled_while_waiting_can_go_on_reading():
    ch = QuoteChannel()
    stream = ch.stream()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.01)
    ch.publish(q(Symbol.XAUUSD, 2000.0, 2000.3))
    assert (await asyncio.wait_for(anext(stream), 1)).symbol is Symbol.XAUUSD


async def test_closing_ends_the_stream_after_what_was_pending():
    ch = QuoteChannel()
    ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    ch.close()
    assert [x.symbol async for x in ch.stream()] == [Symbol.EURUSD]


async def test_forgotten_or_unwatched_symbols_pass_again_and_their_pending_quotes_go():
    ch = QuoteChannel()
    ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    ch.publish(q(Symbol.USDJPY, 150.0, 150.1))
    ch.retain([Symbol.USDJPY])
    assert [x.symbol for x in await drain(ch)] == [Symbol.USDJPY]
    assert ch.publish(q(Symbol.EURUSD, 1.1, 1.2))
    ch.forget()
    assert ch.publish(q(Symbol.USDJPY, 150.0, 150.1))
