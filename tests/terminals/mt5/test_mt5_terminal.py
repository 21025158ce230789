"""MT5-specific behaviour of the worker-process adapter, against the fake MetaTrader5 package."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind
from hedge_agent.errors import ConfigError, RetryableError
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import Connection, Filled, Rejected, Unknown
from hedge_agent.terminals.mt5 import Mt5Terminal
from hedge_agent.terminals.mt5.servertime import ServerClock, store_key
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


async def test_order_send_none_that_may_have_left_is_unknown_and_the_tag_lookup_finds_the_fill(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """last_error -10005 (IPC timeout) may hide an executed order: Unknown, and the adapter does not look the
    tag up itself (the engine does, once); find(tag) then shows the one fill."""
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="none", filled=True, code=-10005)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n1"))
    assert isinstance(res, Unknown) and res.code == -10005, res
    (rec,) = await terminal.find(tag("n1"))
    assert [p.ticket for p in await terminal.positions()] == [rec.ticket]
    assert control.broker().duplicate_orders() == 0


@pytest.mark.parametrize("code", [-10001, -10003, -10004])
async def test_order_send_none_that_never_left_the_terminal_is_a_retryable_rejection(
    make_terminal: MakeTerminal, control: FakeMt5Control, code: int
):
    """Issue 12 point 4: these were "outcome unknown" (the engine then waited 60 s per intent)."""
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="none", filled=False, code=code)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n2"))
    assert isinstance(res, Rejected) and res.retryable and res.code == code, res
    assert await terminal.positions() == []


async def test_order_send_none_with_invalid_arguments_is_a_permanent_rejection(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="none", filled=False, code=-2)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("n3"))
    assert isinstance(res, Rejected) and not res.retryable and res.code == -2, res


async def test_python_api_trading_disabled_is_permanent_and_health_says_how_to_fix_it(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 4: -8 left health "ok"."""
    terminal = make_terminal()
    await terminal.connect()
    await eventually(lambda: terminal.health().ok)
    control.command(op="set", key="tradeapi_disabled", value=True)
    await eventually(lambda: not terminal.health().ok)
    assert any("external Python API" in p for p in terminal.health().problems)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("a1"))
    assert isinstance(res, Rejected) and not res.retryable and res.code == -8, res
    assert "Disable algorithmic trading via external Python API" in res.reason
    control.command(op="set", key="tradeapi_disabled", value=False)
    await eventually(lambda: terminal.health().ok)


async def test_a_retcode_10012_is_unknown_and_the_fill_is_then_found_by_tag(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="fault", kind="timeout")
    res = await terminal.open_position(Symbol.XAUUSD, Side.SELL, 0.1, tag("n4"))
    assert isinstance(res, Unknown) and res.code == rc.TIMEOUT, res
    assert len(await terminal.find(tag("n4"))) == 1
    assert control.broker().order_log[-1].code == rc.TIMEOUT


async def test_a_hung_order_send_is_unknown_then_the_worker_is_restarted_and_the_fill_found(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal(order_timeout=0.5)
    await terminal.connect()
    control.command(op="fault", kind="hang", seconds=30, filled=True)
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("h1"))
    assert isinstance(res, Unknown), res
    await eventually(lambda: terminal.health().ok, timeout=15)
    assert terminal.restarts == 1
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
    await eventually(
        lambda: any("trading is disabled for this account" in p for p in terminal.health().problems)
    )
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("t1"))
    assert isinstance(res, Rejected) and res.code == rc.TRADE_DISABLED and not res.retryable, res
    assert (await terminal.account_info()).trade_allowed is False


async def test_algo_trading_off_rejects_with_10027_and_says_so_in_health(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    control.command(op="set", key="algo_trading", value=False)
    await eventually(lambda: any("'Algo Trading' button" in p for p in terminal.health().problems))
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


async def test_a_symbol_the_broker_does_not_have_is_a_permanent_config_error_naming_symbol_map(
    make_terminal: MakeTerminal,
):
    """Issue 12 point 6: an unmapped broker symbol was a retryable 10021, retried for ever."""
    terminal = make_terminal(fake={"symbols": {"XAUUSD": "GOLD"}})  # the agent asks for XAUUSD, USDJPY.raw
    await terminal.connect()
    problems = terminal.health().problems
    assert any("USDJPY.raw" in p and "symbol_map" in p for p in problems)
    assert any("XAUUSD" in p for p in problems)
    assert isinstance(await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("m1")), Filled)
    res = await terminal.open_position(Symbol.XAUUSD, Side.BUY, 0.1, tag("m2"))
    assert isinstance(res, Rejected) and not res.retryable, res
    assert "XAUUSD" in res.reason and "symbol_map" in res.reason


async def test_a_watched_symbol_removed_from_market_watch_is_put_back_its_quotes_resume_and_health_warns(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 6: its quotes stopped silently."""
    terminal = make_terminal()
    await terminal.connect()
    quotes = terminal.quotes()
    await terminal.watch([Symbol.EURUSD])
    await next_quote(quotes)
    control.command(op="market_watch_remove", symbol="EURUSD")
    await control.set_quote("EURUSD", 1.25000, 1.25010)
    q = await next_quote(quotes, timeout=5)
    assert (q.symbol, q.bid) == (Symbol.EURUSD, 1.25)
    assert any("EURUSD" in p and "Market Watch" in p for p in terminal.health().problems)


async def test_the_tag_comment_sent_is_short_and_the_magic_is_the_key(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 7: the comment was always 29 characters (the fake, strict, takes at most 24)."""
    terminal = make_terminal()
    await terminal.connect()
    res = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("k1"))
    assert isinstance(res, Filled), res
    (pos,) = await terminal.positions()
    assert len(pos.comment) <= 16 and tag("k1").comment.startswith(pos.comment)
    assert pos.magic == tag("k1").magic


async def test_closing_after_a_partial_stop_out_closes_what_is_left(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 3: the close asked for the opened volume and got 10038; the rest stayed open."""
    terminal = make_terminal()
    await terminal.connect()
    opened = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.3, tag("v1"))
    assert isinstance(opened, Filled)
    control.command(op="broker_close", ticket=int(opened.ticket), volume=0.1)
    await eventually(lambda: _volume_is(terminal, 0.2))
    closed = await terminal.close_position(opened.ticket, 0.3, tag("v1", IntentKind.CLOSE))
    assert isinstance(closed, Filled) and closed.volume == pytest.approx(0.2), closed
    assert await terminal.positions() == []


async def _volume_is(terminal: Mt5Terminal, volume: float) -> bool:
    return [p.volume for p in await terminal.positions()] == [pytest.approx(volume)]


async def test_a_close_after_a_stop_out_during_an_ipc_drop_is_retryable_then_already_closed(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 5: history_deals_get's None (IPC) read as "no position": a permanent 10013."""
    terminal = make_terminal()
    await terminal.connect()
    opened = await terminal.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("i1"))
    assert isinstance(opened, Filled)
    await control.broker_close(opened.ticket)
    await eventually(lambda: _volume_is_none(terminal))
    control.command(op="fault", kind="ipc", fn="history_deals_get", code=-10004)
    first = await terminal.close_position(opened.ticket, 0.1, tag("i1", IntentKind.CLOSE))
    assert isinstance(first, Rejected) and first.retryable, first
    again = await terminal.close_position(opened.ticket, 0.1, tag("i1", IntentKind.CLOSE))
    assert isinstance(again, Rejected) and not again.retryable and again.code == rc.POSITION_CLOSED, again


async def _volume_is_none(terminal: Mt5Terminal) -> bool:
    return await terminal.positions() == []


class DictStore:
    """A MetaStore in memory (the app gives the journal's meta table)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.data.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self.data[key] = value


async def test_a_utc_plus_3_server_across_a_dst_switch_a_worker_crash_and_an_agent_restart(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """Issue 12 point 2: the offset started at 0 in every new worker; after a restart a found fill was
    stamped 3 h in the future, and one DST switch moved every older time by an hour."""
    store = DictStore()
    hour = 3600.0
    terminal = make_terminal(fake={"server_time_offset": 2 * hour}, meta_store=store)  # winter: UTC+2
    await terminal.connect()
    winter = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("w1"))
    assert isinstance(winter, Filled) and abs(winter.time - datetime.now(UTC)) < timedelta(seconds=30)
    quotes = terminal.quotes()
    await terminal.watch([Symbol.EURUSD])
    await next_quote(quotes)
    control.command(op="set", key="server_time_offset", value=3 * hour)  # summer time: UTC+3
    bid = 1.3
    while terminal.server_utc_offset != 3 * hour:  # a moving price shows the new clock
        bid += 0.0001
        await control.set_quote("EURUSD", round(bid, 5), round(bid + 0.0001, 5))
        await next_quote(quotes)
    summer = await terminal.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("s1"))
    assert isinstance(summer, Filled) and abs(summer.time - datetime.now(UTC)) < timedelta(seconds=30)

    async def times(t: Mt5Terminal) -> dict[str, datetime]:
        return {name: (await t.find(tag(name)))[0].open_time for name in ("w1", "s1")}

    expected = {"w1": winter.time, "s1": summer.time}
    assert await times(terminal) == expected
    await eventually(lambda: ServerClock.loads(store.data.get(store_key("mt5-1"))).current == 3 * hour)
    control.command(op="fault", kind="crash")  # the worker dies; its successor knows the clock
    await eventually(lambda: terminal.restarts == 1 and terminal.health().ok, timeout=15)
    assert await times(terminal) == expected
    await terminal.shutdown()
    again = make_terminal(fake={"server_time_offset": 2 * hour}, meta_store=store)  # the agent restarted
    await again.connect()
    assert again.server_utc_offset in (None, 3 * hour)
    assert await times(again) == expected


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


async def test_a_terminal_cut_off_from_the_trade_server_is_not_ok_and_health_says_what_to_check(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    terminal = make_terminal()
    await terminal.connect()
    await control.set_connected(False)
    await eventually(lambda: not terminal.health().ok)
    assert any("no connection to the trade server" in p for p in terminal.health().problems)
    await control.set_connected(True)
    await eventually(lambda: terminal.health().ok)


async def test_a_utc_plus_3_server_switching_back_to_utc_plus_2_after_a_worker_crash(
    make_terminal: MakeTerminal, control: FakeMt5Control
):
    """The October switch: a UTC+3 server repeats an hour as UTC+2. A position opened minutes before it
    keeps its time through a worker crash, the switch and an agent restart."""
    store = DictStore()
    hour = 3600.0
    terminal = make_terminal(fake={"server_time_offset": 3 * hour}, meta_store=store)
    await terminal.connect()
    summer = await terminal.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("o1"))
    assert isinstance(summer, Filled) and abs(summer.time - datetime.now(UTC)) < timedelta(seconds=30)
    await eventually(lambda: ServerClock.loads(store.data.get(store_key("mt5-1"))).known)
    control.command(op="fault", kind="crash")
    await eventually(lambda: terminal.restarts == 1 and terminal.health().ok, timeout=15)
    assert (await terminal.find(tag("o1")))[0].open_time == summer.time
    control.command(op="set", key="server_time_offset", value=2 * hour)
    winter = await terminal.open_position(Symbol.EURUSD, Side.SELL, 0.1, tag("o2"))
    assert isinstance(winter, Filled) and abs(winter.time - datetime.now(UTC)) < timedelta(seconds=30)
    await eventually(lambda: terminal.server_utc_offset == 2 * hour)
    await eventually(lambda: ServerClock.loads(store.data.get(store_key("mt5-1"))).current == 2 * hour)
    await terminal.shutdown()
    again = make_terminal(fake={"server_time_offset": 3 * hour}, meta_store=store)
    await again.connect()
    found = {name: (await again.find(tag(name)))[0].open_time for name in ("o1", "o2")}
    assert found == {"o1": summer.time, "o2": winter.time}
