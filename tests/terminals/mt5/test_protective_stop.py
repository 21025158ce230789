"""The protective stop on MT5: the fake honours ``sl`` as the documentation says (mt5ordersend_py,
SYMBOL_TRADE_STOPS_LEVEL of mt5symbolinfo_py, DEAL_REASON_SL), and the worker prices it from the tick it
sends the order at, refuses it before sending when the stops level would, and reports its hit as a broker
close."""

from __future__ import annotations

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.terminals.base import Rejected
from tests.terminals.contract import tag

from .conftest import FakeMt5Control, MakeTerminal


async def test_the_terminal_turns_it_into_a_permanent_rejection_naming_the_setting_and_the_minimum(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    await control.set_quote("EURUSD", 1.10000, 1.10012)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("pm1"), stop_distance=0.00015)
    assert isinstance(res, Rejected) and not res.retryable and res.code == 10016, res
    assert "protective_stop_pips" in res.reason and "is 10 points" in res.reason
    assert control.broker().order_log == []
