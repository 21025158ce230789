"""``SimulatedTerminal``: the ``Terminal`` protocol over an in-process :class:`SimBroker`, with latency,
a ticker task that walks prices, and quotes pushed only when they change."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.protective import protective_stop_price
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import COMMENT_MAX, OrderTag
from hedge_agent.errors import RetryableError
from hedge_agent.terminals import retcodes as rc
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
from hedge_agent.terminals.quotes import QuoteChannel
from hedge_agent.terminals.resolve import resolve_unknown

from .broker import SimBroker
from .records import SimResult, SimTrade

log = logging.getLogger(__name__)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SimulatedTerminal:
    """A terminal backed by a simulated broker. ``latency`` (seconds, each way, plus up to
    ``latency_jitter``) delays every order; ``tick_interval`` is the ticker's period (None: no ticker,
    prices move only when the test moves them); ``walk`` makes the ticker step the price walk.
    ``resolve_unknown``: look an unknown outcome up by tag before returning it (like the MT5 adapter)."""

    def __init__(
        self,
        name: str,
        broker: SimBroker,
        symbols: SymbolTable | None = None,
        *,
        latency: float = 0.0,
        latency_jitter: float = 0.0,
        tick_interval: float | None = 0.1,
        walk: bool = True,
        resolve_unknown: bool = True,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.broker = broker
        self.symbols = symbols or SymbolTable()
        self.latency = latency
        self.latency_jitter = latency_jitter
        self.tick_interval = tick_interval
        self.walk = walk
        self.resolve_unknown = resolve_unknown
        self._rng = random.Random(seed)
        self._started = False
        self._watched: set[Symbol] = set()
        self._channel = QuoteChannel()
        self._order_lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._started:
            return
        self._started = True
        self._channel = QuoteChannel() if self._channel.closed else self._channel
        if self.tick_interval is not None:
            self._ticker = asyncio.create_task(
                self._tick_loop(self.tick_interval), name=f"sim-ticker:{self.name}"
            )
        log.info("simulated terminal %s connected (login %s)", self.name, self.broker.account_config.login)

    async def shutdown(self) -> None:
        self._started = False
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        self._channel.close()

    # -- quotes ------------------------------------------------------------------------------------------

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        new = set(symbols)
        self._channel.retain(new)
        self._watched = new
        self.poll_quotes()

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        return self._channel.stream()

    def poll_quotes(self) -> int:
        """Publish the watched symbols' quotes that changed since last time; returns how many passed.
        The ticker calls it; a test that moved prices by hand may call it to skip the wait."""
        if not self._started or not self.broker.connected:
            return 0
        now = time.monotonic()
        sent = 0
        for symbol in self._watched:
            q = self.broker.quote(self.symbols.broker_name(symbol))
            sent += self._channel.publish(TerminalQuote(symbol, q.bid, q.ask, now, q.tradeable))
        return sent

    async def _tick_loop(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > interval:  # fell behind (suspended): do not catch up in a burst
                deadline = loop.time()
            if self.walk:
                self.broker.step()
            self.poll_quotes()

    # -- account and state ---------------------------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise RetryableError(f"terminal {self.name} is not connected")

    async def account_info(self) -> AccountInfo:
        self._require_started()
        a = self.broker.account()
        return AccountInfo(
            login=a.login,
            balance=a.balance,
            credit=a.credit,
            equity=a.equity,
            margin=a.margin,
            margin_level=a.margin_level,
            trade_allowed=a.trade_allowed,
            currency=a.currency,
        )

    async def positions(self) -> list[OpenPosition]:
        self._require_started()
        return [
            OpenPosition(
                ticket=str(p.ticket),
                symbol=self.symbols.from_broker(p.symbol),
                side=p.side,
                volume=p.volume,
                open_price=p.open_price,
                open_time=utc(p.open_time),
                magic=p.magic,
                comment=p.comment,
            )
            for p in self.broker.positions()
        ]

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        self._require_started()
        return [self._record(t) for t in self.broker.find(tag.magic)]

    def _record(self, t: SimTrade) -> TradeRecord:
        return TradeRecord(
            ticket=str(t.ticket),
            symbol=self.symbols.from_broker(t.symbol),
            side=t.side,
            volume=t.volume,
            open_price=t.open_price,
            open_time=utc(t.open_time),
            state=TradeState.CLOSED if t.closed else TradeState.OPEN,
            magic=t.magic,
            close_price=t.close_price,
            close_time=utc(t.close_time) if t.close_time is not None else None,
            close_magic=t.close_magic,
            close_reason=t.close_reason,
        )

    def health(self) -> Health:
        if not self._started:
            return Health(Connection.DISCONNECTED, False, "not started")
        problems: list[str] = []
        if not self.broker.connected:
            problems.append("no connection to the trade server")
        if not self.broker.trade_allowed:
            problems.append("trading is disabled on the account")
        conn = Connection.CONNECTED if self.broker.connected else Connection.DISCONNECTED
        detail = "; ".join(problems) or f"simulated, login {self.broker.account_config.login}"
        return Health(conn, self.broker.trade_allowed, detail, tuple(problems))

    # -- orders ------------------------------------------------------------------------------------------

    async def _delay(self) -> None:
        d = self.latency + (self._rng.uniform(0, self.latency_jitter) if self.latency_jitter else 0.0)
        if d > 0:
            await asyncio.sleep(d)

    async def open_position(
        self,
        symbol: Symbol,
        side: Side,
        volume: float,
        tag: OrderTag,
        *,
        stop_distance: float | None = None,
    ) -> OrderResult:
        self._require_started()
        name = self.symbols.broker_name(symbol)
        async with self._order_lock:
            await self._delay()
            sl = None
            if stop_distance:  # from the price the order is sent at, as the real adapters do
                q, digits = self.broker.quote(name), self.broker.spec(name).digits
                sl = protective_stop_price(side, q.ask if side is Side.BUY else q.bid, stop_distance, digits)
            res = self.broker.open(
                name, side, volume, magic=tag.magic, comment=tag.comment[:COMMENT_MAX], sl=sl
            )
            await self._delay()
        return await self._result(res, tag, closing=None)

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        self._require_started()
        try:
            number = int(ticket)
        except ValueError:
            return Rejected(
                rc.INVALID, f"ticket {ticket!r} is not a simulated position ticket", retryable=False
            )
        async with self._order_lock:
            await self._delay()
            res = self.broker.close(number, volume, magic=tag.magic, comment=tag.comment[:COMMENT_MAX])
            await self._delay()
        return await self._result(res, tag, closing=ticket)

    async def _result(self, res: SimResult, tag: OrderTag, closing: str | None) -> OrderResult:
        if res.ok:
            return Filled(str(res.position), res.price, utc(res.time), res.volume, res.code)
        outcome = rc.mt5(res.code).result(res.comment)
        if isinstance(outcome, Unknown) and self.resolve_unknown:
            return await resolve_unknown(self.find, tag, outcome, closing=closing, attempts=1)
        return outcome
