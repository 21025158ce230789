"""The buffer behind ``Terminal.quotes()``: only changed quotes pass, and a slow consumer gets the latest
quote of each symbol rather than a growing backlog (a stale quote is worth nothing to a trailing stop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from hedge_agent.domain.enums import Symbol

from .base import TerminalQuote


class QuoteChannel:
    """One producer (an adapter, on the event loop), one consumer. ``publish`` drops a quote whose bid,
    ask and tradeability equal the last one published for its symbol."""

    def __init__(self) -> None:
        self._pending: dict[Symbol, TerminalQuote] = {}
        self._last: dict[Symbol, tuple[float, float, bool]] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self.published = 0
        self.conflated = 0  # superseded before the consumer took them

    def publish(self, quote: TerminalQuote) -> bool:
        key = (quote.bid, quote.ask, quote.tradeable)
        if self._closed or self._last.get(quote.symbol) == key:
            return False
        self._last[quote.symbol] = key
        if quote.symbol in self._pending:
            self.conflated += 1
            del self._pending[quote.symbol]  # re-insert: keep the order in which symbols changed
        self._pending[quote.symbol] = quote
        self.published += 1
        self._wakeup.set()
        return True

    def forget(self, symbols: Iterable[Symbol] | None = None) -> None:
        """Forget the last published values (all, or of ``symbols``) so their next quote passes: used
        when symbols become watched again, and after a reconnect."""
        for s in list(self._last) if symbols is None else symbols:
            self._last.pop(s, None)

    def retain(self, symbols: Iterable[Symbol]) -> None:
        """Drop pending quotes and remembered values of symbols no longer watched."""
        keep = set(symbols)
        for s in [s for s in self._pending if s not in keep]:
            del self._pending[s]
        for s in [s for s in self._last if s not in keep]:
            del self._last[s]

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def stream(self) -> AsyncIterator[TerminalQuote]:
        return _Stream(self)

    async def next(self) -> TerminalQuote:
        """The next quote; raises StopAsyncIteration once closed and drained. Cancellation-safe (a
        consumer may wrap it in ``wait_for``), unlike an async generator, which a cancel would end."""
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        symbol = next(iter(self._pending))
        return self._pending.pop(symbol)


class _Stream:
    def __init__(self, channel: QuoteChannel) -> None:
        self._channel = channel

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> TerminalQuote:
        return await self._channel.next()
