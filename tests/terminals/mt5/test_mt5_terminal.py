"""MT5-specific behaviour of the worker-process adapter, against the fake MetaTrader5 package."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.errors import ConfigError, RetryableError
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import Connection, Filled, Rejected, Unknown
from tests.terminals.contract import LOGIN, eventually, next_quote, tag

from .conftest import PASSWORD, FakeMt5Control, MakeTerminal


async def test_a_terminal_logged_in_to_another_account_is_refused_with_both_logins_named(
    make_terminal: MakeTerminal,
):
    terminal = make_terminal(fake={"login": 777, "ignore_login": True})
    with pytest.raises(ConfigError, match=rf"logged in to account 777, not the configured {LOGIN}"):
        await terminal.connect()
    assert terminal.health().connection is Connection.DISCONNECTED
    assert "777" in terminal.health().detail


async def test_initialize_refusing_the_login_is_a_config_error(make_terminal: MakeTerminal):
    with pytest.raises(ConfigError, match="Authorization failed"):
        await make_terminal(fake={"login": 777}).connect()


async def test_a_wrong_password_is_a_config_error_that_never_shows_the_password(
    make_terminal: MakeTerminal, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    terminal = make_terminal(password="wrong-password-123")
    with pytest.raises(ConfigError, match="Authorization failed") as raised:
        await terminal.connect()
    assert "wrong-password-123" not in str(raised.value) + caplog.text + repr(terminal._config)
    assert PASSWORD not in caplog.text


async def test_a_netting_account_is_refused(make_terminal: MakeTerminal):
    with pytest.raises(ConfigError, match="not a hedging account"):
        await make_terminal(fake={"hedging": False}).connect()


async def test_order_send_returning_none_after_filling_is_resolved_by_tag_into_the_fill(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="none", filled=True)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n1"))
    assert isinstance(res, Filled), res
    assert [p.ticket for p in await terminal.positions()] == [res.ticket]
    assert control.broker().duplicate_orders() == 0


async def test_order_send_returning_none_without_filling_stays_unknown_and_nothing_is_open(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal(resolve_attempts=2, resolve_delay=0.05)
    await terminal.connect()
    control.command(op="fault", kind="none", filled=False)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n2"))
    assert isinstance(res, Unknown) and "None" in res.reason, res
    assert await terminal.positions() == []


async def test_a_retcode_10012_that_filled_is_resolved_into_the_fill(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="timeout")
    res = await terminal.open_position(Symbol.XAUUSD, Side.SELL, 0.1, tag("n3"))
    assert isinstance(res, Filled), res
    assert control.broker().order_log[-1].code == rc.TIMEOUT


async def test_a_hung_order_send_is_unknown_then_the_worker_is_restarted_and_the_fill_found(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal(order_timeout=0.5)
    await terminal.connect()
    control.command(op="fault", kind="hang", seconds=30, filled=True)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("h1"))
    assert isinstance(res, Filled), res
    assert terminal.restarts == 1
    await eventually(lambda: terminal.health().ok)
    assert len(await terminal.find(tag("h1"))) == 1
    assert control.broker().duplicate_orders() == 0


async def test_a_crashed_worker_is_restarted_and_health_shows_the_gap(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal(restart_backoff=(0.3, 0.3))
    await terminal.connect()
    control.command(op="fault", kind="crash")
    await eventually(lambda: terminal.health().connection is not Connection.CONNECTED)
    assert not terminal.health().ok and terminal.health().problems
    with pytest.raises(RetryableError, match="not connected"):
        await terminal.account_info()
    await eventually(lambda: terminal.health().ok, timeout=10)
    assert terminal.restarts == 1
    assert (await terminal.account_info()).login == LOGIN


async def test_when_the_terminal_goes_away_the_worker_is_restarted_until_it_is_back(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="set", key="terminal_alive", value=False)
    await eventually(lambda: terminal.health().connection is Connection.CONNECTING)
    await eventually(lambda: "not found" in terminal.health().detail, timeout=10)
    control.command(op="set", key="terminal_alive", value=True)
    await eventually(lambda: terminal.health().ok, timeout=10)


async def test_an_unsupported_filling_mode_falls_back_on_the_next_allowed_one(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="invalid_fill")
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("f1"))
    assert isinstance(res, Filled), res
    assert [e.executed for e in control.broker().order_log] == [True]


async def test_only_the_filling_modes_the_symbol_allows_are_used(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal(fake={"filling_mask": {"EURUSD": 2}})  # IOC only
    await terminal.connect()
    assert isinstance(await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("f2")), Filled)
    control.command(op="set", key="filling_mask", symbol="EURUSD", value=0)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("f3"))
    # IOC and then RETURN are tried, and both refused: a permanent rejection, not a loop
    assert isinstance(res, Rejected) and res.code == rc.INVALID_FILL and not res.retryable, res


async def test_account_trading_disabled_shows_in_health_and_rejects_with_10017(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="set", key="account_trade_allowed", value=False)
    await eventually(lambda: "trading is disabled for this account" in terminal.health().problems)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("t1"))
    assert isinstance(res, Rejected) and res.code == rc.TRADE_DISABLED and not res.retryable, res
    assert (await terminal.account_info()).trade_allowed is False


async def test_algo_trading_off_rejects_with_10027_and_says_so_in_health(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="set", key="algo_trading", value=False)
    await eventually(lambda: "Algo Trading is switched off in the terminal" in terminal.health().problems)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("t2"))
    assert isinstance(res, Rejected) and res.code == rc.CLIENT_DISABLES_AT, res
    assert "Algo Trading off" in res.reason


async def test_times_on_the_servers_clock_are_reported_in_utc(make_terminal: MakeTerminal):
    terminal = make_terminal(fake={"server_time_offset": 3 * 3600})
    await terminal.connect()
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("z1"))
    assert isinstance(res, Filled)
    assert abs(res.time - datetime.now(UTC)) < timedelta(seconds=30)
    (rec,) = await terminal.find(tag("z1"))
    assert rec.open_time == res.time


async def test_a_symbol_the_terminal_does_not_have_is_a_health_problem_not_a_failure(
    make_terminal: MakeTerminal,
):
    terminal = make_terminal(fake={"symbols": {"XAUUSD": "GOLD"}})  # the agent asks for XAUUSD, USDJPY.raw
    await terminal.connect()
    problems = terminal.health().problems
    assert any("USDJPY.raw" in p for p in problems) and any("XAUUSD" in p for p in problems)
    assert isinstance(await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("m1")), Filled)
    res = await terminal.open_position(Symbol.XAUUSD, Side.BUY, 0.1, tag("m2"))
    assert isinstance(res, Rejected) and res.retryable, res


async def test_quotes_keep_flowing_from_a_moving_market_and_each_differs_from_the_last(
    make_terminal: MakeTerminal,
):
    terminal = make_terminal(fake={"ticks_per_second": 200, "seed": 5})
    await terminal.connect()
    quotes = terminal.quotes()
    await terminal.watch([Symbol.EURUSD, Symbol.USDJPY])
    last: dict[Symbol, tuple[float, float]] = {}
    for _ in range(40):
        q = await next_quote(quotes)
        assert last.get(q.symbol) != (q.bid, q.ask)
        last[q.symbol] = (q.bid, q.ask)
    assert set(last) == {Symbol.EURUSD, Symbol.USDJPY}


async def test_without_the_metatrader5_package_connect_fails_with_a_clear_fatal_error(
    make_terminal: MakeTerminal,
):
    terminal = make_terminal(extra_sys_path=[])
    with pytest.raises(ConfigError, match="MetaTrader5 package is not available"):
        await terminal.connect()
