"""A Python stand-in for ea/HedgeBridge.mq4: it speaks ea/PROTOCOL.md over a real socket exactly as the EA
does, and trades on a :class:`SimBroker` instead of a MetaTrader server. The demo and the tests use it.

Its steps carry the same names as the EA's MQL functions (``connect_bridge``, ``handle_order``,
``execute_open``, ``dedup_put``, ...), so the two can be read side by side. Two differences, on purpose:
the EA runs everything on one timer thread, whereas here frames are handled in order by one task while a
second task runs the timer (ticks, account, heartbeats); and the EA's de-dup store is a file, here a dict
that outlives reconnects (pass the same ``store`` to a new emulator to model an EA restart).

Its backoff (0.05 s doubling to 2 s) is shorter than the EA's (0.5 s to 10 s) so that tests run fast;
both are parameters. The SimBroker speaks MT5 retcodes; :data:`MT4_ERROR_OF` turns them into what MT4's ``GetLastError()``
would say, so the bridge sees MT4 codes only.

Fault switches (attributes, consumed as orders pass): ``drop_on_order`` (the socket dies as an order
arrives: never seen), ``drop_after_execute`` (drop the socket after the order is placed and stored, before
the result), ``lose_results`` (place and store, never answer),
``duplicate_results``, ``result_delay_s`` (answer late), ``trade_context_busy`` (the next N attempts get
146 and are retried like the EA does), ``silent`` (stop sending anything: a hung terminal); methods
:meth:`send_garbage`, :meth:`drop_connection` and :meth:`reconnect_with_stale_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, replace
from typing import Literal

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hedge_agent.domain.enums import Side
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.simulated import SimBroker, SimError, SimTrade

from .codec import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Account,
    ErrorMsg,
    FrameError,
    FromAgent,
    GetPositions,
    Heartbeat,
    Hello,
    Message,
    Order,
    Positions,
    Query,
    Result,
    Stored,
    Trade,
    Trades,
    Watch,
    Watching,
    Welcome,
    encode,
    parse_from_agent,
)

log = structlog.get_logger(__name__)

EA_VERSION = "1.0.0"
TRADE_CONTEXT_BUSY = 146
TRADE_TIMEOUT = 128
INVALID_TICKET = 4108
#: what HedgeBridge.mq4 retries itself (RefreshRates, short pause) before reporting
RETRIED = frozenset({TRADE_CONTEXT_BUSY, 138, 135, 136})
#: what it reports as "unknown" rather than "rejected" (the order may have been executed)
UNKNOWN_CODES = frozenset({TRADE_TIMEOUT, 1})

#: SimBroker (MT5 retcode) -> the MT4 GetLastError() a real terminal would give
MT4_ERROR_OF: dict[int, int] = {
    rc.REQUOTE: 138,
    rc.PRICE_CHANGED: 135,
    rc.PRICE_OFF: 136,
    rc.TIMEOUT: TRADE_TIMEOUT,
    rc.CONNECTION: 6,
    rc.MARKET_CLOSED: 132,
    rc.TRADE_DISABLED: 133,
    rc.SERVER_DISABLES_AT: 133,
    rc.CLIENT_DISABLES_AT: 4109,
    rc.NO_MONEY: 134,
    rc.INVALID_VOLUME: 131,
    rc.INVALID_CLOSE_VOLUME: 131,
    rc.INVALID_PRICE: 129,
    rc.INVALID_STOPS: 130,
    rc.TOO_MANY_REQUESTS: 141,
    rc.LOCKED: 139,
    rc.INVALID: 3,
    rc.POSITION_CLOSED: INVALID_TICKET,
    rc.LIMIT_POSITIONS: 148,
    rc.HEDGE_PROHIBITED: 149,
    10045: 150,  # FIFO close
}
COMMON_ERROR = 2  # what MT4 says for a dealer rejection and anything without a closer match


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One line of the EA's de-dup file (MQL4/Files/HedgeBridge/dedup-<login>.csv)."""

    id: str
    op: Literal["open", "close"]
    magic: int
    target: int | None  # close: the ticket to close
    status: Literal["pending", "done", "rejected", "unknown"] = "pending"
    ticket: int | None = None
    price: float | None = None
    volume: float | None = None
    time: float | None = None
    code: int = 0
    reason: str = ""

    def wire(self) -> Stored:
        return Stored(status=self.status, op=self.op, ticket=self.ticket, price=self.price, volume=self.volume, time=self.time, code=self.code, reason=self.reason)  # fmt: skip


#: one OrderSend/OrderClose attempt: (MT4 error code, the done entry when it filled)
_Attempt = Callable[[], tuple[int, "StoreEntry | None"]]


class EaEmulator:
    """See the module docstring. ``start()`` returns at once; the emulator connects (and reconnects, with
    backoff) by itself, before or after the bridge exists."""

    def __init__(
        self,
        url: str,
        token: str,
        broker: SimBroker,
        *,
        login: int,
        server: str,
        build: int = 1420,
        company: str = "hedge-agent simulator",
        ea_version: str = EA_VERSION,
        protocol_version: int = PROTOCOL_VERSION,
        timer_ms: float = 10.0,
        account_every_s: float = 1.0,
        max_retries: int = 3,
        retry_pause_s: float = 0.01,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        welcome_timeout_s: float = 2.0,
        walk: bool = False,
        store: MutableMapping[str, StoreEntry] | None = None,
        name: str = "ea",
    ) -> None:
        self.url = url
        self.token = token
        self.broker = broker
        self.login = login
        self.server = server
        self.build = build
        self.company = company
        self.ea_version = ea_version
        self.protocol_version = protocol_version
        self.timer_ms = timer_ms
        self.account_every_s = account_every_s
        self.max_retries = max_retries
        self.retry_pause_s = retry_pause_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.welcome_timeout_s = welcome_timeout_s
        self.walk = walk
        self.name = name
        #: the de-dup store; survives reconnects (and EA restarts when shared)
        self.store: MutableMapping[str, StoreEntry] = {} if store is None else store
        self.instance = secrets.token_hex(6)
        # -- fault switches --
        self.drop_on_order = 0
        self.drop_after_execute = 0
        self.lose_results = 0
        self.duplicate_results = False
        self.result_delay_s = 0.0
        self.trade_context_busy = 0
        self.silent = False
        # -- state, readable by tests --
        self.session: str | None = None
        self.welcome: Welcome | None = None
        self.connections = 0  # welcomes received
        self.attempts = 0  # connection attempts
        self.last_close: tuple[int | None, str] | None = None  # (code, reason) of the last link or refusal
        self.errors: list[ErrorMsg] = []  # error frames the bridge sent
        self.sent_results: list[Result] = []  # every result frame sent (replays included)
        self.watched: list[str] = []
        self._ws: ClientConnection | None = None
        self._welcomed = asyncio.Event()
        self._down = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stale_session: str | None = None
        self._last_sent: dict[str, tuple[float, float]] = {}
        self._last_account: tuple[object, ...] | None = None
        self._account_sent_at = 0.0
        self._hb_sent_at = 0.0
        self._last_rx = 0.0
        self._busy = False  # inside handle_order: the EA's thread is in OrderSend and reads nothing

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"ea-emulator-{self.name}")

    async def stop(self) -> None:
        """OnDeinit: close the link (1000 "EA stopped") and stop reconnecting."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(1000, "EA stopped")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def welcomed(self) -> bool:
        return self._welcomed.is_set()

    async def wait_welcomed(self, within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            await self._welcomed.wait()

    async def _run(self) -> None:
        """The EA's reconnect loop, driven by its timer: never stuck after a failure, and fine before the
        agent starts (connection refused is just another failure)."""
        delay = self.backoff_initial_s
        while not self._stopping:
            try:
                ws = await self.connect_bridge()
            except (OSError, WebSocketException, TimeoutError, FrameError) as e:
                log.debug("ea.connect_failed", ea=self.name, why=str(e) or type(e).__name__)
            else:
                delay = self.backoff_initial_s
                try:
                    await self.serve_link(ws)
                except (OSError, WebSocketException) as e:
                    log.debug("ea.link_failed", ea=self.name, why=str(e))
                finally:
                    self._lost(ws)
            if self._stopping:
                break
            await self.schedule_reconnect(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def schedule_reconnect(self, delay: float) -> None:
        await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: two EAs do not retry in step

    def _lost(self, ws: ClientConnection) -> None:
        if ws.close_code is not None:
            self.last_close = (ws.close_code, ws.close_reason or "")
        elif self.last_close is None or self.last_close[0] is not None:
            self.last_close = (None, "connection lost")
        self._ws = None
        self._welcomed.clear()
        self._down.set()

    # -- connect, hello, welcome ------------------------------------------------------------------------

    async def connect_bridge(self) -> ClientConnection:
        self.attempts += 1
        ws = await connect(
            self.url,
            compression=None,
            proxy=None,
            open_timeout=self.welcome_timeout_s,
            ping_interval=None,
            close_timeout=1.0,
            max_size=MAX_FRAME_BYTES,
        )
        try:
            await self.send_hello(ws)
            async with asyncio.timeout(self.welcome_timeout_s):
                raw = await ws.recv()
            msg = parse_from_agent(raw)
            if not isinstance(msg, Welcome):
                raise FrameError(f"expected welcome, got {msg.type!r}")
        except BaseException:
            self._lost(ws)
            await ws.close()
            raise
        self.on_welcome(ws, msg)
        return ws

    async def send_hello(self, ws: ClientConnection) -> None:
        session, self._stale_session = self._stale_session or self.session, None
        hello = Hello(
            v=self.protocol_version,
            token=self.token,
            terminal="MT4",
            build=self.build,
            login=self.login,
            server=self.server,
            company=self.company,
            ea_version=self.ea_version,
            instance=self.instance,
            session=session,
        )
        await ws.send(encode(hello))

    def on_welcome(self, ws: ClientConnection, msg: Welcome) -> None:
        self._ws = ws
        self.welcome = msg
        self.session = msg.session
        self.connections += 1
        self._last_sent.clear()
        self._last_account = None
        self._last_rx = time.monotonic()
        self._down.clear()
        self._welcomed.set()

    # -- the link ---------------------------------------------------------------------------------------

    async def serve_link(self, ws: ClientConnection) -> None:
        timer = asyncio.create_task(self._timer(ws), name=f"ea-timer-{self.name}")
        try:
            await self.send_account(ws, force=True)
            async for raw in ws:
                self._last_rx = time.monotonic()
                try:
                    msg = parse_from_agent(raw)
                except FrameError as e:
                    await self._send(ws, ErrorMsg(code="bad_frame", reason=str(e)))
                    continue
                await self.handle_frame(ws, msg)
        finally:
            timer.cancel()

    async def _timer(self, ws: ClientConnection) -> None:
        while ws.close_code is None:
            await asyncio.sleep(self.timer_ms / 1000)
            await self.on_timer(ws)

    async def on_timer(self, ws: ClientConnection) -> None:
        """What the EA's OnTimer does once connected: ticks, account, heartbeat, dead-peer check."""
        if self.silent or self._busy:
            return
        if self.walk:
            self.broker.advance()
        await self.send_ticks(ws)
        await self.send_account(ws)
        now = time.monotonic()
        welcome = self.welcome
        if welcome is None:
            return
        if now - self._hb_sent_at >= welcome.heartbeat_s:
            self._hb_sent_at = now
            await self._send(ws, Heartbeat())
        if now - self._last_rx > welcome.dead_after_s:
            log.warning("ea.dead_peer", ea=self.name)
            await ws.close(4007, "dead peer: no frame from the agent")
            return

    async def handle_frame(self, ws: ClientConnection, msg: FromAgent) -> None:
        if isinstance(msg, Order):
            await self.handle_order(ws, msg)
        elif isinstance(msg, Query):
            await self.handle_query(ws, msg)
        elif isinstance(msg, GetPositions):
            await self.handle_get_positions(ws, msg)
        elif isinstance(msg, Watch):
            await self.handle_watch(ws, msg)
        elif isinstance(msg, ErrorMsg):
            self.errors.append(msg)
        # hb: nothing to do (receiving it was the point); welcome: only at the start

    async def handle_watch(self, ws: ClientConnection, msg: Watch) -> None:
        known = set(self.broker.symbol_names())  # the EA: SymbolSelect(name, true)
        self.watched = [s for s in msg.symbols if s in known]
        missing = [s for s in msg.symbols if s not in known]
        self._last_sent.clear()  # send the current price of every watched symbol once
        await self._send(ws, Watching(symbols=self.watched, missing=missing))

    async def send_ticks(self, ws: ClientConnection) -> None:
        if not self.broker.connected:
            return  # a disconnected terminal gets no quotes
        batch: list[list[object]] = []
        for name in self.watched:
            q = self.broker.quote(name)
            if self._last_sent.get(name) != (q.bid, q.ask):
                self._last_sent[name] = (q.bid, q.ask)
                batch.append([name, q.bid, q.ask, int(q.time * 1000)])
        if batch:
            # written by hand, "type" first: the bridge's fast path for ticks keys on that prefix
            await ws.send(json.dumps({"type": "ticks", "q": batch}, separators=(",", ":")))

    async def send_account(self, ws: ClientConnection, *, force: bool = False) -> None:
        """Balance, credit and the trading switches go out as soon as they change; equity and margin
        (which move with every tick) at most every ``account_every_s``."""
        a = self.broker.account()
        connected = self.broker.connected
        now = time.monotonic()
        key = (a.balance, a.credit, a.trade_allowed, connected)
        floating = (a.equity, a.margin)
        last = self._last_account
        due = now - self._account_sent_at >= self.account_every_s
        if not force and last is not None and last[:4] == key and (last[4:] == floating or not due):
            return
        await self._send(ws, self._account_now())

    def _account_now(self) -> Account:
        """The account as the EA reports it (and remembers as last sent)."""
        a = self.broker.account()
        connected = self.broker.connected
        key = (a.balance, a.credit, a.trade_allowed, connected)
        self._last_account, self._account_sent_at = (*key, a.equity, a.margin), time.monotonic()
        return Account(
            login=a.login,
            balance=a.balance,
            credit=a.credit,
            equity=a.equity,
            margin=a.margin,
            margin_level=a.margin_level,
            currency=a.currency,
            trade_allowed=a.trade_allowed,
            connected=connected,
        )

    # -- orders -----------------------------------------------------------------------------------------

    async def handle_order(self, ws: ClientConnection, order: Order) -> None:
        """Exactly once per request id: a repeated id gets the stored result, never a second order."""
        self._busy = True
        try:
            await self._handle_order(ws, order)
        finally:
            self._busy = False
            # the EA reads what queued up in its socket during OrderSend before it judges the agent dead
            self._last_rx = time.monotonic()

    async def _handle_order(self, ws: ClientConnection, order: Order) -> None:
        if self.drop_on_order > 0:  # the frame dies with the socket: the EA never saw it
            self.drop_on_order -= 1
            self.drop_connection()
            return
        seen = self.dedup_get(order.id)
        if seen is not None:
            await self.send_ack(ws, order.id, dup=True)
            await self.send_result(ws, seen)
            return
        self.dedup_put(StoreEntry(order.id, order.op, order.magic, order.ticket))  # written ahead
        await self.send_ack(ws, order.id, dup=False)
        entry = await (self.execute_open(order) if order.op == "open" else self.execute_close(order))
        self.dedup_put(entry)
        if self.drop_after_execute > 0:
            self.drop_after_execute -= 1
            self.drop_connection()
            return
        if self.lose_results > 0:
            self.lose_results -= 1
            return
        if self.result_delay_s > 0:
            await asyncio.sleep(self.result_delay_s)
        await self.send_result(ws, entry, with_account=True)
        if self.duplicate_results:
            await self.send_result(ws, entry)

    async def send_ack(self, ws: ClientConnection, request_id: str, *, dup: bool) -> None:
        # by hand, "type" first, as the EA writes it (and the bridge's fast path expects); the id passed
        # the order's RequestId pattern ([A-Za-z0-9_.:-]), so it needs no JSON escaping
        frame = f'{{"type":"ack","id":"{request_id}","dup":{"true" if dup else "false"}}}'
        try:
            await ws.send(frame)
        except ConnectionClosed:
            pass  # the link is gone: the run loop reconnects

    async def execute_open(self, order: Order) -> StoreEntry:
        assert order.symbol is not None and order.side is not None
        side = Side(order.side)

        def attempt() -> tuple[int, StoreEntry | None]:
            try:
                q = self.broker.quote(order.symbol or "")  # RefreshRates(); Ask / Bid
            except SimError:
                return 4106, None  # ERR_UNKNOWN_SYMBOL
            price = q.ask if side is Side.BUY else q.bid
            res = self.broker.open(order.symbol or "", side, order.volume, magic=order.magic, comment=order.comment, price=price, deviation=order.deviation, request_id=order.id)  # fmt: skip
            if res.ok:
                done = StoreEntry(order.id, "open", order.magic, None, "done", res.position, res.price, res.volume, res.time)  # fmt: skip
                return 0, done
            return MT4_ERROR_OF.get(res.code, COMMON_ERROR), None

        return await self._with_retries(order, attempt)

    async def execute_close(self, order: Order) -> StoreEntry:
        assert order.ticket is not None
        ticket = order.ticket

        def attempt() -> tuple[int, StoreEntry | None]:
            pos = self.broker.position(ticket)  # OrderSelect(ticket, SELECT_BY_TICKET), OrderCloseTime() == 0
            if pos is None:
                return INVALID_TICKET, None
            q = self.broker.quote(pos.symbol)
            price = q.bid if pos.side is Side.BUY else q.ask
            res = self.broker.close(ticket, order.volume, magic=order.magic, comment=order.comment, price=price, deviation=order.deviation, request_id=order.id)  # fmt: skip
            if res.ok:
                done = StoreEntry(order.id, "close", order.magic, ticket, "done", ticket, res.price, res.volume, res.time)  # fmt: skip
                return 0, done
            return MT4_ERROR_OF.get(res.code, COMMON_ERROR), None

        return await self._with_retries(order, attempt)

    async def _with_retries(self, order: Order, attempt: _Attempt) -> StoreEntry:
        """The EA's loop around OrderSend/OrderClose: wait out a busy trade context and retry requotes and
        price changes up to ``max_retries`` times; 128 is reported as unknown, never retried."""
        tries = 0
        while True:
            if self.trade_context_busy > 0:
                self.trade_context_busy -= 1
                code, done = TRADE_CONTEXT_BUSY, None
            else:
                code, done = attempt()
            if done is not None:
                return done
            if code in RETRIED and tries < self.max_retries:
                tries += 1
                await asyncio.sleep(self.retry_pause_s)
                continue
            status: Literal["rejected", "unknown"] = "unknown" if code in UNKNOWN_CODES else "rejected"
            reason = _REASONS.get(code, rc.mt4(code).reason)
            return StoreEntry(order.id, order.op, order.magic, order.ticket, status, code=code, reason=reason)

    async def send_result(
        self, ws: ClientConnection, entry: StoreEntry, *, with_account: bool = False
    ) -> None:
        """``with_account``: right after a trade the result carries the account (balance already moved)."""
        status: Literal["done", "rejected", "unknown"]
        if entry.status == "pending":  # the EA stopped during this order: the trade may exist
            entry = replace(entry, code=TRADE_TIMEOUT, reason="EA restarted during the order")
            status = "unknown"
        else:
            status = entry.status
        account = self._account_now() if with_account else None
        result = Result(id=entry.id, status=status, ticket=entry.ticket, price=entry.price, volume=entry.volume, time=entry.time, code=entry.code, reason=entry.reason, account=account)  # fmt: skip
        self.sent_results.append(result)
        await self._send(ws, result)

    def dedup_get(self, request_id: str) -> StoreEntry | None:
        return self.store.get(request_id)

    def dedup_put(self, entry: StoreEntry) -> None:
        self.store[entry.id] = entry

    # -- lookups ----------------------------------------------------------------------------------------

    async def handle_query(self, ws: ClientConnection, q: Query) -> None:
        """OrderSelect over MODE_TRADES and MODE_HISTORY by OrderMagicNumber(); closes by the store (MT4's
        OrderClose carries no magic, so only the EA knows which of its requests closed a ticket)."""
        found: dict[int, SimTrade] = {}
        if q.magic is not None:
            for t in self._all_trades():
                if t.magic == q.magic:
                    found[t.ticket] = t
            for e in self.store.values():
                if e.op == "close" and e.magic == q.magic and e.status != "rejected" and e.target is not None:
                    closed = self.broker.trade(e.target)
                    if closed is not None and closed.closed:
                        found[closed.ticket] = closed
        if q.ticket is not None:
            one = self.broker.trade(q.ticket)
            if one is not None:
                found[one.ticket] = one
        stored = self.dedup_get(q.req) if q.req else None
        trades = [self._wire(t) for t in found.values()]
        await self._send(ws, Trades(id=q.id, trades=trades, stored=stored.wire() if stored else None))

    async def handle_get_positions(self, ws: ClientConnection, msg: GetPositions) -> None:
        positions = [self._wire(t) for t in self._all_trades() if not t.closed]
        await self._send(ws, Positions(id=msg.id, positions=positions))

    def _all_trades(self) -> list[SimTrade]:
        tickets = dict.fromkeys(p.ticket for p in self.broker.positions())
        tickets.update(dict.fromkeys(d.position for d in self.broker.deals()))
        return [t for t in (self.broker.trade(k) for k in tickets) if t is not None]

    def _wire(self, t: SimTrade) -> Trade:
        close_magic, reason = None, t.close_reason
        if t.closed:
            ours = [e for e in self.store.values() if e.op == "close" and e.target == t.ticket and e.status != "rejected"]  # fmt: skip
            if ours:
                close_magic, reason = ours[-1].magic, "closed by expert"
        return Trade(
            ticket=t.ticket,
            symbol=t.symbol,
            side=t.side.value,
            volume=t.volume,
            open_price=t.open_price,
            open_time=t.open_time,
            magic=t.magic,
            comment=t.comment,
            state="closed" if t.closed else "open",
            close_price=t.close_price,
            close_time=t.close_time,
            close_magic=close_magic,
            close_reason=reason,
        )

    # -- faults -----------------------------------------------------------------------------------------

    def drop_connection(self) -> None:
        """Drop the socket without a close frame (a crash, a killed terminal)."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def send_garbage(self, frames: Iterable[str | bytes] | None = None) -> int:
        """Send frames the bridge must reject one by one (with an error frame) without dropping the link."""
        ws = self._ws
        if ws is None:
            raise RuntimeError("not connected")
        sent = 0
        for frame in frames if frames is not None else GARBAGE:
            await ws.send(frame)
            sent += 1
        return sent

    async def reconnect_with_stale_session(self, stale: str | None = None) -> None:
        """Drop the link, come back presenting a session that is not the bridge's current one (default:
        made up), then replay every result sent before: the bridge must welcome it with a fresh session
        and apply none of the stale results."""
        replay = list(self.sent_results)
        self._stale_session = stale or secrets.token_hex(8)
        self.drop_connection()
        await self._down.wait()
        await self.wait_welcomed(within=5.0)
        ws = self._ws
        if ws is not None:
            for r in replay:
                await self._send(ws, r)

    async def _send(self, ws: ClientConnection, msg: Message) -> None:
        try:
            await ws.send(encode(msg))
        except ConnectionClosed:
            pass  # the link is gone: the run loop reconnects


#: malformed frames of every kind the bridge must survive
GARBAGE: tuple[str | bytes, ...] = (
    "not json at all",
    b"\x00\x01 binary frame",
    "[1, 2, 3]",
    '{"no_type": true}',
    '{"type": "launch_missiles"}',
    '{"type": "result", "id": "x"}',
    '{"type": "result", "id": "has spaces!", "status": "done"}',
    '{"type":"ticks","q":[["EURUSD","1.1",1.2,5]]}',
    '{"type":"ticks","q":[["EURUSD",NaN,1.2,5]]}',
    '{"type": "account", "login": "5000001"}',
    "{" * 5000,
)

_REASONS = {
    INVALID_TICKET: "invalid ticket: no open trade with this ticket",
    4106: "unknown symbol",
}
