"""A Python stand-in for ea/HedgeBridge.mq4: it speaks ea/PROTOCOL.md (v2) over a real socket as the EA does,
and trades on a :class:`SimBroker` instead of a MetaTrader server. The demo and the tests use it.

Its steps carry the same names as the EA's MQL functions (``connect_bridge``, ``on_timer``,
``pump_frames``, ``read_socket``, ``link_lost``, ``link_failed``, ``handle_order``, ``execute_open``,
``update_offset``, ``to_utc``, ``dedup_put``, ...), and it runs the EA's loop, not a friendlier one: **one
timer task does everything** (read the socket once, handle the frames read in order, a long OrderSend
blocking the whole round, then ticks, account, heartbeat and the dead-peer check; when the agent is gone,
the complete frames it sent before are still handled), so what the EA would get wrong the tests see. The one
extra task is the "kernel": it only moves frames from the WebSocket into a buffer, as the OS buffers bytes
while the EA's thread is busy; the EA's ``recv()`` is :meth:`read_socket`. Frames are read with a lenient
hand parser like the EA's ``json_get_*`` (not the codec's strict models), the UTC offset is measured and
logged as the EA does it (§1), and the de-dup store can be a file (``store_dir``) named for the login once
it is known.

Differences from the EA (ea/README.md lists them too): the WebSocket framing, pings and fragmentation are
the ``websockets`` library's; the backoff (0.05 s doubling to 2 s) is shorter than the EA's (0.5 s to 10 s)
so that tests run fast; OrderSend's duration is ``order_send_s`` (a sleep of the timer task), not a broker's.
The SimBroker speaks MT5 retcodes; :data:`MT4_ERROR_OF` turns them into what MT4's ``GetLastError()`` would
say, so the bridge sees MT4 codes only. Doc pages mirrored: TimeCurrent (the last quote's server time),
TimeGMT (the PC's clock), OrderSend/OrderClose error codes, OrderSelect over MODE_TRADES/MODE_HISTORY
(docs.mql4.com).

Fault switches (attributes, consumed as orders pass): ``drop_on_order`` (the socket dies as an order
arrives: never seen), ``drop_after_execute`` (drop the socket after the order is placed and stored, before
the result), ``lose_results`` (place and store, never answer), ``duplicate_results``, ``result_delay_s``
(answer late), ``order_send_s`` (OrderSend takes this long: the EA's thread does nothing else meanwhile),
``trade_context_busy`` (the next N attempts get 146 and are retried like the EA does), ``silent`` (stop
doing anything: a hung terminal); methods :meth:`send_garbage`, :meth:`drop_connection` and
:meth:`reconnect_with_stale_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import random
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hedge_agent.domain.enums import Side
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.simulated import SimBroker, SimError, SimTrade

from .codec import (
    BRIDGE_ROLE,
    EA_ROLE,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Account,
    Auth,
    Challenge,
    ErrorMsg,
    FrameError,
    Heartbeat,
    Hello,
    Message,
    Order,
    Positions,
    Result,
    Stored,
    Trade,
    Trades,
    Watching,
    Welcome,
    encode,
    new_nonce,
    parse_from_agent,
    proof,
)

log = structlog.get_logger(__name__)

EA_VERSION = "2.0.0"
#: the EA's rule for the broker's UTC offset (PROTOCOL §1): whole quarter hours, within UTC-12..UTC+14
OFFSET_STEP_S = 900
OFFSET_RANGE_S = (-12 * 3600, 14 * 3600)
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
    at: float = 0.0  # UTC time the pending entry was written (just before the trade call)

    def wire(self) -> Stored:
        return Stored(status=self.status, op=self.op, ticket=self.ticket, price=self.price, volume=self.volume, time=self.time, code=self.code, reason=self.reason)  # fmt: skip


#: one OrderSend/OrderClose attempt: (MT4 error code, the done entry when it filled)
_Attempt = Callable[[], tuple[int, "StoreEntry | None"]]


class EaEmulator:
    """See the module docstring. ``start()`` returns at once; the emulator connects (and reconnects, with
    backoff) by itself, before or after the bridge exists.

    ``token`` is the secret it proves it holds; with ``token_file`` it reads the token from that file on
    every connection attempt instead, as the EA does (a missing file: no attempt). ``server_tz(utc)`` is the
    broker's server-time offset at a UTC instant (its DST rule), ``clock`` the PC's UTC clock (TimeGMT);
    ``offsets`` is the EA's persisted offset log (share it between emulators to model an EA restart)."""

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
        store_dir: Path | None = None,
        token_file: Path | None = None,
        server_tz: Callable[[float], int] = lambda _utc: 0,
        clock: Callable[[], float] | None = None,
        offsets: list[tuple[float, int]] | None = None,
        history_from: float | None = None,
        name: str = "ea",
    ) -> None:
        self.url = url
        self.token = token
        self.token_file = token_file
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
        self.server_tz = server_tz
        self.clock: Callable[[], float] = clock or broker.clock
        #: the Account History tab's period: closed trades before this UTC time are not visible
        self.history_from = history_from
        #: the de-dup store; survives reconnects (and EA restarts when shared, or through ``store_dir``)
        self.store: MutableMapping[str, StoreEntry] = {} if store is None else store
        self.store_dir = store_dir
        self.store_file: Path | None = None  # named once the login is known (AccountNumber() may be 0)
        #: the persisted UTC offset log: (UTC time from which it holds, offset in seconds), oldest first
        self.offsets: list[tuple[float, int]] = [] if offsets is None else offsets
        self.offset = 0
        self.offset_known = False
        self._tc_seen = 0.0
        self.instance = secrets.token_hex(6)
        # -- fault switches --
        self.drop_on_order = 0
        self.drop_after_execute = 0
        self.lose_results = 0
        self.duplicate_results = False
        self.result_delay_s = 0.0
        self.order_send_s = 0.0
        self.trade_context_busy = 0
        self.silent = False
        # -- state, readable by tests --
        self.session: str | None = None
        self.welcome: Welcome | None = None
        self.connections = 0  # welcomes received
        self.attempts = 0  # connection attempts
        self.last_close: tuple[int | None, str] | None = None  # (code, reason) of the last link or refusal
        self.refused_servers = 0  # servers that failed the EA's challenge (never sent anything more)
        self.experts_log: deque[str] = deque(maxlen=1000)  # what the EA prints to the Experts tab
        self.errors: list[ErrorMsg] = []  # error frames the bridge sent
        self.sent_results: list[Result] = []  # every result frame sent (replays included)
        self.handled: deque[str] = deque(maxlen=10_000)  # the type of every frame handled (the newest)
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
        self._kernel: deque[str | bytes] = deque()  # what the OS has buffered for the EA's socket
        self._kernel_eof = False
        self._rx: deque[str | bytes] = deque()  # what read_socket took, not handled yet
        #: why the agent is gone (its FIN or a reset came, or a send failed), once it is: nothing more is
        #: sent, and the frames already received are handled before the link fails (PROTOCOL §7)
        self._peer_gone: str | None = None
        self._link_down = False  # link_failed() ran: the socket is closed, what it held is gone
        self.on_init()

    # -- lifecycle --------------------------------------------------------------------------------------

    def on_init(self) -> None:
        """OnInit: the de-dup store (if the login is known already) and the UTC offset, before any round."""
        self.dedup_open()
        if self.offsets:
            self.offset, self.offset_known = self.offsets[-1][1], True
        self.update_offset(first=True)

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

    def print_experts(self, line: str) -> None:
        """Print(): the Experts tab (changes only, as the EA's log_change)."""
        if not self.experts_log or self.experts_log[-1] != line:
            self.experts_log.append(line)
            log.info("ea.experts", ea=self.name, line=line)

    # -- connect, hello, challenge, auth, welcome -------------------------------------------------------

    def read_token(self) -> str:
        """The token file, re-read on every attempt (the agent may have created it meanwhile)."""
        if self.token_file is None:
            return self.token
        try:
            return self.token_file.read_text(encoding="ascii").strip()
        except OSError:
            return ""

    async def connect_bridge(self) -> ClientConnection:
        self.attempts += 1
        self._peer_gone, self._link_down = None, False  # a new socket (the EA: send_upgrade)
        token = self.read_token()
        if not token:
            self.print_experts(
                f"HedgeBridge: token file '{self.token_file}' not found: start hedge-agent once"
            )
            raise FrameError("no token file")
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
            ea_nonce = new_nonce()
            await self.send_hello(ws, ea_nonce)
            challenge = await self._expect(ws, Challenge)
            want = proof(token, BRIDGE_ROLE, ea_nonce, challenge.nonce)
            if challenge.nonce == ea_nonce or not hmac.compare_digest(want, challenge.proof):
                # not hedge-agent (or another token): it learns nothing more and gets no answer
                self.refused_servers += 1
                self.print_experts(
                    "HedgeBridge: the program on 127.0.0.1 failed the challenge: it is not hedge-agent, or "
                    "it uses another token; not connecting"
                )
                await ws.close(4001, "the agent failed the challenge")
                raise FrameError("the bridge failed the challenge")
            await self.send_auth(ws, proof(token, EA_ROLE, ea_nonce, challenge.nonce))
            welcome = await self._expect(ws, Welcome)
        except BaseException:
            self._lost(ws)
            await ws.close()
            raise
        self.on_welcome(ws, welcome)
        return ws

    async def _expect(self, ws: ClientConnection, kind: type[Challenge] | type[Welcome]) -> Any:
        """The next handshake frame of ``kind`` within the step deadline; as the EA, anything else before it
        is ignored (no order or query is handled before the welcome)."""
        async with asyncio.timeout(self.welcome_timeout_s):
            while True:
                raw = await ws.recv()
                try:
                    msg = parse_from_agent(raw)
                except FrameError:
                    continue
                if isinstance(msg, kind):
                    return msg

    async def send_hello(self, ws: ClientConnection, nonce: str) -> None:
        await ws.send(encode(Hello(v=self.protocol_version, nonce=nonce)))

    async def send_auth(self, ws: ClientConnection, ea_proof: str) -> None:
        session, self._stale_session = self._stale_session or self.session, None
        auth = Auth(
            proof=ea_proof,
            terminal="MT4",
            build=self.build,
            login=self.login,
            server=self.server,
            company=self.company,
            ea_version=self.ea_version,
            instance=self.instance,
            session=session,
        )
        await ws.send(encode(auth))

    def on_welcome(self, ws: ClientConnection, msg: Welcome) -> None:
        self._ws = ws
        self.welcome = msg
        self.session = msg.session
        self.connections += 1
        self._last_sent.clear()
        self._last_account = None
        self._last_rx = time.monotonic()
        self._hb_sent_at = 0.0
        self._down.clear()
        self._welcomed.set()
        self.dedup_open()
        self.print_experts(f"HedgeBridge: connected to hedge-agent (session {msg.session})")

    # -- the link: one timer, as the EA -----------------------------------------------------------------

    async def serve_link(self, ws: ClientConnection) -> None:
        """The link's timer rounds, until ``link_failed``: by the EA itself (dead peer, a fault switch), or
        after the agent is gone and every complete frame it sent before has been handled."""
        self._kernel.clear()
        self._rx.clear()
        self._kernel_eof = False
        kernel = asyncio.create_task(self._kernel_buffer(ws), name=f"ea-kernel-{self.name}")
        try:
            await self.send_account(ws, force=True)
            while not self._link_down:
                await asyncio.sleep(self.timer_ms / 1000)
                await self.on_timer(ws)
        finally:
            kernel.cancel()
            self._link_down = True
            self._kernel.clear()  # closesocket(): what the OS held for this socket is gone
            self._rx.clear()

    def link_lost(self, why: str) -> None:
        """The agent is gone: recv() said so (0 at its FIN, an error at a reset) or a send failed. Nothing
        more can be sent or will arrive, but what arrived before is valid data: ``pump_frames`` handles the
        complete frames and then fails the link."""
        if self._peer_gone is None:
            self._peer_gone = why

    def link_failed(self, why: str) -> None:
        """close_socket(): the link is down; frames received and not handled yet go with it (the EA's own
        failures only: after the agent's FIN, ``pump_frames`` has handled every complete frame first)."""
        if not self._link_down:
            log.debug("ea.link_down", ea=self.name, why=why)
        self._link_down = True
        self._rx.clear()

    async def _kernel_buffer(self, ws: ClientConnection) -> None:
        """Not the EA: the OS, buffering what arrives while the EA's thread is elsewhere."""
        try:
            async for raw in ws:
                self._kernel.append(raw)
        except ConnectionClosed:
            pass
        finally:
            self._kernel_eof = True

    def read_socket(self) -> int:
        """recv() until WSAEWOULDBLOCK: take what the OS holds; any byte from the agent is a sign of life.
        recv() returns 0 (FIN) or fails (reset) only after everything received before: then the agent is
        gone (``link_lost``), and what was taken is still handled. (The kernel task sets ``_kernel_eof``
        after it has queued the last frame, and a partial frame dies inside the WebSocket library.)
        Winsock's recv (learn.microsoft.com, "recv function (winsock.h)"): "If the connection has been
        gracefully closed, the return value is zero" once the data before it is read. After a reset the
        docs do not say that data already received survives; the EA's handling is the same either way,
        and ea/README.md names this as untested on Windows."""
        if self._link_down:
            return 0
        n = len(self._kernel)
        while self._kernel:
            self._rx.append(self._kernel.popleft())
        if n:
            self._last_rx = time.monotonic()
        if self._kernel_eof:
            self.link_lost("the agent closed the connection")
        return n

    async def pump_frames(self, ws: ClientConnection) -> None:
        """One read of the socket, then every complete frame read so far, strictly in order (an order
        blocks). When the agent is gone (its FIN or reset came with or before these frames, or one of the
        EA's sends failed), they are handled all the same (an order is executed and stored; answers are
        not sent), and then the link fails: PROTOCOL §7."""
        self.read_socket()
        while self._rx and not self._link_down:
            await self.handle_frame(ws, self._rx.popleft())
        if self._peer_gone is not None and not self._link_down:
            self.print_experts(f"HedgeBridge: {self._peer_gone}")
            self.link_failed(self._peer_gone)

    async def on_timer(self, ws: ClientConnection) -> None:
        """The EA's OnTimer once connected: read and handle frames, then ticks, account, heartbeat, and the
        dead-peer check, which comes after a second read: what queued up during a long OrderSend (the
        agent's heartbeats) counts as life before the agent is judged dead (PROTOCOL §4)."""
        if self.silent:
            return
        await self.pump_frames(ws)
        if self._link_down:
            return
        self.read_socket()
        if self._peer_gone is not None:
            return  # what came with the agent's FIN is handled at the next round, then the link fails
        self.update_offset()
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
        if self._peer_gone is None and now - self._last_rx > welcome.dead_after_s:
            log.warning("ea.dead_peer", ea=self.name)
            self.print_experts("HedgeBridge: dead peer: no frame from the agent")
            await ws.close(4007, "dead peer: no frame from the agent")
            self.link_failed("dead peer")

    async def handle_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        """The EA's handle_frame: a lenient hand parser (json_get_string/long/double on a flat object)."""
        if isinstance(raw, bytes):
            return  # binary: not part of the protocol, ignored (as the EA)
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            await self.send_error(ws, "bad_frame", "not a JSON object", "")
            return
        kind = _get_str(obj, "type")
        self.handled.append(kind)
        if kind == "hb" or kind in ("welcome", "challenge"):
            return
        if kind == "order":
            await self.handle_order(ws, obj)
        elif kind == "query":
            await self.handle_query(ws, obj)
        elif kind == "get_positions":
            await self.handle_get_positions(ws, _get_str(obj, "id"))
        elif kind == "watch":
            await self.handle_watch(ws, [x for x in obj.get("symbols") or [] if isinstance(x, str)])
        elif kind == "error":
            self.errors.append(
                ErrorMsg(code=_get_str(obj, "code") or "?", reason=_get_str(obj, "reason")[:2048])
            )
        else:
            await self.send_error(ws, "bad_frame", f"unknown type '{kind}'", "")

    async def send_error(self, ws: ClientConnection, code: str, reason: str, ref: str) -> None:
        await self._send(ws, ErrorMsg(code=code, reason=reason, ref=ref or None))

    async def handle_watch(self, ws: ClientConnection, wanted: list[str]) -> None:
        known = set(self.broker.symbol_names())  # the EA: SymbolSelect(name, true)
        self.watched = [s for s in wanted if s in known]
        missing = [s for s in wanted if s not in known]
        self._last_sent.clear()  # send the current price of every watched symbol once
        await self._send(ws, Watching(symbols=self.watched, missing=missing))

    # -- server time -> UTC (PROTOCOL §1) ---------------------------------------------------------------

    def time_current(self) -> float:
        """TimeCurrent(): the broker's server time of the last quote of any symbol (frozen while the
        market is closed), not the time now."""
        last = max(q.time for q in self.broker.quotes().values())
        return last + self.server_tz(last)

    def update_offset(self, *, first: bool = False) -> None:
        """Measure the offset only from a fresh quote: TimeCurrent() moved since the last look (or, at the
        very first look of an EA that has no logged offset yet, whatever TimeCurrent() says); keep the
        last good one otherwise, and log every change with the UTC time it holds from."""
        tc = self.time_current()
        fresh = tc > self._tc_seen if not first else not self.offset_known
        self._tc_seen = max(self._tc_seen, tc)
        if not fresh:
            return
        now = self.clock()
        candidate = round((tc - now) / OFFSET_STEP_S) * OFFSET_STEP_S
        if not OFFSET_RANGE_S[0] <= candidate <= OFFSET_RANGE_S[1]:
            return
        if not self.offset_known or candidate != self.offset:
            self.offsets.append((now, candidate))
        self.offset, self.offset_known = candidate, True

    def to_utc(self, server_time: float) -> float:
        """A server time in UTC, with the offset that held at that time (DST), from the offset log."""
        offset = self.offsets[0][1] if self.offsets else self.offset
        for since, off in self.offsets:
            if since + off <= server_time:
                offset = off
        return server_time - offset

    def server_time(self, utc: float) -> float:
        """What MT4 reports for an instant (the broker's clock): the SimBroker keeps UTC."""
        return utc + self.server_tz(utc)

    def mt4_time(self, utc: float) -> float:
        """A broker time as the EA puts it on the wire: server time converted back with its offset log."""
        return self.to_utc(self.server_time(utc))

    async def send_ticks(self, ws: ClientConnection) -> None:
        if not self.broker.connected:
            return  # a disconnected terminal gets no quotes
        batch: list[list[object]] = []
        for name in self.watched:
            q = self.broker.quote(name)
            if self._last_sent.get(name) != (q.bid, q.ask):
                self._last_sent[name] = (q.bid, q.ask)
                batch.append([name, q.bid, q.ask, int(self.mt4_time(q.time) * 1000)])
        if batch:
            # written by hand, "type" first: the bridge's fast path for ticks keys on that prefix
            await self.ws_send_text(ws, json.dumps({"type": "ticks", "q": batch}, separators=(",", ":")))

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

    async def handle_order(self, ws: ClientConnection, obj: dict[str, Any]) -> None:
        """Exactly once per request id: a repeated id gets the stored result, never a second order. The
        EA's checks of the frame come first: a frame it cannot execute exactly as meant gets ``error``
        (``ref`` = its id) and no ack, no store entry, no trade call."""
        order, why = ea_order(obj)
        if order is None:
            await self.send_error(ws, "bad_frame", why, _get_str(obj, "id"))
            return
        if self.drop_on_order > 0:  # the frame dies with the socket: the EA never saw it
            self.drop_on_order -= 1
            self.drop_connection()
            return
        seen = self.dedup_get(order.id)
        if seen is not None:
            await self.send_ack(ws, order.id, dup=True)
            await self.send_result(ws, seen)
            return
        at = self.clock()  # TimeGMT(): the PC's UTC clock
        self.dedup_put(StoreEntry(order.id, order.op, order.magic, order.ticket, at=at))  # written ahead
        await self.send_ack(ws, order.id, dup=False)
        if self.order_send_s > 0:  # OrderSend/OrderClose blocks the EA's only thread
            await asyncio.sleep(self.order_send_s)
        entry = await (self.execute_open(order) if order.op == "open" else self.execute_close(order))
        entry = replace(entry, at=at)
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
        await self.ws_send_text(
            ws, f'{{"type":"ack","id":"{request_id}","dup":{"true" if dup else "false"}}}'
        )

    async def execute_open(self, order: Order) -> StoreEntry:
        assert order.symbol is not None and order.side is not None
        side = Side(order.side)

        def attempt() -> tuple[int, StoreEntry | None]:
            try:
                q = self.broker.quote(order.symbol or "")  # RefreshRates(); Ask / Bid
            except SimError:
                return 4106, None  # ERR_UNKNOWN_SYMBOL
            price = q.ask if side is Side.BUY else q.bid
            # OrderSend(..., NormalizeDouble(sl, Digits), ...): the broker checks MODE_STOPLEVEL (130)
            sl = round(order.sl, self.broker.spec(order.symbol or "").digits) if order.sl else None
            res = self.broker.open(order.symbol or "", side, order.volume, magic=order.magic, comment=order.comment, price=price, deviation=order.deviation, request_id=order.id, sl=sl)  # fmt: skip
            if res.ok:
                done = StoreEntry(order.id, "open", order.magic, None, "done", res.position, res.price, res.volume, self.mt4_time(res.time))  # fmt: skip
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
                done = StoreEntry(order.id, "close", order.magic, ticket, "done", ticket, res.price, res.volume, self.mt4_time(res.time))  # fmt: skip
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
        """In memory, and appended to the file (one line per state change; the last line of an id wins)."""
        self.store[entry.id] = entry
        self.dedup_open()
        if self.store_file is not None:
            with self.store_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(asdict(entry)) + "\n")

    def dedup_open(self) -> None:
        """Name the store file for the login, once AccountNumber() is known (it may be 0 at OnInit: then
        nothing is named yet and entries are kept in memory until it is); read what it holds."""
        if self.store_dir is None or self.store_file is not None:
            return
        login = self.broker.account().login
        if not login:
            return
        path = self.store_dir / "HedgeBridge" / f"dedup-{login}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        on_file: dict[str, StoreEntry] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    e = StoreEntry(**json.loads(line))
                    on_file[e.id] = e  # the last line of an id wins
        unsaved = [e for e in self.store.values() if e.id not in on_file]  # kept before the login was known
        self.store.update(on_file)
        self.store_file = path
        with path.open("a", encoding="utf-8") as f:
            for e in unsaved:
                f.write(json.dumps(asdict(e)) + "\n")

    # -- lookups ----------------------------------------------------------------------------------------

    async def handle_query(self, ws: ClientConnection, obj: dict[str, Any]) -> None:
        """OrderSelect over MODE_TRADES and MODE_HISTORY (what the history tab shows) by
        OrderMagicNumber(); closes by the store (MT4's OrderClose carries no magic, so only the EA knows
        which of its requests closed a ticket)."""
        qid = _get_str(obj, "id")
        magic = _get_int(obj, "magic")
        ticket = _get_int(obj, "ticket")
        req = _get_str(obj, "req")
        found: dict[int, SimTrade] = {}
        if magic is not None:
            for t in self._all_trades():
                if t.magic == magic:
                    found[t.ticket] = t
            for e in self.store.values():
                if e.op == "close" and e.magic == magic and e.target is not None:
                    closed = self._visible(self.broker.trade(e.target))
                    if closed is not None and closed.closed and self._closed_by(e, closed):
                        found[closed.ticket] = closed
        if ticket is not None:
            one = self._visible(self.broker.trade(ticket))
            if one is not None:
                found[one.ticket] = one
        stored = self.dedup_get(req) if req else None
        trades = [self._wire(t) for t in found.values()]
        await self._send(ws, Trades(id=qid, trades=trades, stored=stored.wire() if stored else None))

    async def handle_get_positions(self, ws: ClientConnection, qid: str) -> None:
        positions = [self._wire(t) for t in self._all_trades() if not t.closed]
        await self._send(ws, Positions(id=qid, positions=positions))

    def _visible(self, t: SimTrade | None) -> SimTrade | None:
        """What OrderSelect finds: open trades, and closed ones within the history tab's period."""
        if t is None or not t.closed or self.history_from is None:
            return t
        return t if (t.close_time or 0) >= self.history_from else None

    def _all_trades(self) -> list[SimTrade]:
        tickets = dict.fromkeys(p.ticket for p in self.broker.positions())
        tickets.update(dict.fromkeys(d.position for d in self.broker.deals()))
        return [t for t in (self._visible(self.broker.trade(k)) for k in tickets) if t is not None]

    def _closed_by(self, e: StoreEntry, t: SimTrade) -> bool:
        """Did request ``e`` close ``t``? A done close did; a pending or unknown one only if the trade
        closed within UNKNOWN_CLOSE_WINDOW_S of the request (a stop-out later is not ours); a rejected one
        never."""
        if e.op != "close" or e.target != t.ticket or e.status == "rejected":
            return False
        if e.status == "done":
            return True
        close = self.mt4_time(t.close_time) if t.close_time is not None else None
        return close is not None and e.at - 1 <= close <= e.at + UNKNOWN_CLOSE_WINDOW_S

    def _wire(self, t: SimTrade) -> Trade:
        close_magic, reason = None, t.close_reason
        if t.closed:
            ours = [e for e in self.store.values() if self._closed_by(e, t)]
            if ours:
                close_magic, reason = ours[-1].magic, "closed by expert"
        return Trade(
            ticket=t.ticket,
            symbol=t.symbol,
            side=t.side.value,
            volume=t.volume,
            open_price=t.open_price,
            open_time=self.mt4_time(t.open_time),
            magic=t.magic,
            comment=t.comment,
            state="closed" if t.closed else "open",
            close_price=t.close_price,
            close_time=self.mt4_time(t.close_time) if t.close_time is not None else None,
            close_magic=close_magic,
            close_reason=reason,
        )

    # -- faults -----------------------------------------------------------------------------------------

    def drop_connection(self) -> None:
        """Drop the socket without a close frame (a crash, a killed terminal): the EA's own failure, so what
        it had received and not handled is gone with the socket."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()
            self.link_failed("dropped")

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
        await self.ws_send_text(ws, encode(msg))

    async def ws_send_text(self, ws: ClientConnection, text: str) -> None:
        """Nothing is sent once the link is down or the agent gone; a send that fails means the agent is gone
        (``link_lost``): the frames already received are still handled, the link fails after them."""
        if self._link_down or self._peer_gone is not None:
            return
        try:
            await ws.send(text)
        except ConnectionClosed:
            self.link_lost("send failed")


#: a pending or unknown close is taken as the one that closed its ticket only if the ticket closed within
#: this many seconds after the request was written (PROTOCOL §6)
UNKNOWN_CLOSE_WINDOW_S = 90.0


def _get_str(obj: dict[str, Any], key: str) -> str:
    """json_get_string: the string value of ``key``, "" when missing, null or not a string."""
    v = obj.get(key)
    return v if isinstance(v, str) else ""


def _get_int(obj: dict[str, Any], key: str) -> int | None:
    """json_get_long for a key that json_has: None when missing or null; a number's integer part."""
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return int(v)


def _get_float(obj: dict[str, Any], key: str) -> float | None:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def ea_order(obj: dict[str, Any]) -> tuple[Order | None, str]:
    """The EA's checks of an ``order`` frame (handle_order), in its order: an id, ``op`` open or close, a
    volume and a magic; for an open a symbol and ``side`` exactly "BUY" or "SELL" (anything else would
    have been a SELL before v2); for a close a ticket. (None, reason) for a frame it refuses."""
    rid, op = _get_str(obj, "id"), _get_str(obj, "op")
    volume, magic = _get_float(obj, "volume"), _get_int(obj, "magic")
    if not rid or op not in ("open", "close") or volume is None or magic is None:
        return None, "frame 'order': needs id, op, volume and magic"
    if volume <= 0:
        return None, "frame 'order': field 'volume': must be > 0"
    side, symbol, ticket = _get_str(obj, "side"), _get_str(obj, "symbol"), _get_int(obj, "ticket")
    if op == "open" and side not in ("BUY", "SELL"):
        return None, f"frame 'order': field 'side': must be exactly BUY or SELL, not {obj.get('side')!r}"
    if op == "open" and not symbol:
        return None, "frame 'order': field 'symbol': required for an open"
    if op == "close" and (ticket is None or ticket <= 0):
        return None, "frame 'order': field 'ticket': required for a close"
    order = Order.model_construct(
        id=rid,
        op="open" if op == "open" else "close",
        symbol=symbol or None,
        side=("BUY" if side == "BUY" else "SELL") if side else None,
        ticket=ticket,
        volume=volume,
        deviation=_get_int(obj, "deviation") or 0,
        magic=magic,
        comment=_get_str(obj, "comment"),
        sl=_get_float(obj, "sl"),
    )
    return order, ""


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
