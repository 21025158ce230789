"""The MT5 worker process: owns one terminal through the ``MetaTrader5`` package and serves the agent.

``MetaTrader5`` holds the GIL during every call and binds its process to one terminal, so each terminal
gets its own process (spawned) and every call to it is made from this process's single thread, in order.
The package is imported in :func:`main` only, never at module level: the agent's process imports this
module (for :func:`main` as the spawn target) and must never load the Windows-only package.

:class:`Worker` holds the MetaTrader5 logic over an injected module object, so it also runs in-process
against the fake package in tests. The documented semantics it relies on (mql5.com, "Python Integration",
https://www.mql5.com/en/docs/python_metatrader5):

- ``history_deals_get(ticket=T)``: T is an ORDER ticket (deals whose DEAL_ORDER is T);
  ``history_deals_get(position=P)``: deals whose DEAL_POSITION_ID is P (mt5historydealsget_py).
- ``positions_get(ticket=T)``: T is a POSITION ticket (mt5positionsget_py).
- Every function returns None (False for bool ones) on failure and ``last_error()`` says why; the codes
  are in mt5lasterror_py. None is never "nothing there" unless ``last_error()`` says success.
- Every time returned (ticks, deals, orders, positions) is on the trade server's clock: see
  :mod:`.servertime`; every time this worker replies with is true UTC.
- ``symbol_info().select``: the symbol is in Market Watch; ``symbol_select(name, True)`` puts it back
  (mt5symbolinfo_py, mt5symbolselect_py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from hedge_agent.domain.enums import Side
from hedge_agent.domain.protective import protective_stop_price

from .protocol import (
    AccountReply,
    AccountReq,
    Call,
    CloseReq,
    FindReply,
    FindReq,
    Lost,
    NotSent,
    OpenReq,
    OrderCode,
    OrderFilled,
    OrderNone,
    OrderReply,
    PingReq,
    Pong,
    PositionRow,
    PositionsReply,
    PositionsReq,
    Quote,
    Quotes,
    Ready,
    ReadyInfo,
    Reply,
    Request,
    Result,
    StartFailed,
    Status,
    StatusMsg,
    Stop,
    SymbolMissing,
    TradeRow,
    WatchReply,
    WatchReq,
    WorkerConfig,
    WorkerFailure,
)
from .servertime import ServerClock

# MT5 constants used here, with their documented values (the module object provides the same names)
_DONE = 10009
_DONE_PARTIAL = 10010
_PLACED = 10008
_INVALID = 10013
_INVALID_STOPS = 10016
_PRICE_OFF = 10021
_INVALID_FILL = 10030
_POSITION_CLOSED = 10036
_AUTH_FAILED = -6
_AUTO_TRADING_DISABLED = -8
_RES_S_OK = 1
_MARGIN_MODE_HEDGING = 2
_DEAL_ENTRY_IN = 0
#: last_error() codes of the package's IPC with the terminal (RES_E_INTERNAL_FAIL*)
_IPC_ERRORS = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})

_CLOSE_REASONS = {4: "stop loss", 5: "take profit", 6: "stop out", 3: "closed by expert"}
#: DEAL_REASON_SL / _TP / _SO: deals the trade server makes by itself. Such a deal carries the
#: position's magic, yet no order of ours closed the position: reported with no close magic
_BROKER_REASONS = frozenset({4, 5, 6})


class StartFailure(Exception):
    """The worker could not start. ``fatal``: retrying will not help (wrong account, bad credentials)."""

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class _CallFailed(Exception):
    """A read returned None with a real error: the caller must not read it as "nothing there"."""

    def __init__(self, call: str, code: int, text: str) -> None:
        super().__init__(f"{call} failed: {text} (last_error {code})")
        self.code = code


class Worker:
    def __init__(self, mt5: Any, cfg: WorkerConfig, clock: Callable[[], float] = time.time) -> None:
        self.mt5 = mt5
        self.cfg = cfg
        self.clock = clock
        self.server_clock = ServerClock.loads(cfg.server_clock, fixed=cfg.server_time_offset)
        self._mismatch: float | None = None
        self.clock_changed = False  # learnt something since the last status: push it now (survive a crash)
        self._watched: tuple[str, ...] = ()
        self._last_quote: dict[str, tuple[float, float]] = {}
        self._fillings: dict[str, list[int]] = {}
        self._api_refused = False  # last order_send: None with -8 (trading from Python refused)
        self._refused_while_disabled = False  # ... while terminal_info().tradeapi_disabled said so
        self._reselected: dict[str, None] = {}
        self._learnable: tuple[str, ...] = ()  # selected symbols whose ticks may show the server's clock
        self._learn_ticks: dict[str, tuple[float, float]] = {}
        self._handlers: dict[type, Callable[[Any], Result]] = {
            PingReq: self.ping,
            AccountReq: self.account,
            PositionsReq: self.positions,
            FindReq: self.find,
            OpenReq: self.open,
            CloseReq: self.close,
            WatchReq: self.watch,
        }

    # -- start ---------------------------------------------------------------------------------------------

    def last_error_text(self) -> str:
        code, text = self.mt5.last_error()
        return f"{text} (last_error {code})"

    def start(self) -> ReadyInfo:
        cfg, mt5 = self.cfg, self.mt5
        kwargs: dict[str, Any] = {"login": cfg.login, "timeout": cfg.init_timeout_ms}
        if cfg.server:
            kwargs["server"] = cfg.server
        if cfg.password is not None:
            kwargs["password"] = cfg.password
        ok = mt5.initialize(cfg.path, **kwargs) if cfg.path else mt5.initialize(**kwargs)
        if not ok:
            code, text = mt5.last_error()
            where = f"terminal at {cfg.path}" if cfg.path else "the default MT5 terminal"
            raise StartFailure(
                f"initialize() of {where} for login {cfg.login} failed: {text} (last_error {code})",
                fatal=code == _AUTH_FAILED,
            )
        account = mt5.account_info()
        if account is None:
            raise StartFailure(
                f"account_info() failed after initialize: {self.last_error_text()}", fatal=False
            )
        if int(account.login) != cfg.login:
            mt5.shutdown()
            raise StartFailure(
                f"the terminal is logged in to account {account.login}, not the configured {cfg.login}: "
                "fix 'login' (or the terminal path) in the config",
                fatal=True,
            )
        if int(account.margin_mode) != _MARGIN_MODE_HEDGING:
            mt5.shutdown()
            raise StartFailure(
                f"account {cfg.login} is not a hedging account (margin_mode {account.margin_mode}): "
                "hedge-agent needs a hedging account, where every order is its own position",
                fatal=True,
            )
        missing = tuple(s for s in cfg.symbols if not mt5.symbol_select(s, True))
        self._learnable = tuple(s for s in cfg.symbols if s not in missing)
        return ReadyInfo(int(account.login), str(account.server), missing)

    # -- requests ------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Result:
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"unknown worker request {type(request).__name__}")
        return handler(request)

    def ping(self, _: PingReq) -> Pong:
        return Pong()

    def account(self, _: AccountReq) -> AccountReply:
        a = self.mt5.account_info()
        if a is None:
            raise RuntimeError(f"account_info() failed: {self.last_error_text()}")
        t = self.mt5.terminal_info()
        allowed = t is None or (bool(t.trade_allowed) and not bool(t.tradeapi_disabled))
        return AccountReply(
            login=int(a.login),
            balance=float(a.balance),
            credit=float(a.credit),
            equity=float(a.equity),
            margin=float(a.margin),
            margin_level=float(a.margin_level) if a.margin else None,
            trade_allowed=bool(a.trade_allowed and a.trade_expert and allowed),
            currency=str(a.currency),
        )

    def watch(self, req: WatchReq) -> WatchReply:
        missing = tuple(s for s in req.symbols if not self.mt5.symbol_select(s, True))
        self._watched = tuple(s for s in req.symbols if s not in missing)
        self._last_quote.clear()  # a (re)watched symbol's first quote always goes out
        self._reselected.clear()
        return WatchReply(missing)

    def _read(self, call: str, value: Any) -> Any:
        """``value`` of a read; None is "nothing" only when last_error() says success (some builds answer
        an empty selection that way), otherwise :class:`_CallFailed`."""
        if value is not None:
            return value
        code, text = self.mt5.last_error()
        if code != _RES_S_OK:
            raise _CallFailed(call, code, text)
        return ()

    def positions(self, _: PositionsReq) -> PositionsReply:
        rows = self._read("positions_get()", self.mt5.positions_get())
        return PositionsReply(tuple(self._position(p) for p in rows))

    def _position(self, p: Any) -> PositionRow:
        return PositionRow(
            ticket=int(p.ticket),
            symbol=str(p.symbol),
            side="BUY" if int(p.type) == self.mt5.POSITION_TYPE_BUY else "SELL",
            volume=float(p.volume),
            open_price=float(p.price_open),
            open_time=self._utc(p.time_msc),
            magic=int(p.magic),
            comment=str(p.comment),
        )

    def find(self, req: FindReq) -> FindReply:
        """Positions opened or closed by an order with ``magic``: open ones from positions_get, closed ones
        from the deal history of the last ``history_days``."""
        mt5, magic = self.mt5, req.magic
        positions = self._read("positions_get()", mt5.positions_get())
        open_by_ticket = {int(p.ticket): p for p in positions}
        now = self.server_clock.to_server(self.clock())
        span = self.cfg.history_days * 86_400
        deals = self._read(
            "history_deals_get(from, to)", mt5.history_deals_get(int(now - span), int(now + 2 * 86_400))
        )
        tickets: dict[int, None] = {int(d.position_id): None for d in deals if int(d.magic) == magic}
        tickets.update({t: None for t, p in open_by_ticket.items() if int(p.magic) == magic})
        trades = []
        for ticket in tickets:
            own = self._read(f"history_deals_get(position={ticket})", mt5.history_deals_get(position=ticket))
            trades.append(
                self._trade(ticket, open_by_ticket.get(ticket), sorted(own, key=lambda d: d.time_msc))
            )
        return FindReply(tuple(trades))

    def _trade(self, ticket: int, pos: Any, deals: list[Any]) -> TradeRow:
        entry = next((d for d in deals if int(d.entry) == _DEAL_ENTRY_IN), None)
        if pos is not None:
            p = self._position(pos)
            # the entry deal's number settles a time in the hour a DST switch back repeats
            opened = self._utc(entry.time_msc, entry.ticket) if entry is not None else p.open_time
            return TradeRow(
                p.ticket, p.symbol, p.side, p.volume, p.open_price, opened, p.magic, p.comment, False
            )
        if entry is None:  # opened before the history window: describe it from its closing deals
            entry = deals[0]
        outs = [d for d in deals if int(d.entry) != _DEAL_ENTRY_IN]
        last = outs[-1] if outs else entry
        return TradeRow(
            ticket=ticket,
            symbol=str(entry.symbol),
            side="BUY" if int(entry.type) == self.mt5.DEAL_TYPE_BUY else "SELL",
            volume=round(sum(float(d.volume) for d in outs), 8) or float(entry.volume),
            open_price=float(entry.price),
            open_time=self._utc(entry.time_msc, entry.ticket),
            magic=int(entry.magic),
            comment=str(entry.comment),
            closed=True,
            close_price=float(last.price),
            close_time=self._utc(last.time_msc, last.ticket),
            close_magic=None if int(last.reason) in _BROKER_REASONS else int(last.magic) or None,
            close_reason=_CLOSE_REASONS.get(int(last.reason), "closed manually"),
        )

    # -- orders --------------------------------------------------------------------------------------------

    def _tick(self, symbol: str) -> Any:
        """The symbol's tick, selecting it into Market Watch if needed; a :class:`SymbolMissing` when the
        broker has no such symbol, a :class:`NotSent` when the terminal cannot be asked."""
        mt5 = self.mt5
        tick = mt5.symbol_info_tick(symbol)
        if tick is not None:
            return tick
        code, text = mt5.last_error()
        if code in _IPC_ERRORS:
            return NotSent(code, f"symbol_info_tick({symbol}) failed: {text} (last_error {code})")
        if mt5.symbol_select(symbol, True):
            return mt5.symbol_info_tick(symbol)
        code, text = mt5.last_error()
        if code in _IPC_ERRORS:
            return NotSent(code, f"symbol_select({symbol}) failed: {text} (last_error {code})")
        if mt5.symbol_info(symbol) is not None:  # the broker has it, it just cannot be shown now
            return None
        return SymbolMissing(symbol, f"the broker has no symbol {symbol!r}: {text} (last_error {code})")

    def open(self, req: OpenReq) -> OrderReply:
        mt5 = self.mt5
        buy = req.side == "BUY"
        tick = self._tick(req.symbol)
        if isinstance(tick, NotSent | SymbolMissing):
            return tick
        if tick is None or not (tick.bid > 0 and tick.ask > 0):
            return OrderCode(_PRICE_OFF, f"no prices for {req.symbol}")
        price = float(tick.ask if buy else tick.bid)
        request = {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": req.symbol,
            "volume": float(req.volume),
            "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
            "price": price,
            "deviation": self.cfg.deviation,
            "magic": req.magic,
            "comment": req.comment,
            "type_time": mt5.ORDER_TIME_GTC,
        }
        if req.stop_distance:
            sl = self._protective_stop(req, tick, price)
            if isinstance(sl, OrderCode | NotSent):
                return sl
            request["sl"] = sl
        return self._send(req.symbol, request, position=None)

    def _protective_stop(self, req: OpenReq, tick: Any, price: float) -> float | OrderCode | NotSent:
        """The ``sl`` of the open (MqlTradeRequest.sl, mt5ordersend_py): ``stop_distance`` below the ask of
        a BUY / above the bid of a SELL, on the symbol's digits. Checked against SYMBOL_TRADE_STOPS_LEVEL
        (mt5symbolinfo_py; "Requirements and Limitations in Making Trades": Bid - SL >= StopsLevel for a
        buy, SL - Ask >= StopsLevel for a sell) before anything is sent: a nearer stop would be refused
        with 10016 anyway, and this says by how much."""
        assert req.stop_distance is not None
        try:
            info = self._read(f"symbol_info({req.symbol})", self.mt5.symbol_info(req.symbol))
        except _CallFailed as e:
            return NotSent(e.code, str(e))
        if info is None:
            return OrderCode(_INVALID, f"symbol_info({req.symbol}) gave nothing: no protective stop")
        buy = req.side == "BUY"
        digits, point = int(info.digits), float(info.point)
        sl = protective_stop_price(Side(req.side), price, req.stop_distance, digits)
        gap = round(((float(tick.bid) - sl) if buy else (sl - float(tick.ask))) / point)
        level = int(info.trade_stops_level)
        if gap < max(1, level):
            where = "bid" if buy else "ask"
            return OrderCode(
                _INVALID_STOPS,
                f"protective stop {sl:.{digits}f} would be {gap} points from the {where} "
                f"{float(tick.bid if buy else tick.ask):.{digits}f}; the broker's minimum for "
                f"{req.symbol} (SYMBOL_TRADE_STOPS_LEVEL) is {level} points: nothing was sent",
            )
        return sl

    def close(self, req: CloseReq) -> OrderReply:
        mt5, ticket = self.mt5, req.ticket
        try:
            found = self._read(f"positions_get(ticket={ticket})", mt5.positions_get(ticket=ticket))
            if not found:
                # gone: closed already (it has deals) or never ours; a failed read is neither
                history = self._read(
                    f"history_deals_get(position={ticket})", mt5.history_deals_get(position=ticket)
                )
                if history:
                    return OrderCode(_POSITION_CLOSED, f"position {ticket} is already closed")
                return OrderCode(_INVALID, f"no position {ticket} on this account")
        except _CallFailed as e:
            return NotSent(e.code, str(e))
        pos = found[0]
        closing_buy = int(pos.type) == mt5.POSITION_TYPE_SELL
        tick = self._tick(str(pos.symbol))
        if isinstance(tick, NotSent | SymbolMissing):
            return tick
        if tick is None or not (tick.bid > 0 and tick.ask > 0):
            return OrderCode(_PRICE_OFF, f"no prices for {pos.symbol}")
        # the position's volume now: a partial close by the broker (stop-out) or by hand leaves less than
        # the caller opened, and asking for more is refused (10038) leaving the rest open
        volume = min(float(req.volume), float(pos.volume))
        request = {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": pos.symbol,
            "volume": volume,
            "type": mt5.ORDER_TYPE_BUY if closing_buy else mt5.ORDER_TYPE_SELL,
            "position": int(pos.ticket),
            "price": float(tick.ask if closing_buy else tick.bid),
            "deviation": self.cfg.deviation,
            "magic": req.magic,
            "comment": req.comment,
            "type_time": mt5.ORDER_TIME_GTC,
        }
        return self._send(str(pos.symbol), request, position=int(pos.ticket))

    def _filling_modes(self, symbol: str) -> list[int]:
        """Filling modes to try, allowed ones first (symbol_info().filling_mode is a SYMBOL_FILLING_* mask);
        RETURN last, as some servers accept it whatever the mask says."""
        if symbol not in self._fillings:
            mt5 = self.mt5
            info = mt5.symbol_info(symbol)
            mask = int(info.filling_mode) if info is not None else 0
            modes = [
                mode for bit, mode in ((1, mt5.ORDER_FILLING_FOK), (2, mt5.ORDER_FILLING_IOC)) if mask & bit
            ]
            self._fillings[symbol] = [*modes, mt5.ORDER_FILLING_RETURN]
        return self._fillings[symbol]

    def _send(self, symbol: str, request: dict[str, Any], position: int | None) -> OrderReply:
        mt5 = self.mt5
        modes = self._filling_modes(symbol)
        result = None
        for i, mode in enumerate(modes):
            result = mt5.order_send({**request, "type_filling": mode})
            if result is None:  # what last_error() says decides whether it may have left (never retry here)
                code, text = mt5.last_error()
                self._api_refused = code == _AUTO_TRADING_DISABLED
                if self._api_refused:
                    t = mt5.terminal_info()
                    self._refused_while_disabled = t is not None and bool(t.tradeapi_disabled)
                return OrderNone(code, f"order_send returned None: {text} (last_error {code})")
            self._api_refused = False
            if int(result.retcode) != _INVALID_FILL:
                if i:  # remember what works for this symbol
                    self._fillings[symbol] = [mode, *(m for m in modes if m != mode)]
                break
        assert result is not None
        code = int(result.retcode)
        if code not in (_DONE, _DONE_PARTIAL):
            return OrderCode(code, str(result.comment))
        order = int(result.order)
        deal = self._our_deal(order, int(result.deal))
        if deal is None:  # not in the terminal's history yet: describe the fill from the result
            ticket = position or self._position_of_order(order) or order
            if not ticket:
                return OrderCode(_PLACED, "executed without a deal or order ticket")
            return OrderFilled(ticket, float(result.price), self.clock(), float(result.volume), code)
        self._observe(deal.time_msc, own_deal=int(deal.ticket))  # our own fill: as fresh a "now" as there is
        return OrderFilled(
            ticket=position or int(deal.position_id),
            price=float(deal.price),
            time=self._utc(deal.time_msc, deal.ticket),
            volume=float(deal.volume),
            code=code,
        )

    def _our_deal(self, order: int, deal_ticket: int) -> Any:
        """The deal our order produced: ``history_deals_get(ticket=ORDER)`` (the filter is DEAL_ORDER, never
        a deal number), the one numbered ``deal_ticket`` when the order made several."""
        if not order:
            return None
        deadline = time.monotonic() + self.cfg.deal_wait
        while True:
            deals = self.mt5.history_deals_get(ticket=order)
            mine = [d for d in deals or () if int(d.order) == order]
            if mine:
                return next((d for d in mine if int(d.ticket) == deal_ticket), mine[0])
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def _position_of_order(self, order: int) -> int | None:
        """The open position our order opened, by POSITION_IDENTIFIER (the opening order's ticket)."""
        positions = self.mt5.positions_get()
        for p in positions or ():
            if int(p.identifier) == order:
                return int(p.ticket)
        return None

    # -- background ----------------------------------------------------------------------------------------

    def poll_quotes(self) -> tuple[Quote, ...]:
        """Watched symbols whose bid or ask changed since the last poll (and, while the server clock is
        unknown, a look at every selected symbol: the first one seen changing tells the clock)."""
        if not self.server_clock.known:
            self._learn_clock()
        changed = []
        for name in self._watched:
            tick = self.mt5.symbol_info_tick(name)
            if tick is None:
                continue  # not selected any more, or the terminal is away: status() looks into it
            key = (float(tick.bid), float(tick.ask))
            previous = self._last_quote.get(name)
            if previous != key:
                self._last_quote[name] = key
                if previous is not None:  # seen changing, so fresh (a first look may be hours old)
                    self._observe(tick.time_msc)
                changed.append(Quote(name, key[0], key[1], self._utc(tick.time_msc)))
        return tuple(changed)

    def _learn_clock(self) -> None:
        for name in self._learnable:
            if name in self._watched:
                continue  # its own polling observes it
            tick = self.mt5.symbol_info_tick(name)
            if tick is None:
                continue
            key = (float(tick.bid), float(tick.ask))
            if self._learn_ticks.setdefault(name, key) != key:
                self._learn_ticks[name] = key
                self._observe(tick.time_msc)

    def _market_watch(self) -> tuple[str, ...]:
        """Put back into Market Watch every watched symbol someone removed; the ones that cannot be."""
        unavailable = []
        for name in self._watched:
            info = self.mt5.symbol_info(name)
            if info is not None and bool(info.select):
                continue
            if info is None and self.mt5.last_error()[0] in _IPC_ERRORS:
                continue  # the terminal is away: status() reports that
            if self.mt5.symbol_select(name, True):
                self._reselected[name] = None
                self._last_quote.pop(name, None)
            else:
                unavailable.append(name)
        return tuple(unavailable)

    def status(self) -> Status | None:
        """The terminal's state, or None when the terminal no longer answers."""
        t = self.mt5.terminal_info()
        a = self.mt5.account_info() if t is not None else None
        if t is None or a is None:
            return None
        self.clock_changed = False
        unavailable = self._market_watch()
        if self._api_refused and self._refused_while_disabled and not bool(t.tradeapi_disabled):
            self._api_refused = False  # the user fixed what refused it; the next order will tell
        return Status(
            connected=bool(t.connected),
            algo_trading=bool(t.trade_allowed),
            tradeapi_disabled=bool(t.tradeapi_disabled),
            account_trade_allowed=bool(a.trade_allowed),
            expert_allowed=bool(a.trade_expert),
            api_refused=self._api_refused,
            reselected=tuple(self._reselected),
            unavailable=unavailable,
            server_clock=self.server_clock.dumps(),
            server_offset=self.server_clock.current,
            clock_mismatch=self._mismatch,
        )

    def _utc(self, time_msc: int, deal: int | None = None) -> float:
        return self.server_clock.to_utc(int(time_msc) / 1000.0, int(deal) if deal is not None else None)

    def _observe(self, time_msc: int, own_deal: int | None = None) -> None:
        server_ts, now = int(time_msc) / 1000.0, self.clock()
        if self.server_clock.observe(server_ts, now):
            self.clock_changed = True
            if self.server_clock.switched_back:
                self._mark_switch_back(server_ts, own_deal)
        if self.server_clock.fixed is not None:
            self._mismatch = self.server_clock.mismatch(server_ts, now)

    def _mark_switch_back(self, server_now: float, own_deal: int | None) -> None:
        """The clock just moved back: keep the highest deal number made so far (deals only grow), so a deal
        stamped in the repeated hour is read with the offset it was made under."""
        span = 6 * 3600
        deals = self.mt5.history_deals_get(int(server_now - span), int(server_now + span))
        if deals is None:
            return  # cannot tell: the repeated hour is read with the new offset (documented)
        before = (int(d.ticket) for d in deals if int(d.ticket) != own_deal)  # ours shows the new clock
        self.server_clock.mark(max(before, default=0))


def serve(conn: Connection, worker: Worker) -> None:
    """Answer calls in order; between them poll quotes and the terminal's state, pushing changes."""
    cfg = worker.cfg
    next_poll = next_status = time.monotonic()
    last_status: Status | None = None
    while True:
        wait = max(0.0, min(next_poll, next_status) - time.monotonic())
        if conn.poll(wait):
            msg = conn.recv()
            if isinstance(msg, Stop):
                return
            if isinstance(msg, Call):
                result: Result | WorkerFailure
                try:
                    result = worker.handle(msg.request)
                except Exception as e:  # reported to the agent, which decides; the worker goes on
                    result = WorkerFailure(f"{type(e).__name__}: {e}")
                conn.send(Reply(msg.request_id, result))
        now = time.monotonic()
        if now >= next_poll:
            quotes = worker.poll_quotes()
            if quotes:
                conn.send(Quotes(quotes))
            next_poll = now + cfg.poll_interval
        if now >= next_status or worker.clock_changed:
            status = worker.status()
            if status is None:
                conn.send(Lost(f"the terminal stopped answering: {worker.last_error_text()}"))
                return
            if status != last_status:
                conn.send(StatusMsg(status))
                last_status = status
            next_status = now + cfg.status_interval


def main(conn: Connection, cfg: WorkerConfig) -> None:
    """Spawn target: import MetaTrader5 here (only here), start, serve until told to stop or orphaned."""
    os.environ.update(cfg.env)
    sys.path[:0] = list(cfg.extra_sys_path)
    try:
        import MetaTrader5 as mt5
    except ImportError as e:
        conn.send(
            StartFailed(
                f"the MetaTrader5 package is not available in this Python ({e}); it runs on Windows",
                fatal=True,
            )
        )
        return
    worker = Worker(mt5, cfg)
    try:
        try:
            info = worker.start()
        except StartFailure as e:
            conn.send(StartFailed(str(e), fatal=e.fatal))
            return
        conn.send(Ready(info))
        serve(conn, worker)
    except (EOFError, OSError, BrokenPipeError):
        pass  # the agent is gone: nothing to report to
    finally:
        mt5.shutdown()
        conn.close()
