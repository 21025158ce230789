"""The bridge's WebSocket server: one per MT4 terminal, on 127.0.0.1 only.

It admits one EA at a time (ea/PROTOCOL.md §3-§5) after a challenge-response in both directions: the EA's
``hello`` carries its fresh nonce, the bridge answers ``challenge`` (its own nonce and its proof, an HMAC of
both nonces keyed with the token), the EA answers ``auth`` with its own proof, checked in constant time before
anything else it says. The token never crosses the socket. Each step has ``hello_timeout_s``; everything
that fails is closed with a close code and a reason, and logged. After the ``welcome``, it keeps the link alive (heartbeats
both ways, dead-peer timeout) and hands every parsed frame to the owner (the terminal) synchronously: an
answer (ack, result, trades, ...) right where websockets reads it (:class:`EaConnection`), so a result resolves
its order's future with no hop through the link's reader task; ticks, bad frames and anything unexpected go
through the reader, which yields between them. Frames are always handled in the order they came.

Second EA for the same terminal (two charts, two terminals pointed at one port): **the newcomer is
refused** with 4006 "busy" while the current EA is alive. Replacing the older one instead would make two
EAs evict each other forever, and let anything holding the token hijack a working link. The one
exception is the *same* EA reconnecting while the bridge still holds its old socket (it presents the
session of the current link): then the old socket is closed with 4005 "replaced" and the new one is
welcomed; orders in flight are resolved by the terminal on the new link (query, then re-send).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Callable
from typing import Final

import structlog
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State

from hedge_agent.errors import ConfigError

from .codec import (
    BRIDGE_ROLE,
    EA_ROLE,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    TICKS_PREFIX,
    Auth,
    Challenge,
    CloseCode,
    ErrorMsg,
    FrameError,
    FromEa,
    Heartbeat,
    Hello,
    Message,
    Ticks,
    Welcome,
    encode,
    new_nonce,
    parse_from_ea,
    peek_version,
    proof,
)

log = structlog.get_logger(__name__)

_MAX_REASON: Final = 123  # bytes: the WebSocket close frame's limit
#: malformed frames logged in full per link; after that one line per BAD_FRAME_LOG_EVERY (with the count)
BAD_FRAME_LOG_FIRST: Final = 10
BAD_FRAME_LOG_EVERY: Final = 1000


def require_loopback(host: str) -> str:
    """``host`` if it is a loopback IP literal; a :class:`ConfigError` for anything else (a name such as
    ``localhost`` is refused too: what it resolves to is not ours to trust)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise ConfigError(
            f"the MT4 bridge listens on loopback only; host {host!r} is refused (use 127.0.0.1)"
        )
    return host


def is_loopback_peer(address: object) -> bool:
    """True for a peer address tuple whose host is a loopback address (IPv4-mapped IPv6 included)."""
    if not isinstance(address, tuple) or not address:
        return False
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


class EaConnection(ServerConnection):
    """websockets' server connection, plus one shortcut: once ``on_text`` is set (the link is welcomed), a
    complete text frame is offered to it in ``data_received``, where the frame is read, instead of being queued
    for the reader task (which costs a loop iteration and a task switch per frame). ``on_text`` returns False
    to leave the frame to the reader after all.

    Order: a frame is offered only when no message is queued ahead of it (``queued``: complete messages
    queued for the reader and not yet taken by it, which the reader counts down with :meth:`took`), so frames
    are always handled in the order they came. Everything else (binary and fragmented frames, invalid UTF-8,
    control frames, the handshake) is websockets' own path, untouched. An exception from ``on_text`` drops
    the connection (asyncio closes a transport whose ``data_received`` raised), as one in the reader ends its
    handler."""

    on_text: Callable[[str], bool] | None = None
    queued = 0

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or not event.fin or event.opcode not in _DATA:
            super().process_event(event)
            return
        on_text = self.on_text
        if on_text is not None and not self.queued and event.opcode is Opcode.TEXT:
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError:
                pass  # websockets' reader closes the link with 1007
            else:
                if on_text(text):
                    return
        self.queued += 1
        super().process_event(event)

    def took(self) -> None:
        """The reader took one queued message."""
        if self.queued:
            self.queued -= 1


_DATA: Final = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class Link:
    """One authenticated, welcomed EA connection."""

    def __init__(self, ws: ServerConnection, hello: Auth, session: str) -> None:
        self.ws = ws
        self.hello = hello
        self.session = session
        self.since = time.monotonic()
        self.last_rx = self.since
        self.bad_frames = 0

    @property
    def open(self) -> bool:
        return self.ws.close_code is None

    def send_now(self, msg: Message) -> bool:
        """Write one frame at once, without an await: when the link is open and nothing waits in the
        socket's write buffer (websockets' ``broadcast``: the frame ``ws.send`` writes, without its context
        manager and flow control, which an empty buffer does not need). False when nothing was written:
        :meth:`send` it then."""
        return self._write_now(encode(msg))

    def _write_now(self, data: str) -> bool:
        ws = self.ws
        if ws.state is not State.OPEN or ws.transport.get_write_buffer_size():
            return False
        broadcast((ws,), data)
        return True

    async def send(self, msg: Message) -> bool:
        """Send one frame; False when the link is already gone (the caller's timeout path takes over). At
        once when it can be (:meth:`send_now`), else after the write buffer drains."""
        data = encode(msg)
        if self._write_now(data):
            return True
        try:
            await self.ws.send(data)
        except ConnectionClosed:
            return False
        return True

    async def close(self, code: CloseCode, reason: str) -> None:
        await self.ws.close(int(code), _clip(reason))

    def __repr__(self) -> str:
        h = self.hello
        return f"<Link login={h.login} instance={h.instance} session={self.session}>"


class BridgeServer:
    """Accepts EAs on ``host:port``; calls ``on_link`` once welcomed, ``on_frame`` for each frame,
    ``on_unlink`` when the link ends. Callbacks run on the event loop and must not block."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        token: str,
        on_link: Callable[[Link], None],
        on_frame: Callable[[Link, FromEa], None],
        on_unlink: Callable[[Link, str], None],
        busy: Callable[[], bool] = lambda: False,
        expected_login: int | None = None,
        hello_timeout_s: float = 0.8,
        heartbeat_s: float = 1.0,
        dead_after_s: float = 5.0,
        max_frame: int = MAX_FRAME_BYTES,
    ) -> None:
        if not token:
            raise ConfigError(f"terminal {name}: the bridge token is empty")
        self.name = name
        self.host = require_loopback(host)
        self.port = port
        self._token = token
        self._on_link = on_link
        self._on_frame = on_frame
        self._on_unlink = on_unlink
        self._busy = busy
        self._expected_login = expected_login
        self.hello_timeout_s = hello_timeout_s
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.max_frame = max_frame
        self._server: Server | None = None
        self.link: Link | None = None
        #: why the last connection was closed (shown in health)
        self.last_close: str = ""
        self.refused = 0  # connections refused before a welcome
        self.welcomed = 0
        self.bad_frames = 0  # malformed frames from welcomed EAs (answered with an error, link kept)

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def bound_port(self) -> int:
        """The port actually bound (``port=0`` asks the OS for a free one)."""
        if self._server is None:
            return self.port
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._screen,
            create_connection=EaConnection,
            compression=None,  # the EA does not negotiate extensions; plain frames are also faster
            max_size=self.max_frame,
            open_timeout=self.hello_timeout_s,  # the HTTP upgrade must not outlast the hello deadline
            ping_interval=None,  # liveness is the protocol's own heartbeat (the EA cannot schedule pings)
            close_timeout=1.0,
        )
        log.info("bridge.listening", terminal=self.name, host=self.host, port=self.bound_port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        link = self.link
        if link is not None:
            await link.close(CloseCode.GOING_AWAY, "agent shutting down")
        server.close(close_connections=True)
        await server.wait_closed()
        log.info("bridge.stopped", terminal=self.name)

    # -- admission --------------------------------------------------------------------------------------

    def _screen(self, ws: ServerConnection, request: Request) -> Response | None:
        """Before the upgrade: loopback peers only, and no browsers (a web page may open a WebSocket to
        127.0.0.1, and a browser always sends Origin; the EA never does)."""
        peer = ws.remote_address
        if not is_loopback_peer(peer):
            self.refused += 1
            log.warning("bridge.refused", terminal=self.name, peer=str(peer), why="not a loopback peer")
            return ws.respond(403, "the MT4 bridge accepts loopback connections only\n")
        if "Origin" in request.headers:
            self.refused += 1
            log.warning("bridge.refused", terminal=self.name, peer=str(peer), why="browser (Origin header)")
            return ws.respond(403, "browsers may not connect to the MT4 bridge\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        link = await self._admit(ws)
        if link is None:
            return
        try:
            await self._serve(link)
        finally:
            reason = _describe_close(ws)
            if self.link is link:
                self.link = None
                self.last_close = reason
            log.info("bridge.ea_disconnected", terminal=self.name, session=link.session, why=reason)
            self._on_unlink(link, reason)

    async def _admit(self, ws: ServerConnection) -> Link | None:
        peer = str(ws.remote_address)
        raw = await self._first(ws, peer, "hello")
        if raw is None:
            return None
        got = self._judge_hello(raw)
        if not isinstance(got, Hello):
            await self._refuse(ws, peer, *got)
            return None
        bridge_nonce = new_nonce()
        challenge = Challenge(
            nonce=bridge_nonce, proof=proof(self._token, BRIDGE_ROLE, got.nonce, bridge_nonce)
        )
        try:
            await ws.send(encode(challenge))
        except ConnectionClosed:
            return None
        raw = await self._first(ws, peer, "auth")
        if raw is None:
            return None
        verdict = self._judge(raw, proof(self._token, EA_ROLE, got.nonce, bridge_nonce))
        if not isinstance(verdict, Auth):
            await self._refuse(ws, peer, *verdict)
            return None
        hello, replaced = verdict, self.link
        if replaced is not None and not replaced.open:
            replaced = None
        link = Link(ws, hello, secrets.token_hex(8))
        self.link = link  # claim the slot before any await, so a concurrent hello sees it taken
        self.welcomed += 1
        if replaced is not None:
            log.warning("bridge.link_replaced", terminal=self.name, old_session=replaced.session)
            await replaced.close(CloseCode.REPLACED, "replaced by a reconnect of the same EA")
        welcome = Welcome(
            session=link.session,
            heartbeat_s=self.heartbeat_s,
            dead_after_s=self.dead_after_s,
            max_frame=self.max_frame,
        )
        if not await link.send(welcome):
            if self.link is link:
                self.link = None
            return None
        log.info("bridge.ea_connected", terminal=self.name, login=hello.login, server=hello.server, build=hello.build, ea_version=hello.ea_version, instance=hello.instance, session=link.session, resumed_from=hello.session)  # fmt: skip
        self._on_link(link)
        return link

    async def _first(self, ws: ServerConnection, peer: str, what: str) -> str | bytes | None:
        """The next frame of the handshake within ``hello_timeout_s``; None (refused, logged) otherwise."""
        try:
            async with asyncio.timeout(self.hello_timeout_s):
                raw = await ws.recv()
            _took(ws)
            return raw
        except TimeoutError:
            await self._refuse(
                ws, peer, CloseCode.HELLO_TIMEOUT, f"no {what} within {self.hello_timeout_s:g} s"
            )
        except ConnectionClosed:
            self.refused += 1
            log.warning("bridge.refused", terminal=self.name, peer=peer, why=_describe_close(ws))
        return None

    def _judge_hello(self, raw: str | bytes) -> Hello | tuple[CloseCode, str]:
        """The first frame: the version first (an older EA is told to update, not that it is malformed),
        then a valid hello. Nothing in it is secret, and nothing the bridge answers is either."""
        v = peek_version(raw)
        if isinstance(v, int) and not isinstance(v, bool) and v != PROTOCOL_VERSION:
            return (
                CloseCode.UNSUPPORTED_VERSION,
                f"protocol v{v} unsupported; this agent speaks v{PROTOCOL_VERSION}: update the EA",
            )
        try:
            hello = parse_from_ea(raw)
        except FrameError as e:
            return CloseCode.PROTOCOL_ERROR, f"bad hello: {e}"
        if not isinstance(hello, Hello):
            return CloseCode.PROTOCOL_ERROR, f"the first frame must be a hello, not {hello.type!r}"
        return hello

    def _judge(self, raw: str | bytes, expected: str) -> Auth | tuple[CloseCode, str]:
        """The admission rules for the answer to the challenge, in order: the proof (constant time, before
        any other field is looked at), a valid auth, the account, one EA per terminal."""
        presented = _presented_proof(raw)
        if presented is None:
            return (
                CloseCode.UNAUTHORIZED,
                "unauthorized: the answer to the challenge must be an auth with a proof",
            )
        if not hmac.compare_digest(presented, expected.encode()):
            return CloseCode.UNAUTHORIZED, "unauthorized: wrong proof (the EA reads another token file?)"
        try:
            auth = parse_from_ea(raw)
        except FrameError as e:
            return CloseCode.PROTOCOL_ERROR, f"bad auth: {e}"
        if not isinstance(auth, Auth):
            return CloseCode.PROTOCOL_ERROR, f"expected auth, not {auth.type!r}"
        if self._expected_login is not None and auth.login != self._expected_login:
            return (
                CloseCode.WRONG_ACCOUNT,
                f"wrong account: EA on login {auth.login}, terminal {self.name} is {self._expected_login}",
            )
        current = self.link
        if current is not None and current.open:
            # only the same EA (it presents the current session) may take over a live link
            if not hmac.compare_digest((auth.session or "").encode(), current.session.encode()):
                return (
                    CloseCode.BUSY,
                    f"busy: EA {current.hello.instance[:16]} is connected; one EA per terminal",
                )
        return auth

    async def _refuse(self, ws: ServerConnection, peer: str, code: CloseCode, reason: str) -> None:
        self.refused += 1
        log.warning("bridge.refused", terminal=self.name, peer=peer, code=int(code), why=reason)
        await ws.close(int(code), _clip(reason))
        return None

    # -- a welcomed link --------------------------------------------------------------------------------

    async def _serve(self, link: Link) -> None:
        beat = asyncio.create_task(self._heartbeat(link), name=f"bridge-heartbeat-{self.name}")
        ws = link.ws
        if isinstance(ws, EaConnection):
            ws.on_text = lambda raw: self._answer_now(link, raw)
        try:
            async for raw in ws:
                _took(ws)
                link.last_rx = time.monotonic()
                try:
                    msg = parse_from_ea(raw)
                except FrameError as e:
                    link.bad_frames += 1
                    self.bad_frames += 1
                    n = link.bad_frames
                    if n <= BAD_FRAME_LOG_FIRST or n % BAD_FRAME_LOG_EVERY == 0:  # the first, then sampled
                        log.warning("bridge.bad_frame", terminal=self.name, why=str(e), count=n)
                    await link.send(ErrorMsg(code="bad_frame", reason=str(e)[:2048]))
                    # a flood of buffered bad frames must not starve the event loop: reading a queued
                    # frame and sending a small reply never yield by themselves
                    await asyncio.sleep(0)
                    continue
                if isinstance(msg, Ticks):
                    self._on_frame(link, msg)
                    # frames already buffered would otherwise all be read before the quote consumer
                    # runs once, and it would only ever see the last price of a burst
                    await asyncio.sleep(0)
                    continue
                if isinstance(msg, Heartbeat):
                    continue
                if isinstance(msg, Hello | Auth):
                    await link.send(
                        ErrorMsg(
                            code="unexpected",
                            reason=f"already welcomed: {msg.type} is for the handshake only",
                        )
                    )
                    continue
                self._on_frame(link, msg)
        except ConnectionClosed:
            pass
        finally:
            if isinstance(ws, EaConnection):
                ws.on_text = None
            beat.cancel()

    def _answer_now(self, link: Link, raw: str) -> bool:
        """A frame offered where it is read (:class:`EaConnection`): an answer or a heartbeat is handled here
        and now (True); ticks (the reader yields between them), frames that do not parse (the reader answers
        them with an error) and handshake frames are left to the reader (False), which parses them again."""
        if raw.startswith(TICKS_PREFIX):
            return False
        try:
            msg = parse_from_ea(raw)
        except FrameError:
            return False
        if isinstance(msg, Ticks | Hello | Auth):
            return False
        link.last_rx = time.monotonic()
        if not isinstance(msg, Heartbeat):
            self._on_frame(link, msg)
        return True

    async def _heartbeat(self, link: Link) -> None:
        """Send ``hb`` every heartbeat_s; close the link when the EA has been silent for dead_after_s,
        unless it is busy with an order (PROTOCOL §4: its single thread is inside OrderSend meanwhile)."""
        while link.open:
            await asyncio.sleep(self.heartbeat_s)
            if await self.drop_if_silent(link):
                return
            await link.send(Heartbeat())

    def silent_s(self, link: Link) -> float:
        """Seconds since the last frame from ``link``."""
        return time.monotonic() - link.last_rx

    async def drop_if_silent(self, link: Link) -> bool:
        """The dead-peer rule, now: close ``link`` with 4007 when it has been silent for more than
        dead_after_s and is not busy. True when it was closed."""
        silent = self.silent_s(link)
        if not link.open or silent <= self.dead_after_s or self._busy():
            return False
        log.warning("bridge.dead_peer", terminal=self.name, silent_s=round(silent, 1))
        await link.close(CloseCode.DEAD_PEER, f"dead peer: no frame for {silent:.1f} s")
        return True


def _took(ws: ServerConnection) -> None:
    if isinstance(ws, EaConnection):
        ws.took()


def _presented_proof(raw: str | bytes) -> bytes | None:
    """The ``proof`` of a JSON object frame, as bytes, or None (not JSON, not an object, no string proof)."""
    if isinstance(raw, bytes):
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    p = obj.get("proof") if isinstance(obj, dict) else None
    return p.encode() if isinstance(p, str) and p.isascii() else None


def _describe_close(ws: ServerConnection) -> str:
    code = ws.close_code
    if code is None:
        return "connection lost"
    reason = ws.close_reason or ""
    if code == CloseCode.MESSAGE_TOO_BIG:
        reason = reason or "frame over the size cap"
    return f"{code} {reason}".strip()


def _clip(reason: str) -> str:
    data = reason.encode()
    if len(data) <= _MAX_REASON:
        return reason
    return data[: _MAX_REASON - 3].decode(errors="ignore") + "..."
