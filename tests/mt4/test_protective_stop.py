"""The protective stop through the MT4 bridge: the adapter prices ``sl`` from the EA's last tick of the
symbol (streaming it for that if nobody watches it), the EA emulator passes it to its broker as OrderSend
would, and the broker's answers come back as the agent expects."""

from __future__ import annotations

import asyncio

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.terminals.base import Filled, Rejected
from hedge_agent.terminals.simulated import SimBroker, default_symbols

from .conftest import Rig
from .test_orders import tag


async def test_the_stop_is_priced_from_the_eas_tick_of_an_unwatched_symbol_and_placed_with_the_order(
    rig: Rig,
):
    t, _ = await rig.linked()
    quotes = t.quotes()
    await t.watch([Symbol.EURUSD])
    rig.broker.set_quote("USDJPY.raw", 150.100, 150.115)
    opened = await t.open_position(Symbol.USDJPY, Side.BUY, 0.1, tag("m1"), stop_distance=0.25)
    assert isinstance(opened, Filled), opened
    (pos,) = rig.broker.positions()
    assert pos.sl == 149.865  # the ask 150.115 - 25 pips
    # streamed for the stop only: the consumer, who watches EURUSD, never sees a USDJPY quote
    first = await asyncio.wait_for(anext(quotes), 3)
    assert first.symbol is Symbol.EURUSD
    rig.broker.set_quote("USDJPY.raw", 150.200, 150.215)
    rig.broker.set_quote("EURUSD", 1.2, 1.20012)
    assert (await asyncio.wait_for(anext(quotes), 3)).symbol is Symbol.EURUSD


async def test_without_a_price_from_the_ea_the_open_is_a_retryable_rejection_naming_the_setting(rig: Rig):
    only_eurusd = SimBroker(symbols=[s for s in default_symbols() if s.name == "EURUSD"], seed=1)
    t = await rig.bridge()
    t._stop_quote_wait_s = 0.2
    ea = rig.ea(t.port, broker=only_eurusd)
    await ea.start()
    await ea.wait_welcomed()
    res = await t.open_position(Symbol.XAUUSD, Side.SELL, 0.1, tag("m2"), stop_distance=5.0)
    assert isinstance(res, Rejected) and res.retryable and res.code == 136, res
    assert "protective_stop_pips" in res.reason and "XAUUSD" in res.reason
    assert only_eurusd.order_log == []


async def test_an_open_without_a_stop_sends_no_sl(rig: Rig):
    t, _ = await rig.linked()
    assert isinstance(await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("m3")), Filled)
    assert isinstance(await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("m4"), stop_distance=0), Filled)
    assert [p.sl for p in rig.broker.positions()] == [0.0, 0.0]
