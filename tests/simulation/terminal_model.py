"""An in-memory model of a broker account and of a terminal attached to it (the ``Terminal`` protocol of
``hedge_agent.terminals.base``).

The broker (:class:`Broker`) is the server side: it outlives agent crashes and is shared by every terminal
logged into the same account (two PCs bound to one account). It keeps the order log the invariants read:
every order it *executed*, with the magic of its tag. Prices live on the point grid (integers) and move by
a seeded random walk; quotes are pushed to every connected terminal on change.

The terminal (:class:`SimTerminal`) adds what a real adapter shows the engine, drawn from the world's RNG:
fills; rejections, retryable (requote 10004, busy 146) and permanent (no money 10019); unknown outcomes
(MT4 128 "trade timeout") where the order did not execute, did execute, or executes *later* (a late fill);
an exception after the order may have left; closes of a ticket that is gone ("position not found"); a
close of more than what is left after a partial close (10014 invalid volume); disconnects (orders,
lookups and snapshots fail while disconnected, the health says so). ``find(tag)`` answers from open
positions and history, as ``TradeRecord`` (opening fill plus closing fill, ``close_magic`` None for a
close by the broker or by hand).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import DEFAULT_POINT
from hedge_agent.domain.tags import OrderTag
from hedge_agent.errors import RetryableError
from hedge_agent.terminals.base import (
    AccountInfo,
    Connection,
    Filled,
    Health,
    OpenPosition,
    OrderResult,
    Rejected,
    TerminalQuote,
    TradeRecord,
    TradeState,
    Unknown,
)

from .cloud_model import Dead

SPREAD = 10  # points
START = {Symbol.EURUSD: 108_000, Symbol.USDJPY: 150_000}


@dataclass
class Trade:
    ticket: str
    symbol: Symbol
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    magic: int
    comment: str
    open: bool = True
    close_price: float | None = None
    close_time: datetime | None = None
    close_magic: int | None = None
    close_reason: str | None = None
    #: best close-side price (points) on the broker since the open: highest bid (BUY) / lowest ask (SELL)
    best: int = 0
    intent: str = ""  # the opening order's intent id (for the invariants' messages only)
    opened_at: float = 0.0  # loop time of the opening fill

    def record(self) -> TradeRecord:
        return TradeRecord(
            self.ticket, self.symbol, self.side, self.volume, self.open_price, self.open_time,
            TradeState.OPEN if self.open else TradeState.CLOSED, self.magic, self.close_price, self.close_time,
            self.close_magic, self.close_reason,
        )  # fmt: skip


def to_price(symbol: Symbol, points: int) -> float:
    return float(Decimal(points) * DEFAULT_POINT[symbol])


@dataclass
class Broker:
    login: int
    rng: random.Random
    now: Callable[[], float]
    epoch: datetime
    trace: list[str]
    bids: dict[Symbol, int] = field(default_factory=lambda: dict(START))
    trades: dict[str, Trade] = field(default_factory=dict)
    #: every executed order: (kind "open" | "close", magic, ticket)
    orders: list[tuple[str, int, str]] = field(default_factory=list)
    terminals: list[SimTerminal] = field(default_factory=list)
    #: every quote pushed to a connected terminal, by terminal name (all its agent's lives): (time, symbol,
    #: bid, ask). The agent can only trail on what it was shown: no quote reaches a disconnected terminal
    delivered: dict[str, list[tuple[float, Symbol, int, int]]] = field(default_factory=dict)
    _next_ticket: int = 1000
    late_orders: int = 0  # accepted orders the server has not executed yet

    def wall(self) -> datetime:
        t = self.epoch + timedelta(seconds=self.now())
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    def bid_ask(self, symbol: Symbol) -> tuple[int, int]:
        bid = self.bids[symbol]
        return bid, bid + SPREAD

    def close_side(self, t: Trade) -> int:
        bid, ask = self.bid_ask(t.symbol)
        return bid if t.side is Side.BUY else ask

    def step(self, symbol: Symbol, points: int) -> None:
        self.bids[symbol] += points
        for t in self.trades.values():
            if t.open and t.symbol is symbol:
                px = self.close_side(t)
                t.best = max(t.best, px) if t.side is Side.BUY else min(t.best, px)
        bid, ask = self.bid_ask(symbol)
        for term in self.terminals:
            term.push(symbol, bid, ask)

    def execute_open(self, symbol: Symbol, side: Side, volume: float, tag: OrderTag) -> Trade:
        self._next_ticket += 1
        bid, ask = self.bid_ask(symbol)
        px = ask if side is Side.BUY else bid
        t = Trade(str(self._next_ticket), symbol, side, volume, to_price(symbol, px), self.wall(), tag.magic,
                  tag.comment, best=bid if side is Side.BUY else ask, intent=tag.intent_id,
                  opened_at=self.now())  # fmt: skip
        self.trades[t.ticket] = t
        self.orders.append(("open", tag.magic, t.ticket))
        self.trace.append(
            f"{self.now():.3f} broker{self.login} open {t.ticket} magic={tag.magic} {tag.intent_id}"
        )
        return t

    def execute_close(self, ticket: str, volume: float, magic: int | None, reason: str) -> Trade | Rejected:
        t = self.trades.get(ticket)
        if t is None or not t.open:
            return Rejected(4108, f"position #{ticket} not found", False)
        if volume > t.volume + 1e-9:
            return Rejected(10014, f"invalid volume {volume:g} > {t.volume:g} left", False)
        t.open = False
        t.close_price = to_price(t.symbol, self.close_side(t))
        t.close_time = self.wall()
        t.close_magic = magic
        t.close_reason = reason
        if magic is not None:
            self.orders.append(("close", magic, ticket))
        self.trace.append(f"{self.now():.3f} broker{self.login} close {ticket} magic={magic} {reason}")
        return t

    def partial_close(self, ticket: str) -> None:
        t = self.trades.get(ticket)
        if t is not None and t.open and t.volume >= 0.02:
            t.volume = round(t.volume / 2, 2)
            self.trace.append(f"{self.now():.3f} broker{self.login} partial {ticket} left={t.volume}")

    def shown_drawdown(
        self, terminal: str, t: Trade, at: float, stale_after: float
    ) -> tuple[int, int] | None:
        """(best, price) for a trail fire on ``t`` at ``at``, judged by what ``terminal`` was shown: ``best``
        the best close-side price shown since the open, up to ``price``, the close-side price of the quote
        the agent can have acted on: the newest one shown before the fire instant, or one shown at that
        instant (a cadence sweep acts on the newest quote it has processed, which may be an instant older
        than a tick still queued). None when no fresh quote (``stale_after``) was shown."""
        buy = t.side is Side.BUY
        shown = [(w, b if buy else a) for w, sym, b, a in self.delivered.get(terminal, [])
                 if sym is t.symbol and t.opened_at <= w <= at]  # fmt: skip
        before = [w for w, _px in shown if w < at]
        first = max(max(before, default=at), at - stale_after)
        best: int | None = None
        out: tuple[int, int] | None = None
        for when, px in shown:
            best = px if best is None else (max(best, px) if buy else min(best, px))
            if when >= first and (out is None or (best - px if buy else px - best) > abs(out[0] - out[1])):
                out = (best, px)
        return out

    def open_trades(self) -> list[Trade]:
        return [t for t in self.trades.values() if t.open]


@dataclass
class TerminalFaults:
    reject_retryable: float = 0.0
    reject_permanent: float = 0.0
    unknown_not_placed: float = 0.0
    unknown_placed: float = 0.0
    unknown_late: float = 0.0  # placed 1..90 s later (a late fill after an unknown outcome)
    raises: float = 0.0  # the call raises; the order executed or not (half each)
    lookup_fails: float = 0.0
    latency: float = 0.02
    #: scripted outcomes for the next orders (directed tests): "fill", "reject_permanent", "unknown_late", ...
    forced: list[str] = field(default_factory=list)
    late_delay: float | None = None  # fixed delay of an "unknown_late" execution
    order_delay: float = 0.0  # every order spends this long at the broker before its outcome

    def calm(self) -> TerminalFaults:
        return TerminalFaults(latency=self.latency, forced=self.forced, late_delay=self.late_delay)


class SimTerminal:
    """One agent incarnation's terminal on ``broker``. Safe to call concurrently (orders serialized)."""

    def __init__(
        self, name: str, broker: Broker, rng: random.Random, faults: Callable[[], TerminalFaults]
    ) -> None:
        self.name = name
        self.broker = broker
        self.rng = rng
        self.faults = faults
        self.connected = True
        self.alive = True
        self._quotes: asyncio.Queue[TerminalQuote] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self.counts: dict[str, int] = {}
        #: called before each port call; the world counts them to crash at a chosen one, before the call
        #: takes effect ("before") or right after it did ("after": the caller never sees the answer)
        self.on_call: Callable[[str], str | None] = lambda what: None
        self.die: Callable[[], None] = lambda: None
        self._die_after = False
        broker.terminals.append(self)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def push(self, symbol: Symbol, bid: int, ask: int) -> None:
        if self.alive and self.connected:
            loop = asyncio.get_running_loop()
            self.broker.delivered.setdefault(self.name, []).append((loop.time(), symbol, bid, ask))
            self._quotes.put_nowait(
                TerminalQuote(symbol, to_price(symbol, bid), to_price(symbol, ask), loop.time())
            )

    async def _enter(self, what: str) -> None:
        if not self.alive:
            raise Dead()
        mode = self.on_call(what)
        if mode == "before":
            raise Dead()
        self._die_after = mode == "after"
        await asyncio.sleep(self.rng.uniform(0, self.faults().latency))
        if not self.alive:
            raise Dead()

    def _leave(self) -> None:
        if self._die_after:
            self._die_after = False
            self.die()
            raise Dead()

    def _check_link(self) -> None:
        if not self.connected:
            raise RetryableError(f"{self.name}: no connection to the terminal (simulated)")

    # -- Terminal protocol -----------------------------------------------------------------------------

    async def connect(self) -> None:
        return None

    async def shutdown(self) -> None:
        self.alive = False

    async def account_info(self) -> AccountInfo:
        return AccountInfo(self.broker.login, 10_000.0, 0.0, 10_000.0, 0.0, None, True)

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        return None

    async def _quote_stream(self) -> AsyncIterator[TerminalQuote]:
        while True:
            q = await self._quotes.get()
            if not self.alive:
                raise Dead()
            yield q

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        return self._quote_stream()

    def health(self) -> Health:
        c = Connection.CONNECTED if self.connected else Connection.CONNECTING
        return Health(c, True, "simulated")

    async def positions(self) -> list[OpenPosition]:
        await self._enter("positions")
        self._check_link()
        self._leave()
        return [
            OpenPosition(t.ticket, t.symbol, t.side, t.volume, t.open_price, t.open_time, t.magic, t.comment)
            for t in self.broker.open_trades()
        ]

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        await self._enter("find")
        self._check_link()
        if self.rng.random() < self.faults().lookup_fails:
            self._count("lookups_failed")
            raise RetryableError(f"{self.name}: history request failed (simulated)")
        self._leave()
        return [t.record() for t in self.broker.trades.values() if tag.magic in (t.magic, t.close_magic)]

    async def open_position(
        self, symbol: Symbol, side: Side, volume: float, tag: OrderTag, *, stop_distance: float | None = None
    ) -> OrderResult:
        if stop_distance is not None:  # the simulated PCs never configure one (see README: not modelled)
            raise NotImplementedError("the terminal model does not place protective stops")

        def place() -> Filled:
            t = self.broker.execute_open(symbol, side, volume, tag)
            return Filled(t.ticket, t.open_price, t.open_time, t.volume)

        return await self._order(place, f"open {tag.intent_id}")

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        def place() -> Filled | Rejected:
            r = self.broker.execute_close(ticket, volume, tag.magic, "closed by us")
            if isinstance(r, Rejected):
                return r
            assert r.close_price is not None and r.close_time is not None
            return Filled(r.ticket, r.close_price, r.close_time, r.volume)

        return await self._order(place, f"close {tag.intent_id}")

    async def _order(self, place: Callable[[], Filled | Rejected], what: str) -> OrderResult:
        await self._enter(what)
        async with self._lock:
            if self.faults().order_delay:
                await asyncio.sleep(self.faults().order_delay)
            result = self._decide(place)
        self._leave()
        if isinstance(result, BaseException):
            raise result
        return result

    def _decide(self, place: Callable[[], Filled | Rejected]) -> OrderResult | BaseException:
        if not self.connected:
            return Rejected(6, "no connection with the trade server", True)
        f, rng = self.faults(), self.rng
        name = (
            f.forced.pop(0)
            if f.forced
            else _draw(
                rng.random(),
                [
                    ("reject_retryable", f.reject_retryable),
                    ("reject_permanent", f.reject_permanent),
                    ("unknown_not_placed", f.unknown_not_placed),
                    ("unknown_placed", f.unknown_placed),
                    ("unknown_late", f.unknown_late),
                    ("raises", f.raises),
                ],
            )
        )
        self._count(name)
        if name == "reject_retryable":
            return Rejected(10004, "requote", True)
        if name == "reject_permanent":
            return Rejected(10019, "not enough money", False)
        if name == "unknown_not_placed":
            return Unknown("trade timeout", 128)
        if name == "unknown_placed":
            place()
            return Unknown("trade timeout", 128)
        if name == "unknown_late":
            delay = f.late_delay or rng.choice((rng.uniform(1, 20), rng.uniform(60, 90)))
            self.broker.late_orders += 1

            def late() -> None:
                self.broker.late_orders -= 1
                place()

            asyncio.get_running_loop().call_later(delay, late)  # the server executes it anyway
            return Unknown("trade timeout", 128)
        if name == "raises":
            if rng.random() < 0.5:
                place()
            return ConnectionError(f"{self.name}: bridge connection lost (simulated)")
        return place()


def _draw(x: float, weights: list[tuple[str, float]]) -> str:
    """The outcome whose slice of [0, 1) holds ``x``; "fill" for the rest."""
    for outcome, p in weights:
        if x < p:
            return outcome
        x -= p
    return "fill"
