"""An in-process broker simulator: prices, a hedging (or netting) account, market orders, history, a
stop-out, and injectable faults. Synchronous and I/O-free, so it is fast and deterministic; the async
``SimulatedTerminal``, the fake ``MetaTrader5`` package and the MT4 EA emulator all trade on it.

Symbols are the broker's names (``"USDJPY.raw"``); results carry MT5 ``TRADE_RETCODE_*`` values (see
:mod:`hedge_agent.terminals.retcodes`); times are epoch seconds from the injected clock. Every order
request that reaches the broker is kept in :attr:`SimBroker.order_log`, so tests and the demo can count
duplicate orders per tag with :meth:`SimBroker.duplicate_orders`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hedge_agent.domain.enums import Side
from hedge_agent.terminals import retcodes as rc

from .feed import PriceFeed, RandomWalk
from .records import (
    CLOSE_REASONS,
    FAULT_CODES,
    Clock,
    DealEntry,
    DealReason,
    Fault,
    FaultKind,
    OrderLogEntry,
    SimAccount,
    SimAccountConfig,
    SimDeal,
    SimError,
    SimOrder,
    SimPosition,
    SimQuote,
    SimResult,
    SimSymbolSpec,
    SimTrade,
    default_symbols,
)

#: deals the trade server makes by itself (stop loss, take profit, stop-out): never our close order,
#: whatever magic the deal carries
_BROKER_REASONS = frozenset({DealReason.SL, DealReason.TP, DealReason.SO})


@dataclass
class _Pos:
    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    open_time: float
    magic: int
    comment: str
    update_time: float
    sl: int | None = None  # stop-loss in points; None: none


@dataclass
class _Book:
    bid: int
    ask: int
    time: float
    spec: SimSymbolSpec


@dataclass
class _FaultSlot:
    fault: Fault
    left: int


@dataclass
class _Counters:
    order: int = 100_000_000
    deal: int = 200_000_000
    seq: int = 0


@dataclass
class SimBroker:
    """The simulated trade server. Thread-safe (one lock), picklable (the fake MT5 persists it)."""

    symbols: list[SimSymbolSpec] = field(default_factory=default_symbols)
    account_config: SimAccountConfig = field(default_factory=SimAccountConfig)
    seed: int = 0
    clock: Clock = time.time
    feed: PriceFeed | None = None  # default: a RandomWalk over the symbols' volatility
    slippage_points: int = 0  # each fill moves up to this many points either way (seeded)
    ticks_per_second: float = 10.0  # how fast ``advance()`` walks prices

    def __post_init__(self) -> None:
        if not self.symbols:
            raise SimError("SimBroker needs at least one symbol")
        self._lock = threading.RLock()
        self._walk_rng = random.Random(self.seed)
        self._fill_rng = random.Random(self.seed + 1)
        now = self.clock()
        self._books: dict[str, _Book] = {}
        for spec in self.symbols:
            if spec.name in self._books:
                raise SimError(f"symbol {spec.name!r} configured twice")
            bid = round(spec.start_bid * 10**spec.digits)
            self._books[spec.name] = _Book(bid, bid + spec.spread_points, now, spec)
        if self.feed is None:
            self.feed = RandomWalk({s.name: s.volatility_points for s in self.symbols})
        cfg = self.account_config
        self.balance = cfg.balance
        self.credit = cfg.credit
        #: account-level switch (MT5 account_info().trade_allowed / "trade disabled" 10017)
        self.trade_allowed = True
        self.connected = True
        self._closed_markets: set[str] = set()
        self._positions: dict[int, _Pos] = {}
        self._deals: list[SimDeal] = []
        self._deals_by_position: dict[int, list[SimDeal]] = {}
        self._tickets_by_magic: dict[int, dict[int, None]] = {}  # insertion-ordered sets
        self._orders: list[SimOrder] = []
        self._faults: list[_FaultSlot] = []
        self._ids = _Counters()
        self._last_advance = now
        self.order_log: list[OrderLogEntry] = []

    # -- pickling (the lock cannot be pickled) -------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- prices ----------------------------------------------------------------------------------------

    def symbol_names(self) -> list[str]:
        return list(self._books)

    def spec(self, symbol: str) -> SimSymbolSpec:
        return self._book(symbol).spec

    def quote(self, symbol: str) -> SimQuote:
        with self._lock:
            return self._quote(symbol, self._book(symbol))

    def quotes(self) -> dict[str, SimQuote]:
        with self._lock:
            return {name: self._quote(name, book) for name, book in self._books.items()}

    def set_quote(self, symbol: str, bid: float, ask: float | None = None) -> SimQuote:
        """Put a price exactly (tests, scripted demos); ``ask`` defaults to ``bid`` + the spread.
        Runs the stop-out check."""
        with self._lock:
            book = self._book(symbol)
            scale = 10**book.spec.digits
            b = round(bid * scale)
            a = round(ask * scale) if ask is not None else b + book.spec.spread_points
            if not 0 < b <= a:
                raise SimError(f"{symbol}: need 0 < bid <= ask, got bid={bid} ask={ask}")
            book.bid, book.ask, book.time = b, a, self.clock()
            self._stop_losses()
            self._stop_out()
            return self._quote(symbol, book)

    def step(self, n: int = 1) -> list[SimQuote]:
        """Advance the price feed ``n`` steps; returns the latest quote of every symbol that changed."""
        with self._lock:
            changed: dict[str, SimQuote] = {}
            now = self.clock()
            assert self.feed is not None
            for _ in range(n):
                current = {name: (b.bid, b.ask) for name, b in self._books.items()}
                for name, bid, ask in self.feed.next_ticks(current, self._walk_rng):
                    book = self._books[name]
                    if (bid, ask) == (book.bid, book.ask):
                        continue
                    book.bid, book.ask, book.time = bid, ask, now
                    changed[name] = self._quote(name, book)
                if changed:
                    self._stop_losses()
                    self._stop_out()
            return list(changed.values())

    def advance(self, now: float | None = None, max_steps: int = 1_000) -> list[SimQuote]:
        """Walk prices by ``ticks_per_second`` x the time since the last advance (clock time by default).
        Lets callers without a ticker (the fake MT5, the EA emulator) move prices lazily."""
        with self._lock:
            now = self.clock() if now is None else now
            steps = int((now - self._last_advance) * self.ticks_per_second)
            if steps <= 0:
                return []
            if steps > max_steps:  # a long pause: do not replay the whole backlog
                steps, self._last_advance = max_steps, now
            else:
                self._last_advance += steps / self.ticks_per_second
            return self.step(steps)

    # -- switches and faults ---------------------------------------------------------------------------

    def set_market_open(self, symbol: str | None, is_open: bool) -> None:
        """Open or close the market of one symbol (None: every symbol). Closed: orders get 10018."""
        with self._lock:
            names = [self._book(symbol).spec.name] if symbol is not None else list(self._books)
            for name in names:
                (self._closed_markets.discard if is_open else self._closed_markets.add)(name)

    def market_open(self, symbol: str) -> bool:
        return self._book(symbol).spec.name not in self._closed_markets

    def disconnect(self) -> None:
        """The trade server is unreachable: every order gets 10031 until :meth:`reconnect`."""
        self.connected = False

    def reconnect(self) -> None:
        self.connected = True

    def inject(self, fault: Fault) -> None:
        """Queue a fault for the next ``fault.times`` matching orders (faults are consumed in order)."""
        if fault.times < 1:
            raise SimError("Fault.times must be >= 1")
        if fault.symbol is not None:
            self._book(fault.symbol)
        with self._lock:
            self._faults.append(_FaultSlot(fault, fault.times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return [replace(s.fault, times=s.left) for s in self._faults]

    def deposit(self, amount: float) -> None:
        with self._lock:
            self.balance += amount

    # -- orders ----------------------------------------------------------------------------------------

    def open(
        self,
        symbol: str,
        side: Side,
        volume: float,
        *,
        magic: int = 0,
        comment: str = "",
        price: float | None = None,
        deviation: int | None = None,
        request_id: str | None = None,
        sl: float | None = None,
    ) -> SimResult:
        """A market order opening a position (netting account: adding to / reducing the one position).
        ``price`` + ``deviation`` (points): a fill further away than that is a requote (10004). ``sl``: a
        stop-loss price placed with the order (None or 0: none); one on the wrong side of the close-side
        price or nearer to it than ``stops_level_points`` is refused with 10016 (invalid stops). Once
        placed, the broker closes the position when the close-side price reaches it (:meth:`set_quote`,
        :meth:`step`)."""
        with self._lock:
            book = self._book(symbol)
            sl_points = round(sl * 10**book.spec.digits) if sl else None
            refused = (
                self._precheck(book.spec.name, volume)
                or self._stops_check(book, side, sl_points)
                or self._margin_check(book, volume)
            )
            result = refused or self._attempt(
                "open",
                book,
                side,
                price,
                deviation,
                lambda fill: self._execute_open(book, side, volume, fill, magic, comment, sl_points),
            )
            self._log(
                "open", book.spec.name, side, volume, magic, comment, result, result.position, request_id
            )
            return result

    def close(
        self,
        ticket: int,
        volume: float | None = None,
        *,
        magic: int = 0,
        comment: str = "",
        price: float | None = None,
        deviation: int | None = None,
        request_id: str | None = None,
        reason: DealReason | None = None,
    ) -> SimResult:
        """A market order closing ``volume`` (default: all) of position ``ticket``."""
        with self._lock:
            pos = self._positions.get(ticket)
            if pos is None:
                closed = ticket in self._deals_by_position
                code = rc.POSITION_CLOSED if closed else rc.INVALID
                text = "Position already closed" if closed else "Position not found"
                first = self._deals_by_position[ticket][0] if closed else None
                result = SimResult(code, False, text, position=ticket)
                side = first.side.opposite if first else Side.SELL
                self._log(
                    "close",
                    first.symbol if first else "",
                    side,
                    volume or 0.0,
                    magic,
                    comment,
                    result,
                    ticket,
                    request_id,
                )
                return result
            book = self._books[pos.symbol]
            vol = pos.volume if volume is None else volume
            why = reason if reason is not None else (DealReason.EXPERT if magic else DealReason.CLIENT)
            refused = self._precheck(pos.symbol, vol)
            if refused is None and vol > pos.volume + 1e-9:
                refused = SimResult(rc.INVALID_CLOSE_VOLUME, False, "Invalid close volume", position=ticket)
            result = refused or self._attempt(
                "close", book, pos.side.opposite, price, deviation,
                lambda fill: self._execute_close(pos, vol, fill, magic, comment, why),
            )  # fmt: skip
            self._log("close", pos.symbol, pos.side.opposite, vol, magic, comment, result, ticket, request_id)
            return result

    # -- state -----------------------------------------------------------------------------------------

    def positions(self, symbol: str | None = None) -> list[SimPosition]:
        with self._lock:
            return [
                self._position_view(p)
                for p in self._positions.values()
                if symbol is None or p.symbol == symbol
            ]

    def position(self, ticket: int) -> SimPosition | None:
        with self._lock:
            p = self._positions.get(ticket)
            return self._position_view(p) if p else None

    def deals(self) -> list[SimDeal]:
        with self._lock:
            return list(self._deals)

    def history_orders(self) -> list[SimOrder]:
        with self._lock:
            return list(self._orders)

    def find(self, magic: int, comment: str | None = None) -> list[SimTrade]:
        """Positions opened or closed by an order with this magic (and comment, when given), open or in
        history, oldest first."""
        with self._lock:
            found = []
            for ticket in self._tickets_by_magic.get(magic, {}):
                deals = self._deals_by_position[ticket]
                if comment is None or any(d.magic == magic and d.comment == comment for d in deals):
                    found.append(self._trade(ticket))
            return found

    def trade(self, ticket: int) -> SimTrade | None:
        with self._lock:
            if ticket not in self._positions and ticket not in self._deals_by_position:
                return None
            return self._trade(ticket)

    def account(self) -> SimAccount:
        with self._lock:
            cfg = self.account_config
            profit = sum(self._profit(p) for p in self._positions.values())
            margin = sum(self._margin(p) for p in self._positions.values())
            equity = self.balance + self.credit + profit
            return SimAccount(
                login=cfg.login,
                balance=round(self.balance, 2),
                credit=round(self.credit, 2),
                profit=round(profit, 2),
                equity=round(equity, 2),
                margin=round(margin, 2),
                margin_free=round(equity - margin, 2),
                margin_level=round(equity / margin * 100, 2) if margin > 0 else None,
                leverage=cfg.leverage,
                currency=cfg.currency,
                trade_allowed=self.trade_allowed,
                hedging=cfg.hedging,
                stop_out_level=cfg.stop_out_level,
                margin_call_level=cfg.margin_call_level,
                server=cfg.server,
                name=cfg.name,
                company=cfg.company,
            )

    def duplicate_orders(self) -> int:
        """Extra executions for one intent: executed opens beyond the first per (magic, comment), and
        executed closes beyond the first per (position, magic, comment). Manual orders (magic 0) and
        refused requests do not count. A correct agent keeps this at 0."""
        opens: dict[tuple[int, str], int] = {}
        closes: dict[tuple[int, int, str], int] = {}
        with self._lock:
            log = list(self.order_log)
        for e in log:
            if not e.executed or e.magic == 0:
                continue
            if e.action == "open":
                opens[(e.magic, e.comment)] = opens.get((e.magic, e.comment), 0) + 1
            else:
                key = (e.position, e.magic, e.comment)
                closes[key] = closes.get(key, 0) + 1
        return sum(n - 1 for n in opens.values()) + sum(n - 1 for n in closes.values())

    # -- internals -------------------------------------------------------------------------------------

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            raise SimError(
                f"symbol {symbol!r} is not configured on the simulated broker ({sorted(self._books)})"
            )
        return book

    def _quote(self, name: str, book: _Book) -> SimQuote:
        d = book.spec.digits
        return SimQuote(
            name,
            round(book.bid * 10.0**-d, d),
            round(book.ask * 10.0**-d, d),
            book.time,
            name not in self._closed_markets,
        )

    def _price(self, book: _Book, points: int) -> float:
        return round(points * 10.0**-book.spec.digits, book.spec.digits)

    def _precheck(self, name: str, volume: float) -> SimResult | None:
        spec = self._books[name].spec
        if not self.connected:
            return SimResult(rc.CONNECTION, False, "No connection")
        if not self.trade_allowed:
            return SimResult(rc.TRADE_DISABLED, False, "Trade disabled")
        if name in self._closed_markets:
            return SimResult(rc.MARKET_CLOSED, False, "Market closed")
        steps = volume / spec.volume_step
        if (
            not (spec.volume_min - 1e-9 <= volume <= spec.volume_max + 1e-9)
            or abs(steps - round(steps)) > 1e-6
        ):
            return SimResult(rc.INVALID_VOLUME, False, "Invalid volume")
        return None

    def _stops_check(self, book: _Book, side: Side, sl: int | None) -> SimResult | None:
        """MT5 SYMBOL_TRADE_STOPS_LEVEL / MQL4 "Requirements and Limitations in Making Trades": a BUY's
        stop-loss must lie at least the stops level below the Bid (Bid - SL >= StopLevel), a SELL's as far
        above the Ask (SL - Ask >= StopLevel); with a stops level of 0 it must still be beyond the price."""
        if sl is None:
            return None
        gap = book.bid - sl if side is Side.BUY else sl - book.ask
        minimum = max(1, book.spec.stops_level_points)
        if gap >= minimum:
            return None
        where = "Bid" if side is Side.BUY else "Ask"
        text = (
            f"Invalid stops: stop loss {self._price(book, sl)} is {gap} points from the {where}, "
            f"the minimum is {book.spec.stops_level_points} points"
        )
        return SimResult(
            rc.INVALID_STOPS, False, text, bid=self._price(book, book.bid), ask=self._price(book, book.ask)
        )

    def _margin_check(self, book: _Book, volume: float) -> SimResult | None:
        acc = self.account()
        need = self._margin_for(book.spec, volume, book.ask)
        if self.account_config.hedging or not any(
            p.symbol == book.spec.name for p in self._positions.values()
        ):
            if acc.margin_free < need:
                return SimResult(rc.NO_MONEY, False, "No money")
        return None

    def _attempt(
        self,
        action: Literal["open", "close"],
        book: _Book,
        side: Side,
        price: float | None,
        deviation: int | None,
        execute: Callable[[int], SimResult],
    ) -> SimResult:
        """Apply a queued fault or the deviation check, else fill (an injected timeout fills too)."""
        fault_code = self._take_fault(action, book.spec.name)
        fill = self._fill_price(book, side)
        if fault_code is None and price is not None and deviation is not None:
            if abs(fill - round(price * 10**book.spec.digits)) > deviation:
                fault_code = rc.REQUOTE
        if fault_code is not None and fault_code != rc.TIMEOUT:
            return self._refused(fault_code, book)
        result = execute(fill)
        if fault_code == rc.TIMEOUT:
            result = replace(result, code=rc.TIMEOUT, comment="Request timed out")
        return result

    def _take_fault(self, action: str, name: str) -> int | None:
        for slot in self._faults:
            f = slot.fault
            if f.on not in ("any", action) or (f.symbol is not None and f.symbol != name):
                continue
            slot.left -= 1
            if slot.left <= 0:
                self._faults.remove(slot)
            if f.kind is FaultKind.DISCONNECT:
                self.connected = False
            if f.kind is FaultKind.REJECT and f.code is not None:
                return f.code
            return FAULT_CODES[f.kind]
        return None

    def _refused(self, code: int, book: _Book) -> SimResult:
        text = {
            rc.REQUOTE: "Requote",
            rc.CONNECTION: "No connection",
            rc.MARKET_CLOSED: "Market closed",
            rc.TRADE_DISABLED: "Trade disabled",
        }.get(code, rc.mt5(code).reason.capitalize())
        return SimResult(code, False, text, bid=self._price(book, book.bid), ask=self._price(book, book.ask))

    def _fill_price(self, book: _Book, side: Side) -> int:
        base = book.ask if side is Side.BUY else book.bid
        if self.slippage_points:
            base += self._fill_rng.randint(-self.slippage_points, self.slippage_points)
        return max(1, base)

    def _commission(self, volume: float) -> float:
        per_lot = self.account_config.commission_per_lot
        return -per_lot * volume if per_lot else 0.0

    def _add_deal(self, deal: SimDeal) -> None:
        self._deals.append(deal)
        self._deals_by_position.setdefault(deal.position, []).append(deal)
        self._tickets_by_magic.setdefault(deal.magic, {})[deal.position] = None

    def _next_order(self) -> int:
        self._ids.order += 1
        return self._ids.order

    def _next_deal(self) -> int:
        self._ids.deal += 1
        return self._ids.deal

    def _execute_open(
        self, book: _Book, side: Side, volume: float, fill: int, magic: int, comment: str, sl: int | None
    ) -> SimResult:
        now = self.clock()
        price = self._price(book, fill)
        order = self._next_order()
        reason = DealReason.EXPERT if magic else DealReason.CLIENT
        if not self.account_config.hedging:
            existing = next((p for p in self._positions.values() if p.symbol == book.spec.name), None)
            if existing is not None:
                if sl is not None:  # the order's stop-loss becomes the position's
                    existing.sl = sl
                return self._net(existing, book, side, volume, price, order, magic, comment, reason, now)
        pos = _Pos(order, book.spec.name, side, volume, price, now, magic, comment, now, sl)
        self._positions[pos.ticket] = pos
        commission = self._commission(volume)
        self.balance += commission
        deal = self._next_deal()
        self._add_deal(
            SimDeal(
                deal,
                order,
                pos.ticket,
                pos.symbol,
                side,
                DealEntry.IN,
                volume,
                price,
                now,
                magic,
                comment,
                reason,
                0.0,
                commission,
            )
        )
        self._orders.append(
            SimOrder(order, pos.symbol, side, volume, price, now, magic, comment, pos.ticket, reason)
        )
        return self._done(book, order, deal, pos.ticket, price, volume, now)

    def _net(
        self,
        pos: _Pos,
        book: _Book,
        side: Side,
        volume: float,
        price: float,
        order: int,
        magic: int,
        comment: str,
        reason: DealReason,
        now: float,
    ) -> SimResult:
        """Netting: an order on a symbol with a position adds to it, reduces it, or reverses it."""
        self._orders.append(
            SimOrder(order, pos.symbol, side, volume, price, now, magic, comment, pos.ticket, reason)
        )
        deal = self._next_deal()
        if side is pos.side:
            total = pos.volume + volume
            pos.open_price = round((pos.open_price * pos.volume + price * volume) / total, book.spec.digits)
            pos.volume, pos.update_time = round(total, 8), now
            self._add_deal(
                SimDeal(
                    deal,
                    order,
                    pos.ticket,
                    pos.symbol,
                    side,
                    DealEntry.IN,
                    volume,
                    price,
                    now,
                    magic,
                    comment,
                    reason,
                )
            )
            return self._done(book, order, deal, pos.ticket, price, volume, now)
        closing = min(volume, pos.volume)
        profit = self._profit(pos, price, closing)
        self.balance += profit
        entry = DealEntry.OUT if volume <= pos.volume + 1e-9 else DealEntry.INOUT
        self._add_deal(
            SimDeal(
                deal,
                order,
                pos.ticket,
                pos.symbol,
                side,
                entry,
                volume,
                price,
                now,
                magic,
                comment,
                reason,
                round(profit, 2),
            )
        )
        rest = round(pos.volume - volume, 8)
        if rest > 1e-9:
            pos.volume, pos.update_time = rest, now
        elif rest < -1e-9:  # reversed: the position continues the other way
            pos.side, pos.volume, pos.open_price, pos.update_time = side, -rest, price, now
        else:
            del self._positions[pos.ticket]
        return self._done(book, order, deal, pos.ticket, price, volume, now)

    def _execute_close(
        self, pos: _Pos, volume: float, fill: int, magic: int, comment: str, reason: DealReason
    ) -> SimResult:
        book = self._books[pos.symbol]
        now = self.clock()
        price = self._price(book, fill)
        profit = self._profit(pos, price, volume)
        commission = self._commission(volume)
        self.balance += profit + commission
        order, deal = self._next_order(), self._next_deal()
        side = pos.side.opposite
        self._add_deal(
            SimDeal(
                deal,
                order,
                pos.ticket,
                pos.symbol,
                side,
                DealEntry.OUT,
                volume,
                price,
                now,
                magic,
                comment,
                reason,
                round(profit, 2),
                commission,
            )
        )
        self._orders.append(
            SimOrder(order, pos.symbol, side, volume, price, now, magic, comment, pos.ticket, reason)
        )
        rest = round(pos.volume - volume, 8)
        if rest > 1e-9:
            pos.volume, pos.update_time = rest, now
        else:
            del self._positions[pos.ticket]
        return self._done(book, order, deal, pos.ticket, price, volume, now)

    def _done(
        self, book: _Book, order: int, deal: int, position: int, price: float, volume: float, now: float
    ) -> SimResult:
        return SimResult(
            rc.DONE,
            True,
            "Request executed",
            order,
            deal,
            position,
            price,
            volume,
            now,
            self._price(book, book.bid),
            self._price(book, book.ask),
        )

    def _log(
        self,
        action: Literal["open", "close"],
        symbol: str,
        side: Side,
        volume: float,
        magic: int,
        comment: str,
        result: SimResult,
        position: int,
        request_id: str | None,
    ) -> None:
        self._ids.seq += 1
        self.order_log.append(
            OrderLogEntry(
                self._ids.seq,
                self.clock(),
                action,
                symbol,
                side,
                volume,
                magic,
                comment,
                result.code,
                result.executed,
                position,
                result.price,
                request_id,
            )
        )

    def _to_account(self, spec: SimSymbolSpec, amount_quote: float, price_points: int) -> float:
        if spec.account_per_quote is None:
            return amount_quote / (price_points * spec.point)
        return amount_quote * spec.account_per_quote

    def _profit(self, pos: _Pos, close_price: float | None = None, volume: float | None = None) -> float:
        book = self._books[pos.symbol]
        points = book.bid if pos.side is Side.BUY else book.ask
        if close_price is not None:
            points = round(close_price * 10**book.spec.digits)
        current = points * book.spec.point
        diff = current - pos.open_price if pos.side is Side.BUY else pos.open_price - current
        vol = pos.volume if volume is None else volume
        return self._to_account(book.spec, diff * vol * book.spec.contract_size, points)

    def _margin_for(self, spec: SimSymbolSpec, volume: float, price_points: int) -> float:
        notional = volume * spec.contract_size * price_points * spec.point
        return self._to_account(spec, notional, price_points) / self.account_config.leverage

    def _margin(self, pos: _Pos) -> float:
        book = self._books[pos.symbol]
        return self._margin_for(book.spec, pos.volume, round(pos.open_price * 10**book.spec.digits))

    def _position_view(self, p: _Pos) -> SimPosition:
        book = self._books[p.symbol]
        current = book.bid if p.side is Side.BUY else book.ask
        return SimPosition(
            p.ticket,
            p.symbol,
            p.side,
            p.volume,
            p.open_price,
            p.open_time,
            p.magic,
            p.comment,
            round(self._profit(p), 2),
            self._price(book, current),
            p.update_time,
            self._price(book, p.sl) if p.sl is not None else 0.0,
        )

    def _trade(self, ticket: int) -> SimTrade:
        deals = self._deals_by_position.get(ticket, [])
        pos = self._positions.get(ticket)
        if pos is not None:
            return SimTrade(
                ticket, pos.symbol, pos.side, pos.volume, pos.open_price, pos.open_time, pos.magic, pos.comment, False,
                profit=round(self._profit(pos), 2),
            )  # fmt: skip
        first = deals[0]
        outs = [d for d in deals if d.entry is not DealEntry.IN]
        last = outs[-1] if outs else first
        return SimTrade(
            ticket,
            first.symbol,
            first.side,
            round(sum(d.volume for d in outs), 8),
            first.price,
            first.time,
            first.magic,
            first.comment,
            True,
            last.price,
            last.time,
            None if last.reason in _BROKER_REASONS else last.magic or None,
            CLOSE_REASONS.get(last.reason, "closed manually"),
            round(sum(d.profit for d in deals), 2),
        )

    def _stop_losses(self) -> list[int]:
        """Close every position whose stop-loss the close-side price has reached (BUY: Bid <= SL, SELL:
        Ask >= SL), as the trade server does: at that price, so at the stop or beyond it when the price
        gapped through, and worse by up to ``slippage_points`` (seeded). Like MT5's, the deal keeps the
        position's magic, has reason SL and the comment ``[sl <price>]``; it is not our close order, so
        :meth:`find` reports no close magic for it."""
        hit: list[int] = []
        for pos in list(self._positions.values()):
            if pos.sl is None:
                continue
            book = self._books[pos.symbol]
            buy = pos.side is Side.BUY
            current = book.bid if buy else book.ask
            if (buy and current > pos.sl) or (not buy and current < pos.sl):
                continue
            fill = current
            if self.slippage_points:
                worse = self._fill_rng.randint(0, self.slippage_points)
                fill = max(1, fill - worse if buy else fill + worse)
            comment = f"[sl {self._price(book, pos.sl):.{book.spec.digits}f}]"
            self._execute_close(pos, pos.volume, fill, pos.magic, comment, DealReason.SL)
            hit.append(pos.ticket)
        return hit

    def _stop_out(self) -> list[int]:
        """Close the worst-losing position while the margin level is at or below the stop-out level."""
        stopped: list[int] = []
        level = self.account_config.stop_out_level
        while self._positions:
            acc = self.account()
            if acc.margin_level is None or acc.margin_level > level:
                break
            worst = min(self._positions.values(), key=self._profit)
            book = self._books[worst.symbol]
            fill = book.bid if worst.side is Side.BUY else book.ask
            self._execute_close(worst, worst.volume, fill, 0, f"so: {acc.margin_level:.1f}%", DealReason.SO)
            stopped.append(worst.ticket)
        return stopped
