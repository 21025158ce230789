"""The MT5 worker process: owns one terminal through the ``MetaTrader5`` package and serves the agent.

``MetaTrader5`` holds the GIL during every call and binds its process to one terminal, so each terminal
gets its own process (spawned) and every call to it is made from this process's single thread, in order.
The package is imported in :func:`main` only, never at module level: the agent's process imports this
module (for :func:`main` as the spawn target) and must never load the Windows-only package.

:class:`Worker` holds the MetaTrader5 logic (orders, filling modes, history look-ups) over an injected
module object, so it also runs in-process against the fake package in tests.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from .protocol import Status, WorkerConfig

# MT5 constants used here, with their documented values (the module object provides the same names)
_DONE = 10009
_DONE_PARTIAL = 10010
_PLACED = 10008
_INVALID = 10013
_PRICE_OFF = 10021
_INVALID_FILL = 10030
_POSITION_CLOSED = 10036
_AUTH_FAILED = -6
_RES_S_OK = 1
_MARGIN_MODE_HEDGING = 2
_DEAL_ENTRY_IN = 0

_CLOSE_REASONS = {4: "stop loss", 5: "take profit", 6: "stop out", 3: "closed by expert"}


class StartFailure(Exception):
    """The worker could not start. ``fatal``: retrying will not help (wrong account, bad credentials)."""

    def __init__(self, message: str, *, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class Worker:
    def __init__(self, mt5: Any, cfg: WorkerConfig, clock: Callable[[], float] = time.time) -> None:
        self.mt5 = mt5
        self.cfg = cfg
        self.clock = clock
        self.offset = cfg.server_time_offset or 0.0
        self._estimate_offset = cfg.server_time_offset is None
        self._watched: tuple[str, ...] = ()
        self._last_quote: dict[str, tuple[float, float]] = {}
        self._fillings: dict[str, list[int]] = {}

    # -- start ---------------------------------------------------------------------------------------------

    def last_error_text(self) -> str:
        code, text = self.mt5.last_error()
        return f"{text} (last_error {code})"

    def start(self) -> dict[str, Any]:
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
        missing = [s for s in cfg.symbols if not mt5.symbol_select(s, True)]
        return {"login": int(account.login), "server": account.server, "missing_symbols": missing}

    # -- requests ------------------------------------------------------------------------------------------

    def handle(self, op: str, args: dict[str, Any]) -> Any:
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise ValueError(f"unknown worker op {op!r}")
        return handler(**args)

    def op_ping(self) -> str:
        return "pong"

    def op_account(self) -> dict[str, Any]:
        a = self.mt5.account_info()
        if a is None:
            raise RuntimeError(f"account_info() failed: {self.last_error_text()}")
        t = self.mt5.terminal_info()
        return {
            "login": int(a.login),
            "balance": float(a.balance),
            "credit": float(a.credit),
            "equity": float(a.equity),
            "margin": float(a.margin),
            "margin_level": float(a.margin_level) if a.margin else None,
            "trade_allowed": bool(a.trade_allowed and a.trade_expert and (t is None or t.trade_allowed)),
            "currency": str(a.currency),
        }

    def op_watch(self, symbols: list[str]) -> dict[str, Any]:
        missing = [s for s in symbols if not self.mt5.symbol_select(s, True)]
        self._watched = tuple(s for s in symbols if s not in missing)
        self._last_quote.clear()  # a (re)watched symbol's first quote always goes out
        return {"missing": missing}

    def op_positions(self) -> list[dict[str, Any]]:
        positions = self.mt5.positions_get()
        if positions is None:
            raise RuntimeError(f"positions_get() failed: {self.last_error_text()}")
        return [self._position(p) for p in positions]

    def _position(self, p: Any) -> dict[str, Any]:
        return {
            "ticket": int(p.ticket),
            "symbol": str(p.symbol),
            "side": "BUY" if int(p.type) == self.mt5.POSITION_TYPE_BUY else "SELL",
            "volume": float(p.volume),
            "open_price": float(p.price_open),
            "open_time": self._utc(p.time_msc),
            "magic": int(p.magic),
            "comment": str(p.comment),
        }

    def op_find(self, magic: int) -> list[dict[str, Any]]:
        """Positions opened or closed by an order with ``magic``: open ones from positions_get, closed ones
        from the deal history of the last ``history_days``."""
        mt5 = self.mt5
        positions = mt5.positions_get()
        if positions is None:
            raise RuntimeError(f"positions_get() failed: {self.last_error_text()}")
        open_by_ticket = {int(p.ticket): p for p in positions}
        now = self.clock() + self.offset
        deals = mt5.history_deals_get(int(now - self.cfg.history_days * 86_400), int(now + 2 * 86_400))
        if deals is None:
            raise RuntimeError(f"history_deals_get() failed: {self.last_error_text()}")
        tickets: dict[int, None] = {int(d.position_id): None for d in deals if int(d.magic) == magic}
        tickets.update({t: None for t, p in open_by_ticket.items() if int(p.magic) == magic})
        records = []
        for ticket in tickets:
            own = mt5.history_deals_get(position=ticket)
            if own is None:
                raise RuntimeError(f"history_deals_get(position={ticket}) failed: {self.last_error_text()}")
            records.append(
                self._record(ticket, open_by_ticket.get(ticket), sorted(own, key=lambda d: d.time_msc))
            )
        return records

    def _record(self, ticket: int, pos: Any, deals: list[Any]) -> dict[str, Any]:
        entry = next((d for d in deals if int(d.entry) == _DEAL_ENTRY_IN), None)
        if pos is not None:
            rec = self._position(pos)
            rec.update(closed=False, close_price=None, close_time=None, close_magic=None, close_reason=None)
            return rec
        if entry is None:  # opened before the history window: describe it from its closing deals
            entry = deals[0]
        outs = [d for d in deals if int(d.entry) != _DEAL_ENTRY_IN]
        last = outs[-1] if outs else entry
        return {
            "ticket": ticket,
            "symbol": str(entry.symbol),
            "side": "BUY" if int(entry.type) == self.mt5.DEAL_TYPE_BUY else "SELL",
            "volume": round(sum(float(d.volume) for d in outs), 8) or float(entry.volume),
            "open_price": float(entry.price),
            "open_time": self._utc(entry.time_msc),
            "magic": int(entry.magic),
            "comment": str(entry.comment),
            "closed": True,
            "close_price": float(last.price),
            "close_time": self._utc(last.time_msc),
            "close_magic": int(last.magic) or None,
            "close_reason": _CLOSE_REASONS.get(int(last.reason), "closed manually"),
        }

    def op_open(self, symbol: str, side: str, volume: float, magic: int, comment: str) -> dict[str, Any]:
        mt5 = self.mt5
        buy = side == "BUY"
        tick = mt5.symbol_info_tick(symbol)
        if tick is None and mt5.symbol_select(symbol, True):
            tick = mt5.symbol_info_tick(symbol)
        if tick is None or not (tick.bid > 0 and tick.ask > 0):
            return {"kind": "code", "code": _PRICE_OFF, "comment": f"no prices for {symbol}"}
        request = {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": symbol,
            "volume": float(volume),
            "type": mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
            "price": float(tick.ask if buy else tick.bid),
            "deviation": self.cfg.deviation,
            "magic": magic,
            "comment": comment[:29],
            "type_time": mt5.ORDER_TIME_GTC,
        }
        return self._send(symbol, request)

    def op_close(self, ticket: int, volume: float, magic: int, comment: str) -> dict[str, Any]:
        mt5 = self.mt5
        found = mt5.positions_get(ticket=ticket)
        if found is None:
            code, _ = mt5.last_error()
            if code != _RES_S_OK:  # some builds answer None + "Success" for "no such position"
                return {
                    "kind": "not_sent",
                    "comment": f"positions_get(ticket={ticket}) failed: {self.last_error_text()}",
                }
            found = ()
        if not found:
            history = mt5.history_deals_get(position=ticket)
            if history:
                return {
                    "kind": "code",
                    "code": _POSITION_CLOSED,
                    "comment": f"position {ticket} is already closed",
                }
            return {"kind": "code", "code": _INVALID, "comment": f"no position {ticket} on this account"}
        pos = found[0]
        closing_buy = int(pos.type) == mt5.POSITION_TYPE_SELL
        tick = mt5.symbol_info_tick(pos.symbol)
        if tick is None or not (tick.bid > 0 and tick.ask > 0):
            return {"kind": "code", "code": _PRICE_OFF, "comment": f"no prices for {pos.symbol}"}
        request = {
            "action": mt5.TRADE_ACTION_DEAL,
            "symbol": pos.symbol,
            "volume": float(volume),
            "type": mt5.ORDER_TYPE_BUY if closing_buy else mt5.ORDER_TYPE_SELL,
            "position": int(pos.ticket),
            "price": float(tick.ask if closing_buy else tick.bid),
            "deviation": self.cfg.deviation,
            "magic": magic,
            "comment": comment[:29],
            "type_time": mt5.ORDER_TIME_GTC,
        }
        return self._send(pos.symbol, request)

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

    def _send(self, symbol: str, request: dict[str, Any]) -> dict[str, Any]:
        mt5 = self.mt5
        modes = self._filling_modes(symbol)
        result = None
        for i, mode in enumerate(modes):
            result = mt5.order_send({**request, "type_filling": mode})
            if result is None:  # may or may not have reached the server: never try again here
                code, text = mt5.last_error()
                return {"kind": "none", "error_code": code, "comment": f"order_send returned None: {text}"}
            if int(result.retcode) != _INVALID_FILL:
                if i:  # remember what works for this symbol
                    self._fillings[symbol] = [mode, *(m for m in modes if m != mode)]
                break
        assert result is not None
        code = int(result.retcode)
        if code not in (_DONE, _DONE_PARTIAL):
            return {"kind": "code", "code": code, "comment": str(result.comment)}
        deal = None
        if int(result.deal):
            deals = mt5.history_deals_get(ticket=int(result.deal))
            deal = deals[0] if deals else None
        if deal is None:  # the deal is not in history yet: fall back on the result
            ticket = int(request.get("position") or result.order)
            if not ticket:
                return {"kind": "code", "code": _PLACED, "comment": "executed without a deal or order ticket"}
            return {
                "kind": "filled",
                "ticket": ticket,
                "price": float(result.price),
                "time": self.clock(),
                "volume": float(result.volume),
                "code": code,
            }
        self._observe_server_time(deal.time_msc)  # our own fill: as fresh as a time can be
        return {
            "kind": "filled",
            "ticket": int(deal.position_id),
            "price": float(deal.price),
            "time": self._utc(deal.time_msc),
            "volume": float(deal.volume),
            "code": code,
        }

    # -- background ----------------------------------------------------------------------------------------

    def poll_quotes(self) -> list[tuple[str, float, float, float]]:
        """Watched symbols whose bid or ask changed since the last poll."""
        changed = []
        for name in self._watched:
            tick = self.mt5.symbol_info_tick(name)
            if tick is None:
                continue
            key = (float(tick.bid), float(tick.ask))
            previous = self._last_quote.get(name)
            if previous != key:
                self._last_quote[name] = key
                if previous is not None:  # seen changing, so fresh (a first look may be hours old)
                    self._observe_server_time(tick.time_msc)
                changed.append((name, key[0], key[1], self._utc(tick.time_msc)))
        return changed

    def status(self) -> Status | None:
        """The terminal's state, or None when the terminal no longer answers."""
        t = self.mt5.terminal_info()
        a = self.mt5.account_info() if t is not None else None
        if t is None or a is None:
            return None
        return Status(
            bool(t.connected), bool(t.trade_allowed), bool(a.trade_allowed), bool(a.trade_expert), self.offset
        )

    def _utc(self, time_msc: int) -> float:
        return int(time_msc) / 1000.0 - self.offset

    def _observe_server_time(self, time_msc: int) -> None:
        """MT5 reports times on the trade server's clock. Estimate its offset from UTC from a time known
        to be "now" (a fill of ours, a tick seen changing): a multiple of 15 minutes, within 2 minutes."""
        if not self._estimate_offset:
            return
        raw = int(time_msc) / 1000.0 - self.clock()
        estimate = round(raw / 900.0) * 900.0
        if abs(raw - estimate) < 120 and estimate != self.offset:
            self.offset = estimate


def serve(conn: Connection, worker: Worker) -> None:
    """Answer calls in order; between them poll quotes and the terminal's state, pushing changes."""
    cfg = worker.cfg
    next_poll = next_status = time.monotonic()
    last_status: Status | None = None
    while True:
        wait = max(0.0, min(next_poll, next_status) - time.monotonic())
        if conn.poll(wait):
            msg = conn.recv()
            if msg[0] == "stop":
                return
            _, request_id, op, args = msg
            try:
                conn.send(("reply", request_id, True, worker.handle(op, args)))
            except Exception as e:  # reported to the agent, which decides; the worker goes on
                conn.send(("reply", request_id, False, f"{type(e).__name__}: {e}"))
        now = time.monotonic()
        if now >= next_poll:
            quotes = worker.poll_quotes()
            if quotes:
                conn.send(("quotes", quotes))
            next_poll = now + cfg.poll_interval
        if now >= next_status:
            status = worker.status()
            if status is None:
                conn.send(("lost", f"the terminal stopped answering: {worker.last_error_text()}"))
                return
            if status != last_status:
                conn.send(("status", status))
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
            ("fatal", f"the MetaTrader5 package is not available in this Python ({e}); it runs on Windows")
        )
        return
    worker = Worker(mt5, cfg)
    try:
        try:
            info = worker.start()
        except StartFailure as e:
            conn.send(("fatal" if e.fatal else "failed", str(e)))
            return
        conn.send(("ready", info))
        serve(conn, worker)
    except (EOFError, OSError, BrokenPipeError):
        pass  # the agent is gone: nothing to report to
    finally:
        mt5.shutdown()
        conn.close()
