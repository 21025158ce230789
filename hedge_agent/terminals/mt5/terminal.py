"""``Mt5Terminal``: the ``Terminal`` protocol over one MT5 worker process (see :mod:`.worker`).

The agent side never blocks its event loop: a reader thread and a writer thread move messages over the
pipe, and results come back to the loop with ``call_soon_threadsafe``. A supervisor task starts the
worker, restarts it with backoff when it dies, hangs (a call outlives its timeout: the worker is killed)
or loses its terminal, and keeps :meth:`health` current. Unknown order outcomes (timeout, ``None``,
10012, lost worker) are looked up by tag before they are returned.
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
from datetime import UTC, datetime
from multiprocessing.connection import Connection as PipeEnd
from multiprocessing.process import BaseProcess
from typing import Any

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
from hedge_agent.terminals.resolve import resolve_unknown

from . import worker as worker_module
from .protocol import Status, WorkerConfig

log = logging.getLogger(__name__)


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
        self.started: asyncio.Future[tuple[str, Any]] = self.loop.create_future()
        self.lost: asyncio.Future[str] = self.loop.create_future()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.ready = False
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._terminal = terminal
        name = terminal.name
        self._reader = threading.Thread(target=self._read, name=f"mt5-read:{name}", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"mt5-write:{name}", daemon=True)
        self._reader.start()
        self._writer.start()

    def send(self, msg: tuple[Any, ...]) -> None:
        self._outbox.put(msg)

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError) as e:
                msg = ("eof", f"pipe closed ({type(e).__name__})")
            try:
                self.loop.call_soon_threadsafe(self._terminal._on_message, self, msg)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if msg[0] == "eof":
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
    the terminal. ``extra_sys_path`` / ``worker_env`` are for tests (the fake ``MetaTrader5`` package)."""

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
        restart_backoff: tuple[float, float] = (0.5, 30.0),
        resolve_attempts: int = 3,
        resolve_delay: float = 0.3,
        extra_sys_path: Sequence[str] = (),
        worker_env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.symbols = symbols or SymbolTable()
        self.call_timeout = call_timeout
        self.order_timeout = order_timeout
        self.start_timeout = start_timeout
        self.restart_backoff = restart_backoff
        self.resolve_attempts = resolve_attempts
        self.resolve_delay = resolve_delay
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
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._supervisor is not None and not self._supervisor.done():
            return
        self._closing = False
        if self._channel.closed:
            self._channel = QuoteChannel()
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
            try:
                kind, info = await asyncio.wait_for(asyncio.shield(handle.started), self.start_timeout)
            except TimeoutError:
                kind, info = "failed", f"the worker did not start within {self.start_timeout:g} s"
            if kind == "ready":
                attempt = 0
                await self._on_ready(handle, info)
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
                message = f"MT5 terminal {self.name}: {info}"
                if kind == "fatal":
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
        process = ctx.Process(
            target=worker_module.main, args=(child, self._config), name=f"hedge-mt5:{self.name}", daemon=True
        )
        self._set_state(Connection.CONNECTING, "starting the MT5 worker")
        await asyncio.get_running_loop().run_in_executor(None, process.start)
        child.close()  # our copy: once the worker exits, the reader sees the end of the pipe
        log.info("MT5 worker of %s started (pid %s)", self.name, process.pid)
        return _WorkerHandle(process, parent, self)

    async def _on_ready(self, handle: _WorkerHandle, info: dict[str, Any]) -> None:
        handle.ready = True
        missing = [str(m) for m in info.get("missing_symbols", [])]
        self._problems = tuple(f"symbol {m} is not available on this terminal" for m in missing)
        self._set_state(Connection.CONNECTED, f"login {info.get('login')} on {info.get('server')}")
        self._ready.set()
        if self._watched:
            await self._send_watch()

    async def _stop(self, handle: _WorkerHandle) -> None:
        handle.ready = False
        if handle.process.is_alive():
            handle.send(("stop",))
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

    # -- messages from the worker (on the loop) -----------------------------------------------------------

    def _on_message(self, handle: _WorkerHandle, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "reply":
            _, request_id, ok, payload = msg
            fut = handle.pending.pop(request_id, None)
            if fut is not None and not fut.done():
                if ok:
                    fut.set_result(payload)
                else:
                    fut.set_exception(_WorkerError(str(payload)))
        elif kind == "quotes":
            if handle is self._handle:
                self._publish(msg[1])
        elif kind == "status":
            if handle is self._handle:
                self._on_status(msg[1])
        elif kind in ("ready", "fatal", "failed"):
            if not handle.started.done():
                handle.started.set_result((kind, msg[1]))
        elif kind in ("lost", "eof"):
            if not handle.started.done():
                handle.started.set_result(("failed", f"the worker exited before it was ready: {msg[1]}"))
            self._lose(handle, str(msg[1]))
        else:
            log.warning("MT5 worker of %s sent an unknown message %r", self.name, kind)

    def _publish(self, quotes: list[tuple[str, float, float, float]]) -> None:
        now = time.monotonic()
        tradeable = self._status.connected if self._status is not None else True
        for name, bid, ask, _ in quotes:
            symbol = self._watched.get(name)
            if symbol is not None:
                self._channel.publish(TerminalQuote(symbol, bid, ask, now, tradeable))

    def _on_status(self, status: Status) -> None:
        self._status = status
        if status.connected:
            self._set_state(Connection.CONNECTED, "connected to the trade server")
        else:
            self._set_state(Connection.DISCONNECTED, "the terminal has no connection to the trade server")

    # -- calls --------------------------------------------------------------------------------------------

    async def _call(self, op: str, args: dict[str, Any], timeout: float) -> Any:
        handle = self._handle
        if handle is None or not handle.ready:
            raise RetryableError(f"MT5 terminal {self.name} is not connected ({self._detail})")
        request_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        handle.pending[request_id] = fut
        handle.send(("call", request_id, op, args))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            handle.pending.pop(request_id, None)
            reason = f"{op} got no answer within {timeout:g} s: the worker is hung and is restarted"
            log.error("MT5 terminal %s: %s", self.name, reason)
            self._lose(handle, reason)
            handle.kill()
            raise _WorkerLost(reason) from None

    async def _read(self, op: str, args: dict[str, Any]) -> Any:
        try:
            return await self._call(op, args, self.call_timeout)
        except (_WorkerLost, _WorkerError) as e:
            raise RetryableError(f"MT5 terminal {self.name}: {op} failed: {e}") from e

    async def account_info(self) -> AccountInfo:
        a = await self._read("account", {})
        return AccountInfo(
            login=a["login"],
            balance=a["balance"],
            credit=a["credit"],
            equity=a["equity"],
            margin=a["margin"],
            margin_level=a["margin_level"],
            trade_allowed=a["trade_allowed"],
            currency=a["currency"],
        )

    async def positions(self) -> list[OpenPosition]:
        return [
            OpenPosition(
                ticket=str(p["ticket"]),
                symbol=self.symbols.from_broker(p["symbol"]),
                side=Side(p["side"]),
                volume=p["volume"],
                open_price=p["open_price"],
                open_time=_utc(p["open_time"]),
                magic=p["magic"],
                comment=p["comment"],
            )
            for p in await self._read("positions", {})
        ]

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        return [
            TradeRecord(
                ticket=str(r["ticket"]),
                symbol=self.symbols.from_broker(r["symbol"]),
                side=Side(r["side"]),
                volume=r["volume"],
                open_price=r["open_price"],
                open_time=_utc(r["open_time"]),
                state=TradeState.CLOSED if r["closed"] else TradeState.OPEN,
                magic=r["magic"],
                close_price=r["close_price"],
                close_time=_utc(r["close_time"]) if r["close_time"] is not None else None,
                close_magic=r["close_magic"],
                close_reason=r["close_reason"],
            )
            for r in await self._read("find", {"magic": tag.magic})
        ]

    async def _find_when_ready(self, tag: OrderTag) -> list[TradeRecord]:
        """``find`` for resolving an unknown outcome: waits for a restarting worker first."""
        try:
            await asyncio.wait_for(self._ready.wait(), self.start_timeout)
        except TimeoutError:
            pass
        return await self.find(tag)

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        wanted = list(dict.fromkeys(symbols))
        self._watched = {self.symbols.broker_name(s): s for s in wanted}
        self._channel.retain(wanted)
        if self._handle is not None and self._handle.ready:
            await self._send_watch()

    async def _send_watch(self) -> None:
        try:
            answer = await self._call("watch", {"symbols": list(self._watched)}, self.call_timeout)
        except (_WorkerLost, _WorkerError, RetryableError) as e:
            log.warning("MT5 terminal %s: could not set the watched symbols: %s", self.name, e)
            return
        missing = answer.get("missing", [])
        self._symbol_problems = tuple(f"cannot watch {m}: not available on this terminal" for m in missing)

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        return self._channel.stream()

    def health(self) -> Health:
        problems = list(self._problems) + list(self._symbol_problems)
        st = self._status
        trade_allowed = self._state is Connection.CONNECTED and self._ready.is_set()
        if st is not None:
            if not st.algo_trading:
                problems.append("Algo Trading is switched off in the terminal")
            if not st.account_trade_allowed:
                problems.append("trading is disabled for this account")
            if not st.expert_allowed:
                problems.append("the account does not allow expert (automated) trading")
            trade_allowed = (
                trade_allowed and st.algo_trading and st.account_trade_allowed and st.expert_allowed
            )
        if self._state is not Connection.CONNECTED:
            problems.insert(0, self._detail)
        return Health(self._state, trade_allowed, self._detail, tuple(problems))

    # -- orders ------------------------------------------------------------------------------------------

    async def open_position(self, symbol: Symbol, side: Side, volume: float, tag: OrderTag) -> OrderResult:
        args = {
            "symbol": self.symbols.broker_name(symbol),
            "side": side.value,
            "volume": volume,
            "magic": tag.magic,
            "comment": tag.comment[:COMMENT_MAX],
        }
        return await self._order("open", args, tag, closing=None)

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        try:
            number = int(ticket)
        except ValueError:
            return Rejected(rc.INVALID, f"ticket {ticket!r} is not an MT5 position ticket", retryable=False)
        args = {"ticket": number, "volume": volume, "magic": tag.magic, "comment": tag.comment[:COMMENT_MAX]}
        return await self._order("close", args, tag, closing=ticket)

    async def _order(self, op: str, args: dict[str, Any], tag: OrderTag, closing: str | None) -> OrderResult:
        async with self._order_lock:
            try:
                out = await self._call(op, args, self.order_timeout)
            except RetryableError as e:  # not connected: nothing was sent
                return Rejected(rc.CONNECTION, str(e), retryable=True)
            except (_WorkerLost, _WorkerError) as e:
                result: OrderResult = Unknown(f"{op} order outcome unknown: {e}")
            else:
                result = self._outcome(out)
        if isinstance(result, Unknown):
            log.warning("MT5 terminal %s: %s; looking the tag up", self.name, result.reason)
            return await resolve_unknown(
                self._find_when_ready,
                tag,
                result,
                closing=closing,
                attempts=self.resolve_attempts,
                delay=self.resolve_delay,
            )
        return result

    def _outcome(self, out: dict[str, Any]) -> OrderResult:
        kind = out["kind"]
        if kind == "filled":
            return Filled(str(out["ticket"]), out["price"], _utc(out["time"]), out["volume"], out["code"])
        if kind == "code":
            return rc.mt5(int(out["code"])).result(str(out.get("comment", "")))
        if kind == "not_sent":
            return Rejected(rc.CONNECTION, str(out["comment"]), retryable=True)
        return Unknown(str(out.get("comment", "no answer")), code=None)
