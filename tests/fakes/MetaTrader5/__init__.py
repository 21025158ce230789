"""A fake of the ``MetaTrader5`` package (the official Python API of the MT5 terminal), for tests.

Same function names, keyword signatures, constants and named-tuple results (with ``_asdict()``) as the
documented package; behind it sits the simulated broker. The oracle is the documentation, mql5.com
"Python Integration" (https://www.mql5.com/en/docs/python_metatrader5), page per function:

- ``order_send`` (mt5ordersend_py): an MqlTradeResult, or None with the reason in ``last_error()``.
  ``order_check`` (mt5ordercheck_py): the same request checked, nothing sent.
- ``last_error`` (mt5lasterror_py): ``(code, description)``; RES_S_OK 1, RES_E_FAIL -1, RES_E_INVALID_PARAMS
  -2, ..., RES_E_AUTO_TRADING_DISABLED -8, RES_E_INTERNAL_FAIL* -10000..-10005 (IPC with the terminal).
- ``history_deals_get`` (mt5historydealsget_py): ``(date_from, date_to, group=)``, or ``ticket=`` an ORDER
  ticket (the deals whose DEAL_ORDER it is), or ``position=`` a position ticket (DEAL_POSITION_ID).
  ``history_orders_get`` (mt5historyordersget_py): ``ticket=`` an order ticket, ``position=`` a position.
  ``positions_get`` (mt5positionsget_py): ``symbol=``, ``group=`` or ``ticket=`` a POSITION ticket.
  Deal and order numbers are separate sequences (``deal_ticket_start`` makes them collide on purpose).
- ``symbol_info`` (mt5symbolinfo_py): ``select``/``visible`` say whether it is in Market Watch;
  ``symbol_select`` (mt5symbolselect_py) adds/removes it; ``symbol_info_tick`` (mt5symbolinfotick_py).
- ``terminal_info`` (mt5terminalinfo_py): ``connected``, ``trade_allowed`` (Algo Trading),
  ``tradeapi_disabled``; ``account_info`` (mt5accountinfo_py); ``initialize`` (mt5initialize_py).
- Stop-loss: ``order_send``'s request ``sl`` (MqlTradeRequest, mt5ordersend_py; 0 = none) must keep
  ``symbol_info().trade_stops_level`` points (SYMBOL_TRADE_STOPS_LEVEL, "minimal indention in points from
  the current close price to place Stop orders", mql5.com Symbol Properties) from the close-side price
  (Bid - SL for a buy, SL - Ask for a sell), else retcode 10016 TRADE_RETCODE_INVALID_STOPS; ``positions_get``
  reports it as ``sl``. When the close-side price reaches it the server closes the position: a deal with
  reason DEAL_REASON_SL (4), the position's magic and the comment ``[sl <price>]``, at that price (at the
  stop, or beyond it after a jump).
- Times: every time the package returns (ticks, symbol info, deals, orders, positions) is on the trade
  server's clock. Here that clock is UTC plus an offset that may change (a DST switch, ``set
  server_time_offset``) and a deal keeps the server time it was made at.

Where the documentation is silent the fake takes the stricter reading: ``symbol_info_tick`` of a symbol not
in Market Watch returns None; a ``None`` result is never "empty" (an empty selection is ``()``); a
comment longer than ``COMMENT_LIMIT`` (24, below the 28/29/31 reported for real builds) makes
``order_send``/``order_check`` return None with ``(-2, 'Invalid "comment" argument')``; with
``tradeapi_disabled`` every ``order_send`` returns None with ``(-8, ...)``.

Configured at import from ``HEDGE_FAKE_MT5_SCENARIO`` (a JSON object, or the path of a JSON file) so a
spawned worker process picks it up. Scenario keys (all optional)::

    login, password, server, path       what initialize() accepts (password/path checked when given)
    ignore_login                        true: initialize() succeeds whatever login it is given and the
                                        terminal stays on its own account (tests the account check)
    balance, leverage, hedging          the account (hedging false: ACCOUNT_MARGIN_MODE_RETAIL_NETTING)
    symbols                             {"USDJPY": "USDJPY.raw"}: broker names of the canonical symbols
    seed, ticks_per_second              the price walk (0: prices move only by control commands)
    filling_mask                        {"EURUSD": 1}: SYMBOL_FILLING_* mask per symbol (default 3)
    server_time_offset                  seconds the trade server's clock is ahead of UTC (times it reports)
    deal_ticket_start                   the deal counter's start (default 200000000; orders: 100000000)
    tradeapi_disabled                   terminal_info().tradeapi_disabled: trading from Python refused
    state_path                          pickle of the broker, kept across processes (a restarted worker
                                        sees the same "server"); the test reads it to count duplicates
    control_path                        JSON lines appended by the test, applied before every call
    faults                              a list of fault objects applied at start (same as control "fault")

Control commands (one JSON object per line of ``control_path``)::

    {"op": "set_quote", "symbol": "EURUSD", "bid": 1.1, "ask": 1.1001}
    {"op": "fault", "kind": "reject", "code": 10019, "times": 1, "on": "open"}   # broker faults:
          kinds reject | timeout (fills, answers 10012) | requote | market_closed | trade_disabled
    {"op": "fault", "kind": "none", "filled": true, "times": 1, "code": -10005}
                                                order_send returns None, last_error ``code`` (and fills)
    {"op": "fault", "kind": "ipc", "fn": "history_deals_get", "code": -10004, "times": 1}
                                                that function returns None with that last_error
    {"op": "fault", "kind": "hang", "seconds": 3, "filled": true}   order_send blocks, having filled
    {"op": "fault", "kind": "crash"}                                 the next call kills the process
    {"op": "fault", "kind": "invalid_fill", "times": 1}              10030 whatever the filling mode
    {"op": "set", "key": "connected" | "algo_trading" | "account_trade_allowed" | "terminal_alive" |
     "tradeapi_disabled", "value": bool}
    {"op": "set", "key": "filling_mask", "symbol": "EURUSD", "value": 1}
    {"op": "set", "key": "server_time_offset", "value": 10800}     the server's clock changes from now on
    {"op": "market_watch_remove", "symbol": "EURUSD"}               the user hides it from Market Watch
    {"op": "broker_close", "ticket": 123, "volume": 0.1}             a stop-out of (part of) that position
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
from collections import namedtuple
from datetime import datetime
from typing import Any

from hedge_agent.domain.enums import Side
from hedge_agent.terminals.simulated import (
    DealReason,
    Fault,
    FaultKind,
    SimAccountConfig,
    SimBroker,
    SimResult,
    default_symbols,
)

__version__ = "5.0.4874"
__author__ = "hedge-agent tests (fake)"

# -- constants (real values) ------------------------------------------------------------------------------

TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6
TRADE_ACTION_MODIFY = 7
TRADE_ACTION_REMOVE = 8
TRADE_ACTION_CLOSE_BY = 10

ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1
ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
ORDER_FILLING_BOC = 3
ORDER_TIME_GTC = 0
ORDER_TIME_DAY = 1
ORDER_STATE_FILLED = 4
ORDER_REASON_CLIENT = 0
ORDER_REASON_EXPERT = 3
ORDER_REASON_SO = 6

SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
SYMBOL_TRADE_MODE_FULL = 4
SYMBOL_TRADE_EXECUTION_MARKET = 2

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1
POSITION_REASON_CLIENT = 0
POSITION_REASON_EXPERT = 3

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3
DEAL_REASON_CLIENT = 0
DEAL_REASON_MOBILE = 1
DEAL_REASON_WEB = 2
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6

ACCOUNT_TRADE_MODE_DEMO = 0
ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
ACCOUNT_MARGIN_MODE_EXCHANGE = 1
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
ACCOUNT_STOPOUT_MODE_PERCENT = 0

TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_CANCEL = 10007
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_INVALID_EXPIRATION = 10022
TRADE_RETCODE_ORDER_CHANGED = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_LOCKED = 10028
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_ONLY_REAL = 10032
TRADE_RETCODE_LIMIT_ORDERS = 10033
TRADE_RETCODE_LIMIT_VOLUME = 10034
TRADE_RETCODE_INVALID_ORDER = 10035
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
TRADE_RETCODE_LIMIT_POSITIONS = 10040

# last_error() codes of the Python package
RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NO_MEMORY = -3
RES_E_NOT_FOUND = -4
RES_E_INVALID_VERSION = -5
RES_E_AUTH_FAILED = -6
RES_E_UNSUPPORTED = -7
RES_E_AUTO_TRADING_DISABLED = -8
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

COMMENT_LIMIT = 24  # longer comments are refused by order_send/order_check (None + RES_E_INVALID_PARAMS)

# -- result types (the package's field names, in its order) --------------------------------------------------

AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
    "currency_digits fifo_close balance credit profit equity margin margin_free margin_level margin_so_call "
    "margin_so_so margin_initial margin_maintenance assets liabilities commission_blocked name server "
    "currency company",
)
TerminalInfo = namedtuple(
    "TerminalInfo",
    "community_account community_connection connected dlls_allowed trade_allowed tradeapi_disabled "
    "email_enabled ftp_enabled notifications_enabled mqid build maxbars codepage ping_last community_balance "
    "retransmission company name language path data_path commondata_path",
)
SymbolInfo = namedtuple(
    "SymbolInfo",
    "custom chart_mode select visible session_deals session_buy_orders session_sell_orders volume volumehigh "
    "volumelow time digits spread spread_float ticks_bookdepth trade_calc_mode trade_mode start_time "
    "expiration_time trade_stops_level trade_freeze_level trade_exemode swap_mode swap_rollover3days "
    "margin_hedged_use_leg expiration_mode filling_mode order_mode order_gtc_mode option_mode option_right "
    "bid bidhigh bidlow ask askhigh asklow last lasthigh lastlow volume_real volumehigh_real volumelow_real "
    "option_strike point trade_tick_value trade_tick_value_profit trade_tick_value_loss trade_tick_size "
    "trade_contract_size trade_accrued_interest trade_face_value trade_liquidity_rate volume_min volume_max "
    "volume_step volume_limit swap_long swap_short margin_initial margin_maintenance session_volume "
    "session_turnover session_interest session_buy_orders_volume session_sell_orders_volume session_open "
    "session_close session_aw session_price_settlement session_price_limit_min session_price_limit_max "
    "margin_hedged price_change price_volatility price_theoretical price_greeks_delta price_greeks_theta "
    "price_greeks_gamma price_greeks_vega price_greeks_rho price_greeks_omega price_sensitivity basis "
    "category currency_base currency_profit currency_margin bank description exchange formula isin name "
    "page path",
)
Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
TradeRequest = namedtuple(
    "TradeRequest",
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time expiration "
    "comment position position_by",
)
OrderSendResult = namedtuple(
    "OrderSendResult", "retcode deal order volume price bid ask comment request_id retcode_external request"
)
OrderCheckResult = namedtuple(
    "OrderCheckResult", "retcode balance equity profit margin margin_free margin_level comment request"
)
TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open sl tp "
    "price_current swap profit symbol comment external_id",
)
TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap profit fee "
    "symbol comment external_id",
)
TradeOrder = namedtuple(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time type_filling "
    "state magic position_id position_by_id reason volume_initial volume_current price_open sl tp "
    "price_current price_stoplimit symbol comment external_id",
)

_REQUEST_FIELDS = TradeRequest._fields

# -- the fake terminal ------------------------------------------------------------------------------------------


def _scenario() -> dict[str, Any]:
    raw = os.environ.get("HEDGE_FAKE_MT5_SCENARIO", "").strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        loaded = json.loads(raw)
    else:
        with open(raw, encoding="utf-8") as f:
            loaded = json.load(f)
    if not isinstance(loaded, dict):
        raise ValueError("HEDGE_FAKE_MT5_SCENARIO must be a JSON object (or the path of a file holding one)")
    return loaded


class _Terminal:
    """The terminal process and its trade server, as far as the Python package can see them."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.login = int(scenario.get("login", 5_000_001))
        self.password = scenario.get("password")
        self.server = str(scenario.get("server", "SimBroker-Demo"))
        self.path = scenario.get("path")
        self.state_path = scenario.get("state_path")
        self.control_path = scenario.get("control_path")
        self.initialized = False
        self.error: tuple[int, str] = (RES_S_OK, "Success")
        self.state: dict[str, Any] = {}

    # state shared with the test and with later worker processes --------------------------------------------

    def load(self) -> None:
        if self.state_path and os.path.exists(self.state_path):
            with open(self.state_path, "rb") as f:
                self.state = pickle.load(f)
            return
        sc = self.scenario
        broker = SimBroker(
            symbols=default_symbols(sc.get("symbols")),
            account_config=SimAccountConfig(
                login=self.login,
                balance=float(sc.get("balance", 10_000.0)),
                leverage=int(sc.get("leverage", 100)),
                hedging=bool(sc.get("hedging", True)),
                server=self.server,
            ),
            seed=int(sc.get("seed", 0)),
            ticks_per_second=float(sc.get("ticks_per_second", 0.0)),
        )
        if "deal_ticket_start" in sc:
            broker._ids.deal = int(sc["deal_ticket_start"])
        self.state = {
            "broker": broker,
            "control_offset": 0,
            "connected": True,
            "algo_trading": True,
            "tradeapi_disabled": bool(sc.get("tradeapi_disabled", False)),
            # the server clock: (from UTC time, seconds ahead of UTC), ascending
            "offsets": [(float("-inf"), float(sc.get("server_time_offset", 0)))],
            "terminal_alive": True,
            "filling_mask": {name: 3 for name in broker.symbol_names()} | dict(sc.get("filling_mask", {})),
            "selected": set(),
            "faults": [],  # fake-level order_send faults: dicts with kind/times/...
        }
        for fault in sc.get("faults", []):
            self.apply({"op": "fault", **fault})
        self.save()

    def save(self) -> None:
        if not self.state_path:
            return
        directory = os.path.dirname(os.path.abspath(self.state_path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mt5state")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(self.state, f)
        os.replace(tmp, self.state_path)

    @property
    def broker(self) -> SimBroker:
        broker = self.state["broker"]
        assert isinstance(broker, SimBroker)
        return broker

    def poll_control(self) -> None:
        """Apply the control lines the test appended since last time."""
        if not self.control_path or not os.path.exists(self.control_path):
            return
        if os.path.getsize(self.control_path) <= self.state["control_offset"]:
            return
        with open(self.control_path, "rb") as f:
            f.seek(self.state["control_offset"])
            data = f.read()
        end = data.rfind(b"\n") + 1  # only whole lines
        for line in data[:end].splitlines():
            if line.strip():
                self.apply(json.loads(line))
        self.state["control_offset"] += end
        self.save()

    def apply(self, cmd: dict[str, Any]) -> None:
        op = cmd["op"]
        b = self.broker
        if op == "set_quote":
            b.set_quote(cmd["symbol"], cmd["bid"], cmd.get("ask"))
        elif op == "set":
            key, value = cmd["key"], cmd["value"]
            if key == "filling_mask":
                self.state["filling_mask"][cmd["symbol"]] = int(value)
            elif key == "account_trade_allowed":
                b.trade_allowed = bool(value)
            elif key == "connected":
                (b.reconnect if value else b.disconnect)()
                self.state["connected"] = bool(value)
            elif key in ("algo_trading", "terminal_alive", "tradeapi_disabled"):
                self.state[key] = bool(value)
            elif key == "server_time_offset":
                self.state["offsets"].append((b.clock(), float(value)))
            else:
                raise ValueError(f"unknown control key {key!r}")
        elif op == "broker_close":
            volume = cmd.get("volume")
            b.close(int(cmd["ticket"]), float(volume) if volume else None, reason=DealReason.SO)
        elif op == "market_watch_remove":
            self.state["selected"].discard(cmd["symbol"])
        elif op == "fault":
            kind = cmd["kind"]
            if kind in {k.value for k in FaultKind}:
                b.inject(
                    Fault(
                        FaultKind(kind),
                        code=cmd.get("code"),
                        times=int(cmd.get("times", 1)),
                        on=cmd.get("on", "any"),
                        symbol=cmd.get("symbol"),
                    )
                )
            elif kind in ("none", "hang", "crash", "invalid_fill", "ipc"):
                self.state["faults"].append(dict(cmd, left=int(cmd.get("times", 1))))
            else:
                raise ValueError(f"unknown fault kind {kind!r}")
        else:
            raise ValueError(f"unknown control op {op!r}")

    def take_fault_for(self, kind: str, fn: str) -> dict[str, Any] | None:
        for f in self.state["faults"]:
            if f["kind"] == kind and f.get("fn") == fn:
                f["left"] -= 1
                if f["left"] <= 0:
                    self.state["faults"].remove(f)
                return dict(f)
        return None

    def take_fault(self, *kinds: str) -> dict[str, Any] | None:
        for f in self.state["faults"]:
            if f["kind"] in kinds:
                f["left"] -= 1
                if f["left"] <= 0:
                    self.state["faults"].remove(f)
                return dict(f)
        return None

    # the call gate every API function passes -----------------------------------------------------------------

    def enter(self, fn: str = "") -> bool:
        """Before every call: apply control lines, then refuse if not initialized / terminal gone / an IPC
        fault is queued for ``fn``."""
        if not self.initialized:
            self.error = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
            return False
        self.poll_control()
        if self.take_fault("crash"):
            self.save()
            os._exit(3)
        if not self.state["terminal_alive"]:
            self.error = (RES_E_INTERNAL_FAIL_SEND, "IPC send failed: terminal is not running")
            return False
        ipc = self.take_fault_for("ipc", fn)
        if ipc is not None:
            self.save()
            self.error = (int(ipc.get("code", RES_E_INTERNAL_FAIL_CONNECT)), "IPC failure (fault)")
            return False
        self.broker.advance()
        self.error = (RES_S_OK, "Success")
        return True

    def server_time(self, ts: float) -> float:
        """UTC ``ts`` on the trade server's clock, with the offset in force at ``ts``."""
        offset = 0.0
        for start, value in self.state["offsets"]:
            if ts >= start:
                offset = value
        return ts + offset


_T = _Terminal(_scenario())


def _fail(code: int, message: str) -> None:
    _T.error = (code, message)


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


# -- connection ---------------------------------------------------------------------------------------------------


def initialize(
    path: str | None = None,
    *,
    login: int | None = None,
    password: str | None = None,
    server: str | None = None,
    timeout: int = 60_000,
    portable: bool = False,
) -> bool:
    if _T.path and path is not None and os.path.normcase(path) != os.path.normcase(str(_T.path)):
        _fail(RES_E_INTERNAL_FAIL_INIT, f"Terminal: Call initialize failed: no terminal at {path}")
        return False
    if login is not None and not _T.scenario.get("ignore_login"):
        if password is not None and _T.password is not None and password != _T.password:
            _fail(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
            return False
        if int(login) != _T.login or (server is not None and server != _T.server):
            _fail(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
            return False
    _T.load()
    _T.poll_control()
    if not _T.state["terminal_alive"]:
        _fail(RES_E_INTERNAL_FAIL_INIT, "IPC initialize failed, MetaTrader 5 x64 not found")
        return False
    _T.initialized = True
    _T.error = (RES_S_OK, "Success")
    return True


def login(
    login: int, *, password: str | None = None, server: str | None = None, timeout: int = 60_000
) -> bool:
    if not _T.enter():
        return False
    if int(login) != _T.login or (
        password is not None and _T.password is not None and password != _T.password
    ):
        _fail(RES_E_AUTH_FAILED, "Terminal: Authorization failed")
        return False
    return True


def shutdown() -> None:
    _T.initialized = False


def version() -> tuple[int, int, str] | None:
    if not _T.enter():
        return None
    return (500, 4874, "11 Apr 2025")


def last_error() -> tuple[int, str]:
    return _T.error


# -- account and terminal ------------------------------------------------------------------------------------------


def account_info() -> Any:
    if not _T.enter("account_info"):
        return None
    a = _T.broker.account()
    margin_mode = ACCOUNT_MARGIN_MODE_RETAIL_HEDGING if a.hedging else ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    values: dict[str, Any] = dict.fromkeys(AccountInfo._fields, 0.0)
    values.update(
        login=a.login,
        trade_mode=ACCOUNT_TRADE_MODE_DEMO,
        leverage=a.leverage,
        limit_orders=0,
        margin_so_mode=ACCOUNT_STOPOUT_MODE_PERCENT,
        trade_allowed=a.trade_allowed,
        trade_expert=True,
        margin_mode=margin_mode,
        currency_digits=2,
        fifo_close=False,
        balance=a.balance,
        credit=a.credit,
        profit=a.profit,
        equity=a.equity,
        margin=a.margin,
        margin_free=a.margin_free,
        margin_level=a.margin_level or 0.0,
        margin_so_call=a.margin_call_level,
        margin_so_so=a.stop_out_level,
        name=a.name,
        server=a.server,
        currency=a.currency,
        company=a.company,
    )
    return AccountInfo(**values)


def terminal_info() -> Any:
    if not _T.enter("terminal_info"):
        return None
    s = _T.state
    values: dict[str, Any] = dict.fromkeys(TerminalInfo._fields, False)
    values.update(
        connected=s["connected"],
        trade_allowed=s["algo_trading"],
        tradeapi_disabled=s["tradeapi_disabled"],
        mqid=0,
        build=4874,
        maxbars=100_000,
        codepage=0,
        ping_last=1200,
        community_balance=0.0,
        retransmission=0.0,
        company="hedge-agent simulator",
        name="MetaTrader 5 (fake)",
        language="English",
        path=str(_T.path or ""),
        data_path="",
        commondata_path="",
    )
    return TerminalInfo(**values)


# -- symbols ------------------------------------------------------------------------------------------------------


def _symbol(name: str) -> Any:
    b = _T.broker
    spec = b.spec(name)
    q = b.quote(name)
    mask = _T.state["filling_mask"].get(name, 3)
    values: dict[str, Any] = dict.fromkeys(SymbolInfo._fields, 0)
    values.update(
        select=name in _T.state["selected"],
        visible=name in _T.state["selected"],
        time=int(_T.server_time(q.time)),
        digits=spec.digits,
        spread=round((q.ask - q.bid) / spec.point),
        spread_float=True,
        trade_mode=SYMBOL_TRADE_MODE_FULL,
        trade_exemode=SYMBOL_TRADE_EXECUTION_MARKET,
        filling_mode=mask,
        trade_stops_level=spec.stops_level_points,
        bid=q.bid,
        ask=q.ask,
        point=spec.point,
        trade_tick_size=spec.point,
        trade_contract_size=spec.contract_size,
        volume_min=spec.volume_min,
        volume_max=spec.volume_max,
        volume_step=spec.volume_step,
        currency_base=name[:3],
        currency_profit=name[3:6],
        currency_margin=name[:3],
        description=name,
        name=name,
        path=f"Forex\\{name}",
        basis="",
        category="",
        bank="",
        exchange="",
        formula="",
        isin="",
        page="",
    )
    return SymbolInfo(**values)


def symbols_total() -> int:
    return len(_T.broker.symbol_names()) if _T.enter() else 0


def symbols_get(group: str | None = None) -> Any:
    if not _T.enter():
        return None
    return tuple(_symbol(n) for n in _T.broker.symbol_names())


def symbol_info(symbol: str) -> Any:
    if not _T.enter("symbol_info"):
        return None
    if symbol not in _T.broker.symbol_names():
        _fail(RES_E_NOT_FOUND, f"Terminal: Not found symbol {symbol}")
        return None
    return _symbol(symbol)


def symbol_select(symbol: str, enable: bool = True) -> bool:
    if not _T.enter("symbol_select"):
        return False
    if symbol not in _T.broker.symbol_names():
        _fail(RES_E_NOT_FOUND, f"Terminal: Not found symbol {symbol}")
        return False
    (_T.state["selected"].add if enable else _T.state["selected"].discard)(symbol)
    return True


def symbol_info_tick(symbol: str) -> Any:
    if not _T.enter("symbol_info_tick"):
        return None
    if symbol not in _T.broker.symbol_names():
        _fail(RES_E_NOT_FOUND, f"Terminal: Not found symbol {symbol}")
        return None
    if symbol not in _T.state["selected"]:  # docs silent: stricter, no prices outside Market Watch
        _fail(RES_E_FAIL, f"Terminal: symbol {symbol} is not selected in Market Watch")
        return None
    q = _T.broker.quote(symbol)
    t = _T.server_time(q.time)
    return Tick(int(t), q.bid, q.ask, 0.0, 0, int(t * 1000), 6, 0.0)


# -- trading ------------------------------------------------------------------------------------------------------


def _request(request: Any) -> dict[str, Any] | None:
    if not isinstance(request, dict):
        _fail(RES_E_INVALID_PARAMS, "Invalid arguments")
        return None
    unknown = set(request) - set(_REQUEST_FIELDS)
    if unknown:
        _fail(RES_E_INVALID_PARAMS, f"Invalid request field {sorted(unknown)[0]!r}")
        return None
    comment = request.get("comment", "")
    if not isinstance(comment, str) or len(comment) > COMMENT_LIMIT:
        _fail(RES_E_INVALID_PARAMS, 'Invalid "comment" argument')
        return None
    return {f: request.get(f, "" if f in ("symbol", "comment") else 0) for f in _REQUEST_FIELDS}


def _send(req: dict[str, Any]) -> SimResult:
    b = _T.broker
    if req["action"] != TRADE_ACTION_DEAL or req["type"] not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
        return SimResult(TRADE_RETCODE_INVALID_ORDER, False, "Unsupported order")
    if not _T.state["algo_trading"]:
        return SimResult(TRADE_RETCODE_CLIENT_DISABLES_AT, False, "AutoTrading disabled by client")
    side = Side.BUY if req["type"] == ORDER_TYPE_BUY else Side.SELL
    position = int(req["position"] or 0)
    name = req["symbol"]
    pos = b.position(position) if position else None
    if pos is not None:
        name = pos.symbol
    if name not in b.symbol_names():
        return SimResult(TRADE_RETCODE_INVALID, False, "Invalid request: unknown symbol")
    mask = _T.state["filling_mask"].get(name, 3)
    allowed = {ORDER_FILLING_FOK: mask & SYMBOL_FILLING_FOK, ORDER_FILLING_IOC: mask & SYMBOL_FILLING_IOC}
    if not allowed.get(req["type_filling"], 0) or _T.take_fault("invalid_fill"):
        return SimResult(TRADE_RETCODE_INVALID_FILL, False, "Unsupported filling mode")
    kwargs: dict[str, Any] = {
        "magic": int(req["magic"]),
        "comment": req["comment"],
        "price": float(req["price"]) or None,
        "deviation": int(req["deviation"]),
    }
    if position:
        if pos is not None and pos.side is side:
            return SimResult(
                TRADE_RETCODE_INVALID, False, "Invalid request: close in the position's direction"
            )
        return b.close(position, float(req["volume"]), **kwargs)
    # MqlTradeRequest.sl (mt5ordersend_py), 0: none; the server refuses one inside
    # SYMBOL_TRADE_STOPS_LEVEL (mt5symbolinfo_py) or on the wrong side with 10016 INVALID_STOPS
    return b.open(name, side, float(req["volume"]), sl=float(req["sl"]) or None, **kwargs)


def order_send(request: Any) -> Any:
    if not _T.enter("order_send"):
        return None
    req = _request(request)
    if req is None:
        return None
    if _T.state["tradeapi_disabled"]:
        _fail(RES_E_AUTO_TRADING_DISABLED, "Terminal: Trading via Python API disabled")
        return None
    fault = _T.take_fault("none", "hang")
    code = int(fault.get("code", RES_E_INTERNAL_FAIL_TIMEOUT)) if fault is not None else 0
    if fault is not None and not fault.get("filled", True):
        _T.save()
        if fault["kind"] == "hang":
            time.sleep(float(fault.get("seconds", 5)))
        _fail(code, "Terminal: order_send failed (fault)")
        return None
    res = _send(req)
    _T.save()
    if fault is not None and fault["kind"] == "none":
        _fail(code, "Terminal: order_send failed (fault)")
        return None
    if fault is not None and fault["kind"] == "hang":
        time.sleep(float(fault.get("seconds", 5)))
    return OrderSendResult(
        retcode=res.code,
        deal=res.deal,
        order=res.order,
        volume=res.volume,
        price=res.price,
        bid=res.bid,
        ask=res.ask,
        comment=res.comment,
        request_id=1,
        retcode_external=0,
        request=TradeRequest(**req),
    )


def order_check(request: Any) -> Any:
    if not _T.enter("order_check"):
        return None
    req = _request(request)
    if req is None:
        return None
    a = _T.broker.account()
    code = 0 if req["action"] == TRADE_ACTION_DEAL else TRADE_RETCODE_INVALID
    return OrderCheckResult(
        retcode=code,
        balance=a.balance,
        equity=a.equity,
        profit=a.profit,
        margin=a.margin,
        margin_free=a.margin_free,
        margin_level=a.margin_level or 0.0,
        comment="Done" if code == 0 else "Invalid request",
        request=TradeRequest(**req),
    )


def orders_total() -> int:
    return 0


def orders_get(symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
    return () if _T.enter() else None


# -- positions and history ------------------------------------------------------------------------------------------


def _ms(ts: float) -> int:
    return round(_T.server_time(ts) * 1000)


def positions_total() -> int:
    return len(_T.broker.positions()) if _T.enter() else 0


def positions_get(symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
    if not _T.enter("positions_get"):
        return None
    out = []
    for p in _T.broker.positions(symbol):
        if ticket is not None and p.ticket != ticket:
            continue
        opened, updated = _ms(p.open_time), _ms(p.update_time)
        out.append(
            TradePosition(
                ticket=p.ticket,
                time=opened // 1000,
                time_msc=opened,
                time_update=updated // 1000,
                time_update_msc=updated,
                type=POSITION_TYPE_BUY if p.side is Side.BUY else POSITION_TYPE_SELL,
                magic=p.magic,
                identifier=p.ticket,
                reason=POSITION_REASON_EXPERT if p.magic else POSITION_REASON_CLIENT,
                volume=p.volume,
                price_open=p.open_price,
                sl=p.sl,
                tp=0.0,
                price_current=p.price_current,
                swap=0.0,
                profit=p.profit,
                symbol=p.symbol,
                comment=p.comment,
                external_id="",
            )
        )
    return tuple(out)


def history_deals_total(date_from: Any, date_to: Any) -> int:
    deals = history_deals_get(date_from, date_to)
    return len(deals) if deals is not None else 0


def history_deals_get(
    date_from: Any = None,
    date_to: Any = None,
    *,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> Any:
    if not _T.enter("history_deals_get"):
        return None
    if ticket is None and position is None and (date_from is None or date_to is None):
        _fail(RES_E_INVALID_PARAMS, "Invalid arguments")
        return None
    out = []
    for d in _T.broker.deals():
        # ``ticket`` is an ORDER ticket (DEAL_ORDER), ``position`` a position ticket (DEAL_POSITION_ID)
        if (ticket is not None and d.order != ticket) or (position is not None and d.position != position):
            continue
        if (
            ticket is None
            and position is None
            and not _ts(date_from) <= _T.server_time(d.time) <= _ts(date_to)
        ):
            continue
        out.append(
            TradeDeal(
                ticket=d.ticket,
                order=d.order,
                time=_ms(d.time) // 1000,
                time_msc=_ms(d.time),
                type=DEAL_TYPE_BUY if d.side is Side.BUY else DEAL_TYPE_SELL,
                entry=int(d.entry),
                magic=d.magic,
                position_id=d.position,
                reason=int(d.reason),
                volume=d.volume,
                price=d.price,
                commission=d.commission,
                swap=0.0,
                profit=d.profit,
                fee=0.0,
                symbol=d.symbol,
                comment=d.comment,
                external_id="",
            )
        )
    return tuple(out)


def history_orders_total(date_from: Any, date_to: Any) -> int:
    orders = history_orders_get(date_from, date_to)
    return len(orders) if orders is not None else 0


def history_orders_get(
    date_from: Any = None,
    date_to: Any = None,
    *,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> Any:
    if not _T.enter("history_orders_get"):
        return None
    if ticket is None and position is None and (date_from is None or date_to is None):
        _fail(RES_E_INVALID_PARAMS, "Invalid arguments")
        return None
    out = []
    for o in _T.broker.history_orders():
        if (ticket is not None and o.ticket != ticket) or (position is not None and o.position != position):
            continue
        if (
            ticket is None
            and position is None
            and not _ts(date_from) <= _T.server_time(o.time) <= _ts(date_to)
        ):
            continue
        values: dict[str, Any] = dict.fromkeys(TradeOrder._fields, 0)
        values.update(
            ticket=o.ticket,
            time_setup=_ms(o.time) // 1000,
            time_setup_msc=_ms(o.time),
            time_done=_ms(o.time) // 1000,
            time_done_msc=_ms(o.time),
            type=ORDER_TYPE_BUY if o.side is Side.BUY else ORDER_TYPE_SELL,
            type_time=ORDER_TIME_GTC,
            type_filling=ORDER_FILLING_FOK,
            state=ORDER_STATE_FILLED,
            magic=o.magic,
            position_id=o.position,
            reason=int(o.reason),
            volume_initial=o.volume,
            price_open=o.price,
            price_current=o.price,
            sl=0.0,
            tp=0.0,
            price_stoplimit=0.0,
            symbol=o.symbol,
            comment=o.comment,
            external_id="",
        )
        out.append(TradeOrder(**values))
    return tuple(out)
