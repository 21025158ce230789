"""The one interface every terminal kind implements (design §5), and its typed results.

Symbols cross this boundary as canonical :class:`Symbol` values; each adapter maps them to the broker's
names itself. Prices cross it as the broker's floats; the engine puts them on the point grid.
Broker errors are translated here into results (``Rejected`` carries ``retryable``) or into the classes of
:mod:`hedge_agent.errors`; nothing broker-specific leaks past an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import OrderTag


@dataclass(frozen=True, slots=True)
class Filled:
    ticket: str  # position ticket on the terminal (MT5 position id / MT4 order ticket)
    price: float
    time: datetime  # broker fill time, UTC
    volume: float
    broker_code: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    code: int
    reason: str  # readable, ends up in exitReason / the action's failure
    retryable: bool


@dataclass(frozen=True, slots=True)
class Unknown:
    """The order may or may not have been placed: call ``find(tag)`` before anything else."""

    reason: str
    code: int | None = None


OrderResult = Filled | Rejected | Unknown


@dataclass(frozen=True, slots=True)
class AccountInfo:
    login: int
    balance: float
    credit: float
    equity: float
    margin: float
    margin_level: float | None  # percent; None with no open positions
    trade_allowed: bool
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class TerminalQuote:
    symbol: Symbol
    bid: float
    ask: float
    time: float  # monotonic seconds at which the adapter received it
    tradeable: bool = True


@dataclass(frozen=True, slots=True)
class OpenPosition:
    ticket: str
    symbol: Symbol | None  # None for a broker symbol we do not map
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    magic: int
    comment: str


class TradeState(StrEnum):
    OPEN = "open"  # still on the terminal
    CLOSED = "closed"  # in history


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """What ``find(tag)`` reports: an opening fill and, when closed, its closing fill."""

    ticket: str
    symbol: Symbol | None
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    state: TradeState
    magic: int
    close_price: float | None = None
    close_time: datetime | None = None
    close_magic: int | None = None  # magic of the order that closed it (ours or None: broker/manual)
    close_reason: str | None = None  # e.g. "stop out", "closed by us", "closed manually"


class Connection(StrEnum):
    CONNECTED = "connected"
    CONNECTING = "connecting"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class Health:
    connection: Connection
    trade_allowed: bool  # terminal/account allow trading (MT5 "Algo Trading", MT4 "Allow live trading")
    detail: str = ""  # human-readable, shown in the tray
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.connection is Connection.CONNECTED and self.trade_allowed


@runtime_checkable
class Terminal(Protocol):
    """One terminal. Every method is safe to call concurrently; orders are serialized inside."""

    name: str

    async def connect(self) -> None:
        """Start (worker process, bridge server, simulator); returns when ready or raises."""

    async def shutdown(self) -> None:
        """Stop and release everything; idempotent."""

    async def account_info(self) -> AccountInfo: ...

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        """Set the symbols whose quotes ``quotes()`` yields (replaces the previous set)."""

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        """Quotes of watched symbols, emitted only when bid or ask changed. One consumer."""
        ...

    async def open_position(
        self,
        symbol: Symbol,
        side: Side,
        volume: float,
        tag: OrderTag,
        *,
        stop_distance: float | None = None,
    ) -> OrderResult:
        """A market order opening a position. ``stop_distance`` (price units, from
        :func:`hedge_agent.domain.protective.stop_distance`; None or 0: none): the opt-in protective stop,
        a broker-side stop-loss that far from the price the order is sent at (below the ask of a BUY,
        above the bid of a SELL, :func:`~hedge_agent.domain.protective.protective_stop_price`), placed with
        the order and never moved. Its hit is a broker close (``close_magic`` None, ``close_reason``
        "stop loss"). One nearer to the price than the broker allows is a permanent :class:`Rejected`
        naming ``protective_stop_pips``."""
        ...

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        """Close (all of ``volume`` of) the position ``ticket``; ``tag`` is the close intent's tag."""
        ...

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        """Trades opened *or closed* by an order with this tag, over open positions and history."""
        ...

    async def positions(self) -> list[OpenPosition]: ...

    def health(self) -> Health: ...
