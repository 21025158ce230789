"""The fake MetaTrader5 package keeps the real package's habits, and the worker's MT5 logic works over it
in-process (each test loads a fresh copy of the fake under a private name: the agent's process never
gets a module called MetaTrader5)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hedge_agent.terminals.mt5.protocol import WorkerConfig
from hedge_agent.terminals.mt5.worker import StartFailure, Worker

from .conftest import FAKES

LOGIN = 5_000_001


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


def request(mt5: ModuleType, **overrides: Any) -> dict[str, Any]:
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


def test_calls_before_initialize_return_none_and_last_error_says_no_ipc(load_fake):
    mt5 = load_fake()
    assert mt5.account_info() is None
    assert mt5.last_error() == (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")


def test_results_are_named_tuples_with_the_packages_fields(load_fake):
    mt5 = load_fake()
    assert mt5.initialize(login=LOGIN, password="pw")
    res = mt5.order_send(request(mt5))
    assert res.retcode == mt5.TRADE_RETCODE_DONE
    assert res._asdict()["request"].magic == 42
    (pos,) = mt5.positions_get()
    assert pos._fields[:3] == ("ticket", "time", "time_msc") and pos.identifier == pos.ticket
    assert mt5.positions_total() == 1
    (deal,) = mt5.history_deals_get(ticket=res.deal)
    assert (deal.position_id, deal.entry, deal.reason) == (
        pos.ticket,
        mt5.DEAL_ENTRY_IN,
        mt5.DEAL_REASON_EXPERT,
    )
    (order,) = mt5.history_orders_get(position=pos.ticket)
    assert order.state == mt5.ORDER_STATE_FILLED


def test_a_comment_too_long_makes_order_send_return_none_with_an_invalid_params_error(load_fake):
    mt5 = load_fake()
    mt5.initialize()
    assert mt5.order_send(request(mt5, comment="x" * 32)) is None
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


def worker_config(**kw: Any) -> WorkerConfig:
    base: dict[str, Any] = {"name": "t", "login": LOGIN, "server": None, "path": None, "password": "pw"}
    return WorkerConfig(**(base | {"symbols": ("EURUSD", "GBPUSD")} | kw))


def test_the_worker_starts_selects_symbols_and_reports_the_missing_ones(load_fake):
    mt5 = load_fake()
    info = Worker(mt5, worker_config()).start()
    assert info["login"] == LOGIN and info["missing_symbols"] == ["GBPUSD"]


def test_a_worker_refuses_a_wrong_path_as_retryable_and_bad_credentials_as_fatal(load_fake):
    mt5 = load_fake(path="C:/MT5/terminal64.exe")
    with pytest.raises(StartFailure) as wrong_path:
        Worker(mt5, worker_config(path="C:/Other/terminal64.exe")).start()
    assert not wrong_path.value.fatal and "C:/Other/terminal64.exe" in str(wrong_path.value)
    with pytest.raises(StartFailure) as bad_password:
        Worker(mt5, worker_config(password="nope")).start()
    assert bad_password.value.fatal and "nope" not in str(bad_password.value)


def test_the_server_clock_offset_is_learnt_from_our_own_fill(load_fake):
    mt5 = load_fake(server_time_offset=7200)
    worker = Worker(mt5, worker_config())
    worker.start()
    out = worker.op_open(symbol="EURUSD", side="BUY", volume=0.1, magic=7, comment="c")
    assert out["kind"] == "filled" and worker.offset == 7200
    assert abs(out["time"] - worker.clock()) < 5


def test_find_reports_an_open_position_and_then_its_close_with_the_close_magic(load_fake):
    mt5 = load_fake()
    worker = Worker(mt5, worker_config())
    worker.start()
    opened = worker.op_open(symbol="EURUSD", side="SELL", volume=0.2, magic=7, comment="open")
    (rec,) = worker.op_find(magic=7)
    assert (rec["ticket"], rec["closed"], rec["side"], rec["volume"]) == (
        opened["ticket"],
        False,
        "SELL",
        0.2,
    )
    closed = worker.op_close(ticket=opened["ticket"], volume=0.2, magic=8, comment="close")
    assert closed["kind"] == "filled" and closed["ticket"] == opened["ticket"]
    (by_close,) = worker.op_find(magic=8)
    assert by_close == worker.op_find(magic=7)[0]
    assert (by_close["closed"], by_close["close_magic"], by_close["close_reason"]) == (
        True,
        8,
        "closed by expert",
    )
    again = worker.op_close(ticket=opened["ticket"], volume=0.2, magic=8, comment="close")
    assert again == {
        "kind": "code",
        "code": 10036,
        "comment": f"position {opened['ticket']} is already closed",
    }
