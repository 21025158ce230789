"""What the agent and its MT5 worker process say to each other over their pipe: one frozen dataclass per
message, request and reply (picklable plain data, no MetaTrader5 types; nothing here imports MetaTrader5).

Agent -> worker:  :class:`Call` (a request id and one of the ``*Req`` requests), :class:`Stop`.
Worker -> agent:  :class:`Ready` once started or :class:`StartFailed`; :class:`Reply` per call (its
                  result, or :class:`WorkerFailure`); :class:`Quotes` pushed when prices change;
                  :class:`StatusMsg` pushed when the terminal's state changes; :class:`Lost` before the
                  worker exits because the terminal went away.

Every time in a reply is true UTC (epoch seconds): the worker converts the trade server's times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, passed once at spawn. ``password`` never appears in a repr or a log."""

    name: str
    login: int
    server: str | None
    path: str | None
    password: str | None = field(default=None, repr=False)
    symbols: tuple[str, ...] = ()  # broker names to select in Market Watch at start
    deviation: int = 20  # points
    init_timeout_ms: int = 60_000
    poll_interval: float = 0.01  # quote polling period, seconds
    status_interval: float = 1.0  # terminal/account state check period, seconds
    history_days: float = 30.0  # how far back find() searches the deal history
    server_time_offset: float | None = None  # configured seconds east of UTC; None: learn ("auto")
    server_clock: str | None = None  # the learnt timeline persisted by the agent (ServerClock.dumps)
    deal_wait: float = 0.5  # seconds to wait for our fill's deal to reach the terminal's history
    #: tests only: put these first on sys.path / into os.environ before importing MetaTrader5
    extra_sys_path: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


# -- requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PingReq:
    pass


@dataclass(frozen=True)
class AccountReq:
    pass


@dataclass(frozen=True)
class PositionsReq:
    pass


@dataclass(frozen=True)
class FindReq:
    magic: int


@dataclass(frozen=True)
class OpenReq:
    symbol: str  # broker name
    side: str  # "BUY" | "SELL"
    volume: float
    magic: int
    comment: str
    #: the protective stop: a stop-loss this far (price units) from the price sent; None: none
    stop_distance: float | None = None


@dataclass(frozen=True)
class CloseReq:
    ticket: int  # position ticket
    volume: float  # at most this much; never more than the position's current volume
    magic: int
    comment: str


@dataclass(frozen=True)
class WatchReq:
    symbols: tuple[str, ...]


Request = PingReq | AccountReq | PositionsReq | FindReq | OpenReq | CloseReq | WatchReq


# -- replies ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class AccountReply:
    login: int
    balance: float
    credit: float
    equity: float
    margin: float
    margin_level: float | None
    trade_allowed: bool
    currency: str


@dataclass(frozen=True)
class PositionRow:
    ticket: int
    symbol: str
    side: str
    volume: float
    open_price: float
    open_time: float  # UTC
    magic: int
    comment: str


@dataclass(frozen=True)
class PositionsReply:
    positions: tuple[PositionRow, ...]


@dataclass(frozen=True)
class TradeRow:
    ticket: int
    symbol: str
    side: str
    volume: float
    open_price: float
    open_time: float  # UTC
    magic: int
    comment: str
    closed: bool
    close_price: float | None = None
    close_time: float | None = None  # UTC
    close_magic: int | None = None
    close_reason: str | None = None


@dataclass(frozen=True)
class FindReply:
    trades: tuple[TradeRow, ...]


@dataclass(frozen=True)
class WatchReply:
    missing: tuple[str, ...]  # not selectable in Market Watch (not offered by this broker)


@dataclass(frozen=True)
class OrderFilled:
    ticket: int  # the position ticket
    price: float
    time: float  # UTC
    volume: float
    code: int


@dataclass(frozen=True)
class OrderCode:
    """The trade server's (or our own pre-check's) ``TRADE_RETCODE_*`` for a request that did not fill."""

    code: int
    comment: str


@dataclass(frozen=True)
class OrderNone:
    """``order_send`` (or a call the order needed) returned None: ``error`` is ``last_error()``'s code."""

    error: int
    comment: str


@dataclass(frozen=True)
class SymbolMissing:
    """The broker has no symbol of this name: a configuration error (``symbol_map``), never retried."""

    symbol: str
    comment: str


@dataclass(frozen=True)
class NotSent:
    """A call the order needed before ``order_send`` failed (``last_error()`` code ``error``): nothing left."""

    error: int
    comment: str


OrderReply = OrderFilled | OrderCode | OrderNone | SymbolMissing | NotSent
Result = Pong | AccountReply | PositionsReply | FindReply | WatchReply | OrderReply


# -- the pipe's envelopes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    request_id: int
    request: Request


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class WorkerFailure:
    """The worker raised while serving a call (its exception's text)."""

    message: str


@dataclass(frozen=True)
class Reply:
    request_id: int
    result: Result | WorkerFailure


@dataclass(frozen=True)
class ReadyInfo:
    login: int
    server: str
    missing_symbols: tuple[str, ...]


@dataclass(frozen=True)
class Ready:
    info: ReadyInfo


@dataclass(frozen=True)
class StartFailed:
    message: str
    fatal: bool  # retrying will not help (wrong account, bad credentials, no MetaTrader5 package)


@dataclass(frozen=True)
class Quote:
    symbol: str  # broker name
    bid: float
    ask: float
    time: float  # UTC


@dataclass(frozen=True)
class Quotes:
    quotes: tuple[Quote, ...]


@dataclass(frozen=True)
class Status:
    connected: bool  # terminal_info().connected: the terminal is connected to the trade server
    algo_trading: bool  # terminal_info().trade_allowed: the "Algo Trading" button
    tradeapi_disabled: bool  # terminal_info().tradeapi_disabled: trading from Python refused
    account_trade_allowed: bool  # account_info().trade_allowed
    expert_allowed: bool  # account_info().trade_expert
    api_refused: bool = False  # the last order_send failed with last_error -8 (auto-trading disabled)
    reselected: tuple[str, ...] = ()  # watched symbols found removed from Market Watch and re-selected
    unavailable: tuple[str, ...] = ()  # watched symbols that could not be (re-)selected
    server_clock: str = ""  # ServerClock.dumps(): the agent persists it when it changes
    server_offset: float | None = None  # the offset in force now (None: not known yet)
    clock_mismatch: float | None = None  # configured offset, but the server's clock shows this one


@dataclass(frozen=True)
class StatusMsg:
    status: Status


@dataclass(frozen=True)
class Lost:
    message: str


@dataclass(frozen=True)
class PipeClosed:
    """Not sent by the worker: the agent's reader says the pipe ended."""

    message: str


ToWorker = Call | Stop
FromWorker = Ready | StartFailed | Reply | Quotes | StatusMsg | Lost | PipeClosed
