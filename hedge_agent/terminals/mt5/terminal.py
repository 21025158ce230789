"""``Mt5Terminal``: the ``Terminal`` protocol over one MT5 worker process (see :mod:`.worker`).

The agent side never blocks its event loop: a reader thread and a writer thread move messages over the
pipe, and results come back to the loop with ``call_soon_threadsafe``. A supervisor task starts the
worker, restarts it with backoff when it dies, hangs (a call outlives its timeout: the worker is killed)
or loses its terminal, and keeps :meth:`health` current. An ambiguous order outcome (timeout, an
``order_send`` None whose ``last_error()`` may hide an executed order, 10012, a lost worker) is returned as
:class:`Unknown`: the caller (the engine) does the one look-up by tag; this adapter never retries an order.
The trade server's clock (see :mod:`.servertime`) is persisted through an injected :class:`MetaStore`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.connection import Connection as PipeEnd
from multiprocessing.process import BaseProcess
from typing import TypeVar

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import COMMENT_MAX, OrderTag
from hedge_agent.errors import ConfigError, RetryableError
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

from . import worker as worker_module
from .protocol import (
    AccountReply,
    AccountReq,
    Call,
    CloseReq,
    FindReply,
    FindReq,
    FromWorker,
    Lost,
    NotSent,
    OpenReq,
    OrderCode,
    OrderFilled,
    OrderNone,
    PipeClosed,
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
    ToWorker,
    WatchReply,
    WatchReq,
    WorkerConfig,
    WorkerFailure,
)
from .servertime import MetaStore, store_key

log = logging.getLogger(__name__)
_R = TypeVar("_R")

#: the tag comment sent to MT5: well inside any terminal's limit (29 and 28 have been reported; the fake
#: refuses more than 24). The comment is only a helper for people reading the terminal: the magic number
#: is the key every look-up uses, and the server may alter the comment anyway.
COMMENT_CHARS = COMMENT_MAX  # the tag's comment is this short already (domain.tags)

_FIX_ALGO = "Algo Trading is switched off in the terminal: press the 'Algo Trading' button in its toolbar"
_FIX_PY_API = (
    "trading from Python is disabled in the terminal: untick 'Disable algorithmic trading via external "
    "Python API' in Tools > Options > Expert Advisors"
)
_FIX_DISCONNECTED = (
    "the terminal has no connection to the trade server: check the internet connection and the account "
    "login in the terminal (its status bar shows the connection)"
)


class _WorkerLost(Exception):
    """The worker died, was killed as hung, or lost its terminal while a call was pending."""


class _WorkerError(Exception):
    """The worker raised while serving a call (the text of its exception)."""


class _WorkerHandle:
    """One worker process and the two threads that carry its pipe."""

    def __init__(self, process: BaseProcess, conn: PipeEnd, terminal: Mt5Terminal) -> None:
        self.process = process
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.started: asyncio.Future[Ready | StartFailed] = self.loop.create_future()
        self.lost: asyncio.Future[str] = self.loop.create_future()
        self.pending: dict[int, asyncio.Future[Result]] = {}
        self.ready = False
        self._outbox: queue.SimpleQueue[ToWorker | None] = queue.SimpleQueue()
        self._terminal = terminal
        name = terminal.name
        self._reader = threading.Thread(target=self._read, name=f"mt5-read:{name}", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"mt5-write:{name}", daemon=True)
        self._reader.start()
        self._writer.start()

    def send(self, msg: ToWorker) -> None:
        self._outbox.put(msg)

    def _read(self) -> None:
        while True:
            msg: FromWorker
            try:
                msg = self.conn.recv()
            except (EOFError, OSError) as e:
                msg = PipeClosed(f"pipe closed ({type(e).__name__})")
            try:
                self.loop.call_soon_threadsafe(self._terminal._on_message, self, msg)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if isinstance(msg, PipeClosed):
                return

    def _write(self) -> None:
        while (msg := self._outbox.get()) is not None:
            try:
                self.conn.send(msg)
            except (OSError, ValueError):
                return  # the reader sees the end of the pipe and reports it

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()

    def stop_threads(self) -> None:
        self._outbox.put(None)

    def join(self, timeout: float) -> None:
        """Blocking (run it in an executor): wait for the process and the reader, then close the pipe."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self._reader.join(timeout)
        self._writer.join(timeout)
        self.conn.close()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Mt5Terminal:
    """One MT5 terminal (one account) through its own worker process. ``deviation``: points of slippage
    accepted on market orders.

    ``password`` goes to the worker once, at spawn, and is never logged; None uses the password saved in
    the terminal. ``server_time_offset``: the trade server's seconds east of UTC when configured, None to
    learn it (``auto``); ``meta_store`` keeps what was learnt across restarts. ``extra_sys_path`` /
    ``worker_env`` are for tests (the fake ``MetaTrader5`` package)."""

    def __init__(
        self,
        name: str,
        *,
        login: int,
        server: str | None,
        password: str | None = None,
        path: str | None = None,
        symbols: SymbolTable | None = None,
        deviation: int = 20,
        call_timeout: float = 10.0,
        order_timeout: float = 20.0,
        start_timeout: float = 90.0,
        poll_interval: float = 0.01,
        status_interval: float = 1.0,
        history_days: float = 30.0,
        server_time_offset: float | None = None,
        meta_store: MetaStore | None = None,
        restart_backoff: tuple[float, float] = (0.5, 30.0),
        extra_sys_path: Sequence[str] = (),
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.symbols = symbols or SymbolTable()
        self.call_timeout = call_timeout
        self.order_timeout = order_timeout
        self.start_timeout = start_timeout
        self.restart_backoff = restart_backoff
        self.meta_store = meta_store
        self._config = WorkerConfig(
            name=name,
            login=login,
            server=server,
            path=path,
            password=password,
            symbols=tuple(dict.fromkeys(self.symbols.broker_name(s) for s in Symbol)),
            deviation=deviation,
            init_timeout_ms=int(start_timeout * 1000),
            poll_interval=poll_interval,
            status_interval=status_interval,
            history_days=history_days,
            server_time_offset=server_time_offset,
            extra_sys_path=tuple(extra_sys_path),
            env=dict(worker_env or {}),
        )
        self._ids = itertools.count(1)
        self._handle: _WorkerHandle | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._state = Connection.DISCONNECTED
        self._detail = "not started"
        self._status: Status | None = None
        self._problems: tuple[str, ...] = ()
        self._symbol_problems: tuple[str, ...] = ()
        self._watched: dict[str, Symbol] = {}
        self._channel = QuoteChannel()
        self._order_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._clock_state: str | None = None  # the server clock as last learnt (ServerClock.dumps)
        self._clock_loaded = False
        self._saves: set[asyncio.Task[None]] = set()
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._supervisor is not None and not self._supervisor.done():
            return
        self._closing = False
        if self._channel.closed:
            self._channel = QuoteChannel()
        await self._load_clock()
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(first), name=f"mt5-supervisor:{self.name}")
        try:
            await first
        except BaseException as e:
            await self.shutdown()
            self._set_state(Connection.DISCONNECTED, str(e) or type(e).__name__)  # why, for the tray
            raise

    async def shutdown(self) -> None:
        self._closing = True
        self._ready.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        if self._handle is not None:
            await self._stop(self._handle)
            self._handle = None
        self._set_state(Connection.DISCONNECTED, "shut down")
        self._channel.close()

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        attempt = 0
        while not self._closing:
            handle = await self._spawn()
            self._handle = handle
            started: Ready | StartFailed
            try:
                started = await asyncio.wait_for(asyncio.shield(handle.started), self.start_timeout)
            except TimeoutError:
                started = StartFailed(f"the worker did not start within {self.start_timeout:g} s", False)
            if isinstance(started, Ready):
                attempt = 0
                await self._on_ready(handle, started.info)
                if not first.done():
                    first.set_result(None)
                reason = await handle.lost
                await self._stop(handle)
                if self._closing:
                    return
                self.restarts += 1
                log.warning("MT5 worker of %s lost (%s); restarting", self.name, reason)
                self._set_state(Connection.CONNECTING, f"restarting the worker: {reason}")
            else:
                await self._stop(handle)
                info = started.message
                message = f"MT5 terminal {self.name}: {info}"
                if started.fatal:
                    log.error("%s", message)
                    self._set_state(Connection.DISCONNECTED, info)
                    if not first.done():
                        first.set_exception(ConfigError(message, [info]))
                    return
                if not first.done():
                    self._set_state(Connection.DISCONNECTED, info)
                    first.set_exception(RetryableError(message))
                    return
                log.warning("%s; retrying", message)
                self._set_state(Connection.CONNECTING, f"restarting: {info}")
            base, cap = self.restart_backoff
            delay = min(cap, base * 2**attempt) * random.uniform(0.8, 1.2)
            attempt += 1
            await asyncio.sleep(delay)

    async def _spawn(self) -> _WorkerHandle:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        config = replace(self._config, server_clock=self._clock_state)  # what was learnt so far
        process = ctx.Process(
            target=worker_module.main, args=(child, config), name=f"hedge-mt5:{self.name}", daemon=True
        )
        self._set_state(Connection.CONNECTING, "starting the MT5 worker")
        await asyncio.get_running_loop().run_in_executor(None, process.start)
        child.close()  # our copy: once the worker exits, the reader sees the end of the pipe
        log.info("MT5 worker of %s started (pid %s)", self.name, process.pid)
        return _WorkerHandle(process, parent, self)

    async def _on_ready(self, handle: _WorkerHandle, info: ReadyInfo) -> None:
        handle.ready = True
        self._problems = tuple(
            f"symbol {m} is not available on this terminal: map the symbol to the broker's name in "
            f"symbol_map of terminal {self.name} in the config"
            for m in info.missing_symbols
        )
        self._set_state(Connection.CONNECTED, f"login {info.login} on {info.server}")
        self._ready.set()
        if self._watched:
            await self._send_watch()

    async def _stop(self, handle: _WorkerHandle) -> None:
        handle.ready = False
        if handle.process.is_alive():
            handle.send(Stop())
        handle.stop_threads()
        await asyncio.get_running_loop().run_in_executor(None, handle.join, 3.0)
        self._fail_pending(handle, "the worker stopped")

    def _lose(self, handle: _WorkerHandle, reason: str) -> None:
        """The worker is gone or useless: no call may go to it any more, pending ones fail now, and
        the supervisor (waiting on ``handle.lost``) replaces it."""
        handle.ready = False
        if handle is self._handle:
            self._ready.clear()
        self._fail_pending(handle, reason)
        if not handle.lost.done():
            handle.lost.set_result(reason)

    def _fail_pending(self, handle: _WorkerHandle, reason: str) -> None:
        for fut in handle.pending.values():
            if not fut.done():
                fut.set_exception(_WorkerLost(reason))
        handle.pending.clear()

    def _set_state(self, state: Connection, detail: str) -> None:
        if (state, detail) != (self._state, self._detail):
            log.info("MT5 terminal %s: %s (%s)", self.name, state.value, detail)
        self._state, self._detail = state, detail

    # -- the server clock ---------------------------------------------------------------------------------

    async def _load_clock(self) -> None:
        if self._clock_loaded or self.meta_store is None:
            return
        try:
            self._clock_state = await self.meta_store.get_meta(store_key(self.name))
        except Exception as e:  # a hint only: the clock is learnt again from the next moving price
            log.warning("MT5 terminal %s: could not read the stored server clock: %s", self.name, e)
        self._clock_loaded = True

    def _save_clock(self, state: str) -> None:
        if state == self._clock_state:
            return
        self._clock_state = state
        if self.meta_store is None:
            return
        task = asyncio.create_task(self.meta_store.set_meta(store_key(self.name), state))
        self._saves.add(task)
        task.add_done_callback(self._saved)

    def _saved(self, task: asyncio.Task[None]) -> None:
        self._saves.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("MT5 terminal %s: could not store the server clock: %s", self.name, task.exception())

    @property
    def server_utc_offset(self) -> float | None:
        """Seconds the trade server's clock is ahead of UTC now, as the worker knows it (None: not yet)."""
        return self._status.server_offset if self._status is not None else None

    # -- messages from the worker (on the loop) -----------------------------------------------------------

    def _on_message(self, handle: _WorkerHandle, msg: FromWorker) -> None:
        if isinstance(msg, Reply):
            fut = handle.pending.pop(msg.request_id, None)
            if fut is not None and not fut.done():
                if isinstance(msg.result, WorkerFailure):
                    fut.set_exception(_WorkerError(msg.result.message))
                else:
                    fut.set_result(msg.result)
        elif isinstance(msg, Quotes):
            if handle is self._handle:
                self._publish(msg.quotes)
        elif isinstance(msg, StatusMsg):
            if handle is self._handle:
                self._on_status(msg.status)
        elif isinstance(msg, Ready | StartFailed):
            if not handle.started.done():
                handle.started.set_result(msg)
        elif isinstance(msg, Lost | PipeClosed):
            if not handle.started.done():
                handle.started.set_result(
                    StartFailed(f"the worker exited before it was ready: {msg.message}", fatal=False)
                )
            self._lose(handle, msg.message)
        else:
            log.warning("MT5 worker of %s sent an unknown message %r", self.name, type(msg).__name__)

    def _publish(self, quotes: tuple[Quote, ...]) -> None:
        now = time.monotonic()
        tradeable = self._status.connected if self._status is not None else True
        for q in quotes:
            symbol = self._watched.get(q.symbol)
            if symbol is not None:
                self._channel.publish(TerminalQuote(symbol, q.bid, q.ask, now, tradeable))

    def _on_status(self, status: Status) -> None:
        previous, self._status = self._status, status
        if status.server_clock:
            self._save_clock(status.server_clock)
        for name in status.reselected:
            if previous is None or name not in previous.reselected:
                log.warning(
                    "MT5 terminal %s: %s was removed from Market Watch; put it back (quotes had stopped)",
                    self.name,
                    name,
                )
        if status.connected:
            self._set_state(Connection.CONNECTED, "connected to the trade server")
        else:
            self._set_state(Connection.DISCONNECTED, _FIX_DISCONNECTED)

    # -- calls --------------------------------------------------------------------------------------------

    async def _call(self, request: Request, timeout: float) -> Result:
        handle = self._handle
        op = type(request).__name__
        if handle is None or not handle.ready:
            raise RetryableError(f"MT5 terminal {self.name} is not connected ({self._detail})")
        request_id = next(self._ids)
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        handle.pending[request_id] = fut
        handle.send(Call(request_id, request))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            handle.pending.pop(request_id, None)
            reason = f"{op} got no answer within {timeout:g} s: the worker is hung and is restarted"
            log.error("MT5 terminal %s: %s", self.name, reason)
            self._lose(handle, reason)
            handle.kill()
            raise _WorkerLost(reason) from None

    async def _read(self, request: Request) -> Result:
        try:
            return await self._call(request, self.call_timeout)
        except (_WorkerLost, _WorkerError) as e:
            raise RetryableError(f"MT5 terminal {self.name}: {type(request).__name__} failed: {e}") from e

    async def account_info(self) -> AccountInfo:
        a = _expect(await self._read(AccountReq()), AccountReply)
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
        reply = _expect(await self._read(PositionsReq()), PositionsReply)
        return [
            OpenPosition(
                ticket=str(p.ticket),
                symbol=self.symbols.from_broker(p.symbol),
                side=Side(p.side),
                volume=p.volume,
                open_price=p.open_price,
                open_time=_utc(p.open_time),
                magic=p.magic,
                comment=p.comment,
            )
            for p in reply.positions
        ]

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        """Trades opened or closed by an order with ``tag``'s magic (the key; the comment is a helper)."""
        reply = _expect(await self._read(FindReq(tag.magic)), FindReply)
        return [
            TradeRecord(
                ticket=str(r.ticket),
                symbol=self.symbols.from_broker(r.symbol),
                side=Side(r.side),
                volume=r.volume,
                open_price=r.open_price,
                open_time=_utc(r.open_time),
                state=TradeState.CLOSED if r.closed else TradeState.OPEN,
                magic=r.magic,
                close_price=r.close_price,
                close_time=_utc(r.close_time) if r.close_time is not None else None,
                close_magic=r.close_magic,
                close_reason=r.close_reason,
            )
            for r in reply.trades
        ]

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        wanted = list(dict.fromkeys(symbols))
        self._watched = {self.symbols.broker_name(s): s for s in wanted}
        self._channel.retain(wanted)
        if self._handle is not None and self._handle.ready:
            await self._send_watch()

    async def _send_watch(self) -> None:
        try:
            answer = _expect(await self._call(WatchReq(tuple(self._watched)), self.call_timeout), WatchReply)
        except (_WorkerLost, _WorkerError, RetryableError) as e:
            log.warning("MT5 terminal %s: could not set the watched symbols: %s", self.name, e)
            return
        self._symbol_problems = tuple(
            f"cannot watch {m}: not available on this terminal (map it in symbol_map of terminal "
            f"{self.name} in the config)"
            for m in answer.missing
        )

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        return self._channel.stream()

    def health(self) -> Health:
        """The state with every problem and its fix in words (the README's troubleshooting table)."""
        problems = list(self._problems) + list(self._symbol_problems)
        st = self._status
        trade_allowed = self._state is Connection.CONNECTED and self._ready.is_set()
        if st is not None:
            if not st.algo_trading:
                problems.append(_FIX_ALGO)
            if st.tradeapi_disabled or st.api_refused:
                problems.append(_FIX_PY_API)
            if not st.account_trade_allowed:
                problems.append("trading is disabled for this account: ask the broker")
            if not st.expert_allowed:
                problems.append(
                    "the account does not allow expert (automated) trading: ask the broker to enable it"
                )
            for name in st.reselected:
                problems.append(
                    f"symbol {name} was removed from Market Watch and put back by hedge-agent: keep it in "
                    "Market Watch (its quotes stop while it is out)"
                )
            for name in st.unavailable:
                problems.append(
                    f"symbol {name} is not in Market Watch and cannot be selected: check symbol_map of "
                    f"terminal {self.name} in the config"
                )
            if st.server_offset is None:
                problems.append(
                    "the trade server's time zone is not known yet: it is learnt from the first moving "
                    "price (or set server_utc_offset_hours in the config)"
                )
            if st.clock_mismatch is not None:
                problems.append(
                    f"server_utc_offset_hours says UTC{_hours(st.server_offset)} but the trade server's "
                    f'clock reads UTC{_hours(st.clock_mismatch)}: fix it in the config or set "auto"'
                )
            trade_allowed = (
                trade_allowed
                and st.algo_trading
                and not st.tradeapi_disabled
                and not st.api_refused
                and st.account_trade_allowed
                and st.expert_allowed
            )
        if self._state is not Connection.CONNECTED:
            problems.insert(0, self._detail)
        return Health(self._state, trade_allowed, self._detail, tuple(problems))

    # -- orders ------------------------------------------------------------------------------------------

    async def open_position(
        self,
        symbol: Symbol,
        side: Side,
        volume: float,
        tag: OrderTag,
        *,
        stop_distance: float | None = None,
    ) -> OrderResult:
        """``stop_distance``: the worker puts the ``sl`` on the order from the tick it sends it at, after
        checking it against the symbol's stops level (a nearer one is refused, nothing sent)."""
        request = OpenReq(
            symbol=self.symbols.broker_name(symbol),
            side=side.value,
            volume=volume,
            magic=tag.magic,
            comment=tag.comment[:COMMENT_CHARS],
            stop_distance=stop_distance or None,
        )
        return await self._order(request)

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        """Closes the position's volume *now* (at most ``volume``): after a partial close by the broker
        the rest is closed, never refused for asking too much."""
        try:
            number = int(ticket)
        except ValueError:
            return Rejected(rc.INVALID, f"ticket {ticket!r} is not an MT5 position ticket", retryable=False)
        return await self._order(CloseReq(number, volume, tag.magic, tag.comment[:COMMENT_CHARS]))

    async def _order(self, request: OpenReq | CloseReq) -> OrderResult:
        op = "open" if isinstance(request, OpenReq) else "close"
        async with self._order_lock:
            try:
                out = await self._call(request, self.order_timeout)
            except RetryableError as e:  # not connected: nothing was sent
                return Rejected(rc.CONNECTION, str(e), retryable=True)
            except (_WorkerLost, _WorkerError) as e:
                result: OrderResult = Unknown(f"{op} order outcome unknown: {e}")
            else:
                result = self._outcome(out)
        if isinstance(result, Unknown):
            log.warning(
                "MT5 terminal %s: %s (look the tag up before anything else)", self.name, result.reason
            )
        elif isinstance(result, Rejected) and not result.retryable:
            log.warning("MT5 terminal %s: %s order refused: %s", self.name, op, result.reason)
        return result

    def _outcome(self, out: Result) -> OrderResult:
        if isinstance(out, OrderFilled):
            return Filled(str(out.ticket), out.price, _utc(out.time), out.volume, out.code)
        if isinstance(out, OrderCode):
            return rc.mt5(out.code).result(out.comment)
        if isinstance(out, OrderNone):
            return rc.mt5_last_error(out.error).result(out.comment)
        if isinstance(out, NotSent):
            return Rejected(rc.CONNECTION, f"nothing was sent: {out.comment}", retryable=True)
        if isinstance(out, SymbolMissing):
            symbol = self.symbols.from_broker(out.symbol)
            canonical = f" (canonical {symbol.value})" if symbol is not None else ""
            return Rejected(
                rc.INVALID,
                f"terminal {self.name} has no symbol {out.symbol}{canonical}: set the broker's name for it "
                f"in symbol_map of terminal {self.name} in the config ({out.comment})",
                retryable=False,
            )
        raise TypeError(f"unexpected order reply {type(out).__name__}")


def _expect(result: Result, kind: type[_R]) -> _R:
    if not isinstance(result, kind):
        raise RetryableError(f"MT5 worker answered {type(result).__name__}, expected {kind.__name__}")
    return result


def _hours(offset: float | None) -> str:
    if offset is None:
        return "?"
    return f"{offset / 3600:+g}"
