"""The fake MetaTrader5 package behaves as the documentation says (mql5.com, Python Integration), and the
worker's MT5 logic works over it in-process (each test loads a fresh copy of the fake under a private name:
the agent's process never gets a module called MetaTrader5)."""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hedge_agent.terminals.mt5.protocol import (
    CloseReq,
    FindReq,
    NotSent,
    OpenReq,
    OrderCode,
    OrderFilled,
    OrderNone,
    PositionsReq,
    SymbolMissing,
    WatchReq,
    WorkerConfig,
)
from hedge_agent.terminals.mt5.worker import StartFailure, Worker

from .conftest import FAKES

LOGIN = 5_000_001
HOUR = 3600.0


@pytest.fixture
def load_fake(monkeypatch: pytest.MonkeyPatch):
    count = 0

    def load(**scenario: Any) -> Any:
        nonlocal count
        count += 1
        monkeypatch.setenv(
            "HEDGE_FAKE_MT5_SCENARIO", json.dumps({"login": LOGIN, "password": "pw"} | scenario)
        )
        spec = importlib.util.spec_from_file_location(
            f"fake_mt5_{count}", Path(FAKES) / "MetaTrader5" / "__init__.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def control(mt5: ModuleType, **cmd: Any) -> None:
    """A control command of the fake (the same ones a test appends to its control file)."""
    mt5._T.apply(cmd)


def request(mt5: ModuleType, **overrides: Any) -> dict[str, Any]:
    assert mt5.symbol_select("EURUSD", True)
    tick = mt5.symbol_info_tick("EURUSD")
    return {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": mt5.ORDER_TYPE_BUY,
        "price": tick.ask,
        "deviation": 10,
        "magic": 42,
        "comment": "ha:test",
        "type_time": mt5.ORDER_TIME_GTC,
        "type_filling": mt5.ORDER_FILLING_FOK,
    } | overrides


# -- the fake, against the documentation ----------------------------------------------------------------------


def test_calls_before_initialize_return_none_and_last_error_says_no_ipc(load_fake):
    mt5 = load_fake()
    assert mt5.account_info() is None
    assert mt5.last_error() == (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")


def test_results_are_named_tuples_and_each_history_filter_means_what_the_docs_say(load_fake):
    """history_deals_get(ticket=) is an ORDER ticket (DEAL_ORDER), position= a DEAL_POSITION_ID;
    positions_get(ticket=) a position ticket (mt5historydealsget_py, mt5positionsget_py)."""
    mt5 = load_fake()
    assert mt5.initialize(login=LOGIN, password="pw")
    res = mt5.order_send(request(mt5))
    assert res.retcode == mt5.TRADE_RETCODE_DONE
    assert res._asdict()["request"].magic == 42
    (pos,) = mt5.positions_get()
    assert pos._fields[:3] == ("ticket", "time", "time_msc") and pos.identifier == pos.ticket
    assert mt5.positions_get(ticket=pos.ticket) == (pos,)
    assert mt5.positions_total() == 1
    (deal,) = mt5.history_deals_get(ticket=res.order)
    assert (deal.ticket, deal.order, deal.position_id, deal.entry, deal.reason) == (
        res.deal,
        res.order,
        pos.ticket,
        mt5.DEAL_ENTRY_IN,
        mt5.DEAL_REASON_EXPERT,
    )
    assert mt5.history_deals_get(ticket=res.deal) == ()  # a deal number is not an order ticket
    assert mt5.history_deals_get(position=pos.ticket) == (deal,)
    (order,) = mt5.history_orders_get(ticket=res.order)
    assert order.state == mt5.ORDER_STATE_FILLED and mt5.history_orders_get(position=pos.ticket) == (order,)


def test_a_comment_longer_than_the_strict_limit_makes_order_send_return_none_with_invalid_params(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    assert mt5.order_send(request(mt5, comment="x" * (mt5.COMMENT_LIMIT + 1))) is None
    assert mt5.last_error() == (mt5.RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
    assert mt5.positions_get() == ()


def test_a_filling_mode_outside_the_symbols_mask_is_refused_with_10030(load_fake):
    mt5 = load_fake(filling_mask={"EURUSD": 2})  # SYMBOL_FILLING_IOC only
    mt5.initialize()
    assert mt5.symbol_info("EURUSD").filling_mode == 2
    assert mt5.order_send(request(mt5)).retcode == mt5.TRADE_RETCODE_INVALID_FILL
    assert mt5.order_send(request(mt5, type_filling=mt5.ORDER_FILLING_IOC)).retcode == mt5.TRADE_RETCODE_DONE


def test_history_needs_a_date_range_or_a_ticket_or_a_position(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    assert mt5.history_deals_get() is None
    assert mt5.last_error()[0] == mt5.RES_E_INVALID_PARAMS


def test_a_netting_account_reports_its_margin_mode(load_fake):
    mt5 = load_fake(hedging=False)
    mt5.initialize()
    assert mt5.account_info().margin_mode == mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING


def test_market_watch_selection_decides_whether_a_symbol_has_ticks(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    assert mt5.symbol_info("EURUSD").select is False and mt5.symbol_info_tick("EURUSD") is None
    assert mt5.symbol_select("EURUSD", True) and mt5.symbol_info("EURUSD").select is True
    assert mt5.symbol_info_tick("EURUSD").bid > 0
    control(mt5, op="market_watch_remove", symbol="EURUSD")
    assert mt5.symbol_info_tick("EURUSD") is None
    assert mt5.symbol_info("NOPE") is None and mt5.symbol_select("NOPE", True) is False


def test_every_time_is_on_the_server_clock_and_a_deal_keeps_the_time_it_was_made_at(load_fake):
    mt5 = load_fake(server_time_offset=2 * HOUR)
    mt5.initialize()
    res = mt5.order_send(request(mt5))
    now = time.time()
    (deal,) = mt5.history_deals_get(ticket=res.order)
    assert abs(deal.time_msc / 1000 - (now + 2 * HOUR)) < 5
    control(mt5, op="set", key="server_time_offset", value=3 * HOUR)  # DST: one hour forward
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.2, ask=1.2001)
    assert abs(mt5.symbol_info_tick("EURUSD").time - (time.time() + 3 * HOUR)) < 5
    assert mt5.history_deals_get(ticket=res.order) == (deal,)


def test_an_ipc_fault_makes_one_function_return_none_with_its_last_error(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    control(mt5, op="fault", kind="ipc", fn="positions_get", code=mt5.RES_E_INTERNAL_FAIL_SEND)
    assert mt5.positions_get() is None
    assert mt5.last_error()[0] == mt5.RES_E_INTERNAL_FAIL_SEND
    assert mt5.positions_get() == ()


def test_python_api_trading_disabled_shows_in_terminal_info_and_order_send_gives_minus_8(load_fake):
    mt5 = load_fake(tradeapi_disabled=True)
    mt5.initialize()
    assert mt5.terminal_info().tradeapi_disabled is True
    assert mt5.order_send(request(mt5)) is None
    assert mt5.last_error()[0] == mt5.RES_E_AUTO_TRADING_DISABLED


# -- the worker over the fake ---------------------------------------------------------------------------------


def worker_config(**kw: Any) -> WorkerConfig:
    base: dict[str, Any] = {"name": "t", "login": LOGIN, "server": None, "path": None, "password": "pw"}
    defaults = {"symbols": ("EURUSD", "GBPUSD"), "deal_wait": 0.05}
    return WorkerConfig(**(base | defaults | kw))


def started(mt5: ModuleType, **kw: Any) -> Worker:
    worker = Worker(mt5, worker_config(**kw))
    worker.start()
    return worker


def open_req(magic: int, volume: float = 0.1, side: str = "BUY", symbol: str = "EURUSD") -> OpenReq:
    return OpenReq(symbol=symbol, side=side, volume=volume, magic=magic, comment=f"c{magic}")


def test_the_worker_starts_selects_symbols_and_reports_the_missing_ones(load_fake):
    mt5 = load_fake()
    info = Worker(mt5, worker_config()).start()
    assert info.login == LOGIN and info.missing_symbols == ("GBPUSD",)


def test_a_worker_refuses_a_wrong_path_as_retryable_and_bad_credentials_as_fatal(load_fake):
    mt5 = load_fake(path="C:/MT5/terminal64.exe")
    with pytest.raises(StartFailure) as wrong_path:
        Worker(mt5, worker_config(path="C:/Other/terminal64.exe")).start()
    assert not wrong_path.value.fatal and "C:/Other/terminal64.exe" in str(wrong_path.value)
    with pytest.raises(StartFailure) as bad_password:
        Worker(mt5, worker_config(password="nope")).start()
    assert bad_password.value.fatal and "nope" not in str(bad_password.value)


def test_the_fill_is_looked_up_by_order_ticket_never_by_a_deal_number_that_is_another_order(load_fake):
    """Issue 12 point 1: deal numbers collide with order tickets here (deal of B == order of A). Looking the
    deal up with history_deals_get(ticket=<deal>) reported position A for order B."""
    mt5 = load_fake(deal_ticket_start=99_999_999)
    worker = started(mt5)
    a = worker.open(open_req(1))
    b = worker.open(open_req(2, side="SELL"))
    assert isinstance(a, OrderFilled) and isinstance(b, OrderFilled), (a, b)
    tickets = {p.magic: p.ticket for p in worker.positions(PositionsReq()).positions}
    assert (a.ticket, b.ticket) == (tickets[1], tickets[2]) and a.ticket != b.ticket


def test_the_server_clock_offset_is_learnt_from_our_own_fill_and_every_time_is_utc(load_fake):
    mt5 = load_fake(server_time_offset=3 * HOUR)
    worker = started(mt5)
    out = worker.open(open_req(7))
    assert isinstance(out, OrderFilled) and worker.server_clock.current == 3 * HOUR
    assert abs(out.time - time.time()) < 5
    (trade,) = worker.find(FindReq(7)).trades
    (pos,) = worker.positions(PositionsReq()).positions
    assert trade.open_time == pos.open_time == out.time


def test_a_restarted_worker_converts_history_with_the_persisted_clock_before_any_tick(
    load_fake, tmp_path: Path
):
    """Issue 12 point 2: a new worker started at offset 0 and stamped a found fill 3 h in the future."""
    mt5 = load_fake(server_time_offset=3 * HOUR, state_path=str(tmp_path / "state.pkl"))
    first = started(mt5)
    opened = first.open(open_req(7))
    assert isinstance(opened, OrderFilled)
    again = started(mt5, server_clock=first.server_clock.dumps())
    (trade,) = again.find(FindReq(7)).trades
    assert trade.open_time == opened.time


def test_a_dst_switch_is_learnt_and_older_deals_keep_their_own_offset(load_fake, tmp_path: Path):
    mt5 = load_fake(server_time_offset=2 * HOUR, state_path=str(tmp_path / "state.pkl"))
    worker = started(mt5)
    worker.watch(WatchReq(("EURUSD",)))
    before = worker.open(open_req(1))
    assert isinstance(before, OrderFilled) and worker.server_clock.current == 2 * HOUR
    control(mt5, op="set", key="server_time_offset", value=3 * HOUR)
    worker.poll_quotes()
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.2, ask=1.2001)
    assert worker.poll_quotes() and worker.server_clock.current == 3 * HOUR
    after = worker.open(open_req(2))
    assert isinstance(after, OrderFilled) and abs(after.time - time.time()) < 5
    restarted = started(mt5, server_clock=worker.server_clock.dumps())
    times = {t.magic: t.open_time for m in (1, 2) for t in restarted.find(FindReq(m)).trades}
    assert times == {1: before.time, 2: after.time}


def test_a_configured_offset_wins_and_a_disagreeing_clock_is_reported(load_fake):
    mt5 = load_fake(server_time_offset=3 * HOUR)
    worker = started(mt5, server_time_offset=2 * HOUR)
    out = worker.open(open_req(7))
    assert isinstance(out, OrderFilled) and worker.server_clock.current == 2 * HOUR
    status = worker.status()
    assert status is not None and status.clock_mismatch == 3 * HOUR


def test_close_sends_the_positions_current_volume_after_a_partial_stop_out(load_fake):
    """Issue 12 point 3: the caller's 0.3 was sent after the broker closed 0.1; the server refused (10038)."""
    mt5 = load_fake()
    worker = started(mt5)
    opened = worker.open(open_req(7, volume=0.3))
    assert isinstance(opened, OrderFilled)
    control(mt5, op="broker_close", ticket=opened.ticket, volume=0.1)
    closed = worker.close(CloseReq(opened.ticket, 0.3, 8, "close"))
    assert isinstance(closed, OrderFilled) and closed.volume == pytest.approx(0.2), closed
    assert worker.positions(PositionsReq()).positions == ()


@pytest.mark.parametrize(
    "code", [-2, -8, -10001, -10004, -10005, -10002, -1, 1], ids=lambda c: f"last_error{c}"
)
def test_order_send_none_reports_last_errors_code(load_fake, code: int):
    mt5 = load_fake()
    worker = started(mt5)
    control(mt5, op="fault", kind="none", filled=False, code=code)
    out = worker.open(open_req(7))
    assert isinstance(out, OrderNone) and out.error == code, out


def test_a_close_after_a_stop_out_during_an_ipc_drop_is_not_sent_not_no_position(load_fake):
    """Issue 12 point 5: history_deals_get returned None (IPC) and the close became a permanent 10013."""
    mt5 = load_fake()
    worker = started(mt5)
    opened = worker.open(open_req(7))
    assert isinstance(opened, OrderFilled)
    control(mt5, op="broker_close", ticket=opened.ticket)
    control(mt5, op="fault", kind="ipc", fn="history_deals_get", code=-10004)
    out = worker.close(CloseReq(opened.ticket, 0.1, 8, "close"))
    assert isinstance(out, NotSent) and out.error == -10004, out
    assert worker.close(CloseReq(opened.ticket, 0.1, 8, "close")) == OrderCode(
        10036, f"position {opened.ticket} is already closed"
    )


def test_a_positions_read_failing_over_ipc_is_not_no_position(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    opened = worker.open(open_req(7))
    assert isinstance(opened, OrderFilled)
    control(mt5, op="fault", kind="ipc", fn="positions_get", code=-10001)
    assert isinstance(worker.close(CloseReq(opened.ticket, 0.1, 8, "close")), NotSent)


def test_a_symbol_the_broker_does_not_have_is_symbol_missing_not_off_quotes(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    out = worker.open(open_req(7, symbol="GOLD"))
    assert isinstance(out, SymbolMissing) and out.symbol == "GOLD", out


def test_a_watched_symbol_removed_from_market_watch_is_put_back_and_reported(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    worker.watch(WatchReq(("EURUSD",)))
    assert worker.poll_quotes()
    control(mt5, op="market_watch_remove", symbol="EURUSD")
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.3, ask=1.3001)
    assert worker.poll_quotes() == ()
    status = worker.status()
    assert status is not None and status.reselected == ("EURUSD",) and status.unavailable == ()
    assert [q.bid for q in worker.poll_quotes()] == [1.3]


def test_find_reports_an_open_position_and_then_its_close_with_the_close_magic(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    opened = worker.open(open_req(7, volume=0.2, side="SELL"))
    assert isinstance(opened, OrderFilled)
    (rec,) = worker.find(FindReq(7)).trades
    assert (rec.ticket, rec.closed, rec.side, rec.volume) == (opened.ticket, False, "SELL", 0.2)
    closed = worker.close(CloseReq(opened.ticket, 0.2, 8, "close"))
    assert isinstance(closed, OrderFilled) and closed.ticket == opened.ticket
    (by_close,) = worker.find(FindReq(8)).trades
    assert by_close == worker.find(FindReq(7)).trades[0]
    assert (by_close.closed, by_close.close_magic, by_close.close_reason) == (True, 8, "closed by expert")


def test_a_minus_8_refusal_marks_the_status_until_an_order_goes_through(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    control(mt5, op="fault", kind="none", filled=False, code=-8)
    assert isinstance(worker.open(open_req(7)), OrderNone)
    status = worker.status()
    assert status is not None and status.api_refused and not status.tradeapi_disabled
    assert isinstance(worker.open(open_req(8)), OrderFilled)
    status = worker.status()
    assert status is not None and not status.api_refused


def test_a_fresh_worker_learns_the_clock_from_any_selected_symbol_moving_before_anything_is_watched(
    load_fake,
):
    mt5 = load_fake(server_time_offset=3 * HOUR)
    worker = started(mt5, symbols=("EURUSD",))
    worker.poll_quotes()
    assert not worker.server_clock.known  # a first look may be hours old: not a clock reading
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.2, ask=1.2001)
    assert worker.poll_quotes() == () and worker.server_clock.current == 3 * HOUR


@pytest.mark.parametrize("seen_by", ["tick", "own fill"])
def test_a_switch_back_keeps_deals_of_the_repeated_hour_on_the_offset_they_were_made_under(
    load_fake, tmp_path: Path, seen_by: str
):
    """UTC+3 summer to UTC+2 winter: the server repeats an hour. A deal made minutes before the switch has
    a server time later than "now" after it; without the deal mark it was read an hour late."""
    mt5 = load_fake(server_time_offset=3 * HOUR, state_path=str(tmp_path / "state.pkl"))
    worker = started(mt5)
    worker.watch(WatchReq(("EURUSD",)))
    summer = worker.open(open_req(1))
    assert isinstance(summer, OrderFilled) and worker.server_clock.current == 3 * HOUR
    control(mt5, op="set", key="server_time_offset", value=2 * HOUR)
    if seen_by == "tick":
        worker.poll_quotes()
        control(mt5, op="set_quote", symbol="EURUSD", bid=1.2, ask=1.2001)
        assert worker.poll_quotes()
    winter = worker.open(open_req(2, side="SELL"))
    assert isinstance(winter, OrderFilled) and worker.server_clock.current == 2 * HOUR
    assert abs(winter.time - time.time()) < 5
    restarted = started(mt5, server_clock=worker.server_clock.dumps())
    times = {t.magic: t.open_time for m in (1, 2) for t in restarted.find(FindReq(m)).trades}
    assert times == {1: summer.time, 2: winter.time}
    closed = restarted.close(CloseReq(summer.ticket, 0.1, 3, "close"))
    assert isinstance(closed, OrderFilled) and abs(closed.time - time.time()) < 5


def test_learning_the_clock_asks_for_a_status_push_at_once(load_fake):
    mt5 = load_fake(server_time_offset=3 * HOUR)
    worker = started(mt5)
    assert not worker.clock_changed
    assert isinstance(worker.open(open_req(7)), OrderFilled)
    assert worker.clock_changed
    status = worker.status()
    assert status is not None and status.server_offset == 3 * HOUR and not worker.clock_changed


# -- the protective stop (sl) ------------------------------------------------------------------------------------


def test_the_fake_refuses_an_sl_inside_the_stops_level_with_10016_and_keeps_a_valid_one(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.10000, ask=1.10012)
    assert mt5.symbol_info("EURUSD").trade_stops_level == 10
    refused = mt5.order_send(request(mt5, sl=1.09995))
    assert refused.retcode == mt5.TRADE_RETCODE_INVALID_STOPS == 10016 and mt5.positions_get() == ()
    assert mt5.order_send(request(mt5, sl=1.09990)).retcode == mt5.TRADE_RETCODE_DONE
    (pos,) = mt5.positions_get()
    assert pos.sl == 1.09990


def test_the_fake_closes_at_the_sl_with_a_deal_of_reason_sl_carrying_the_positions_magic(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.10000, ask=1.10012)
    res = mt5.order_send(request(mt5, sl=1.09900, magic=4242))
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.09900, ask=1.09912)
    assert mt5.positions_get() == ()
    last = mt5.history_deals_get(position=res.order)[-1]
    assert (last.reason, last.magic, last.price, last.comment) == (
        mt5.DEAL_REASON_SL,
        4242,
        1.09900,
        "[sl 1.09900]",
    )


def test_the_worker_sends_the_sl_from_the_tick_and_reports_its_hit_with_no_close_magic(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.10000, ask=1.10012)
    out = worker.open(replace(open_req(7), stop_distance=0.0020))
    assert isinstance(out, OrderFilled), out
    (pos,) = mt5.positions_get()
    assert pos.sl == 1.09812  # the ask 1.10012 - 20 pips
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.09800, ask=1.09812)
    (trade,) = worker.find(FindReq(7)).trades
    # the SL deal carries our magic 7, yet no close order of ours made it
    assert (trade.closed, trade.close_magic, trade.close_reason) == (True, None, "stop loss")


def test_the_worker_refuses_a_stop_inside_the_stops_level_before_sending_and_names_the_minimum(load_fake):
    mt5 = load_fake()
    worker = started(mt5)
    control(mt5, op="set_quote", symbol="EURUSD", bid=1.10000, ask=1.10012)
    out = worker.open(replace(open_req(8, side="SELL"), stop_distance=0.00015))  # 1.5 pips: 3 points
    assert isinstance(out, OrderCode) and out.code == 10016, out
    assert "3 points from the ask" in out.comment and "(SYMBOL_TRADE_STOPS_LEVEL) is 10 points" in out.comment
    assert mt5._T.broker.order_log == []  # nothing was sent
