"""What the simulated broker takes and returns: symbol and account settings, quotes, positions, deals,
order results, faults and the order log. Plain frozen records; times are epoch seconds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum
from typing import Literal

from hedge_agent.domain.enums import Side
from hedge_agent.terminals import retcodes as rc

Clock = Callable[[], float]  # epoch seconds


@dataclass
class ManualClock:
    """A clock tests move by hand: ``clock.advance(1.5)``."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True, slots=True)
class SimSymbolSpec:
    name: str  # broker name
    digits: int
    start_bid: float
    spread_points: int
    contract_size: float = 100_000.0
    volume_min: float = 0.01
    volume_max: float = 100.0
    volume_step: float = 0.01
    volatility_points: int = 3  # random-walk step size bound
    #: account currency per unit of the quote currency; None: the base currency is the account currency
    #: (USDJPY on a USD account), converted at the current price
    account_per_quote: float | None = 1.0
    #: the broker's minimum distance, in points, of a stop-loss from the close-side price (MT5
    #: SYMBOL_TRADE_STOPS_LEVEL, MT4 MarketInfo MODE_STOPLEVEL); a nearer one is refused (10016 / 130)
    stops_level_points: int = 0

    @property
    def point(self) -> float:
        return float(10.0**-self.digits)


def default_symbols(names: Mapping[str, str] | None = None) -> list[SimSymbolSpec]:
    """The four canonical symbols with usual prices on a USD account; ``names`` renames them
    (canonical -> broker name, e.g. ``{"USDJPY": "USDJPY.raw"}``)."""
    names = names or {}
    specs = [
        SimSymbolSpec(
            "USDJPY", 3, 150.000, 15, account_per_quote=None, volatility_points=4, stops_level_points=10
        ),
        SimSymbolSpec("EURUSD", 5, 1.08500, 12, volatility_points=3, stops_level_points=10),
        SimSymbolSpec(
            "EURGBP", 5, 0.85500, 15, account_per_quote=1.27, volatility_points=2, stops_level_points=10
        ),
        SimSymbolSpec(
            "XAUUSD", 2, 2350.00, 30, contract_size=100.0, volatility_points=25, stops_level_points=50
        ),
    ]
    return [replace(s, name=names.get(s.name, s.name)) for s in specs]


@dataclass(frozen=True, slots=True)
class SimAccountConfig:
    login: int = 5_000_001
    balance: float = 10_000.0
    credit: float = 0.0
    leverage: int = 100
    currency: str = "USD"
    stop_out_level: float = 50.0  # margin level (%) at which positions are closed by the broker
    margin_call_level: float = 100.0
    hedging: bool = True  # False: netting (one position per symbol)
    server: str = "SimBroker-Demo"
    name: str = "Simulated Trader"
    company: str = "hedge-agent simulator"
    commission_per_lot: float = 0.0  # charged on each side


class DealReason(IntEnum):
    """Same values as MT5's DEAL_REASON_*."""

    CLIENT = 0
    MOBILE = 1
    WEB = 2
    EXPERT = 3
    SL = 4
    TP = 5
    SO = 6


class DealEntry(IntEnum):
    """Same values as MT5's DEAL_ENTRY_*."""

    IN = 0
    OUT = 1
    INOUT = 2


CLOSE_REASONS = {
    DealReason.SO: "stop out",
    DealReason.SL: "stop loss",
    DealReason.TP: "take profit",
    DealReason.EXPERT: "closed by expert",
}


@dataclass(frozen=True, slots=True)
class SimQuote:
    symbol: str
    bid: float
    ask: float
    time: float
    tradeable: bool = True


@dataclass(frozen=True, slots=True)
class SimPosition:
    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    open_time: float
    magic: int
    comment: str
    profit: float = 0.0  # floating, account currency, at the current close-side price
    price_current: float = 0.0
    update_time: float = 0.0
    sl: float = 0.0  # the position's stop-loss price; 0.0: none (as MT5 reports it)


@dataclass(frozen=True, slots=True)
class SimDeal:
    ticket: int
    order: int
    position: int
    symbol: str
    side: Side  # direction of the deal itself (a BUY position closes with a SELL deal)
    entry: DealEntry
    volume: float
    price: float
    time: float
    magic: int
    comment: str
    reason: DealReason
    profit: float = 0.0
    commission: float = 0.0


@dataclass(frozen=True, slots=True)
class SimOrder:
    """A history order (every executed market order)."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    price: float
    time: float
    magic: int
    comment: str
    position: int
    reason: DealReason


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One position as ``find`` reports it: its opening, and its closing once it is gone."""

    ticket: int
    symbol: str
    side: Side
    volume: float  # remaining volume while open, the closed volume once closed
    open_price: float
    open_time: float
    magic: int
    comment: str
    closed: bool
    close_price: float | None = None
    close_time: float | None = None
    close_magic: int | None = None  # None: closed by the broker or by hand (magic 0)
    close_reason: str | None = None
    profit: float = 0.0


@dataclass(frozen=True, slots=True)
class SimAccount:
    login: int
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float | None  # percent; None with no margin in use
    leverage: int
    currency: str
    trade_allowed: bool
    hedging: bool
    stop_out_level: float
    margin_call_level: float
    server: str
    name: str
    company: str


@dataclass(frozen=True, slots=True)
class SimResult:
    code: int  # MT5 retcode as the client sees it: rc.DONE when filled
    executed: bool  # the broker really filled it (also True for an injected timeout)
    comment: str = ""  # the broker's comment ("Request executed", "Requote", ...)
    order: int = 0
    deal: int = 0
    position: int = 0  # position ticket (opened, or the one that was closed)
    price: float = 0.0
    volume: float = 0.0
    time: float = 0.0
    bid: float = 0.0
    ask: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code in (rc.DONE, rc.DONE_PARTIAL)


class FaultKind(StrEnum):
    REJECT = "reject"  # not executed, ``code`` (default 10006)
    TIMEOUT = "timeout"  # EXECUTED, but the client is told 10012: the outcome must be reconciled
    DISCONNECT = "disconnect"  # the connection drops before the order goes out: 10031, not executed
    MARKET_CLOSED = "market_closed"  # 10018, not executed
    TRADE_DISABLED = "trade_disabled"  # 10017, not executed
    REQUOTE = "requote"  # 10004, not executed


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    code: int | None = None  # REJECT only: the retcode to answer (default 10006)
    times: int = 1  # how many matching orders it affects
    on: Literal["open", "close", "any"] = "any"
    symbol: str | None = None  # only orders on this broker symbol


FAULT_CODES = {
    FaultKind.REJECT: rc.REJECT,
    FaultKind.TIMEOUT: rc.TIMEOUT,
    FaultKind.DISCONNECT: rc.CONNECTION,
    FaultKind.MARKET_CLOSED: rc.MARKET_CLOSED,
    FaultKind.TRADE_DISABLED: rc.TRADE_DISABLED,
    FaultKind.REQUOTE: rc.REQUOTE,
}


@dataclass(frozen=True, slots=True)
class OrderLogEntry:
    """Every order request that reached the broker, whatever became of it."""

    seq: int
    time: float
    action: Literal["open", "close"]
    symbol: str
    side: Side
    volume: float
    magic: int
    comment: str
    code: int
    executed: bool
    position: int  # the opened position, or the position the close targeted
    price: float
    request_id: str | None = None


class SimError(ValueError):
    """A programming error against the simulator (unknown symbol, bad argument), not a broker reply."""
