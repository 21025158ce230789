"""A bridge written by hand on raw TCP (asyncio streams on 127.0.0.1): the server side of RFC 6455 and the v2
handshake (PROTOCOL §3), so that a test decides exactly which bytes go out in one write and how the link ends
(a FIN, or a reset), as a SIGKILLed agent's kernel does it. The ``websockets`` server cannot do that: it
always sends a close frame and writes frame by frame."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hedge_agent.terminals.mt4.codec import BRIDGE_ROLE, EA_ROLE, new_nonce, proof

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def server_frame(text: str) -> bytes:
    """One unmasked text frame (RFC 6455 §5.2: a server never masks)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


def welcome_frame(session: str = "raw-session") -> bytes:
    w = {"type": "welcome", "v": 2, "session": session, "heartbeat_s": 1.0, "dead_after_s": 5.0, "max_frame": 1 << 20}  # fmt: skip
    return server_frame(json.dumps(w))


class RawLink:
    """One accepted connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> None:
        self.reader = reader
        self.writer = writer
        self.token = token

    async def upgrade(self) -> None:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        await self.writer.drain()

    async def recv_frame(self) -> tuple[int, bytes]:
        """The next frame from the EA: (opcode, unmasked payload); unfragmented, as the emulator sends."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        mask = await self.reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(await self.reader.readexactly(n)))

    async def recv_text(self) -> str:
        """The next text message from the EA."""
        while True:
            opcode, data = await self.recv_frame()
            if opcode == 0x1:
                return data.decode()
            if opcode == 0x8:
                raise ConnectionResetError("the EA closed the link")

    async def hold(self) -> None:
        """Keep the link until the EA closes it, and answer its close frame (RFC 6455 §5.5.1)."""
        while True:
            opcode, data = await self.recv_frame()
            if opcode == 0x8:
                self.writer.write(bytes([0x88, len(data)]) + data)
                await self.writer.drain()
                return

    async def recv_json(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (ticks, account, hb, ... before it are skipped)."""
        while True:
            obj: dict[str, Any] = json.loads(await self.recv_text())
            if obj.get("type") == kind:
                return obj

    async def authenticate(self) -> dict[str, Any]:
        """Upgrade, hello, challenge with the bridge's proof, the EA's auth checked: returns the auth. The
        welcome is left to the test (it may go out in the same write as what follows)."""
        await self.upgrade()
        hello = await self.recv_json("hello")
        b = new_nonce()
        challenge = {"type": "challenge", "v": 2, "nonce": b, "proof": proof(self.token, BRIDGE_ROLE, hello["nonce"], b)}  # fmt: skip
        self.writer.write(server_frame(json.dumps(challenge)))
        auth = await self.recv_json("auth")
        assert auth["proof"] == proof(self.token, EA_ROLE, hello["nonce"], b), "the EA's proof is wrong"
        return auth

    def write_and_vanish(self, data: bytes, *, reset: bool = False) -> None:
        """``data`` in one write, then the socket is gone as a killed process's is: a FIN (everything
        written is delivered first), or with ``reset`` a RST right behind the data (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        self.writer.write(data)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()


Script = Callable[[RawLink, int], Awaitable[None]]


class RawBridge:
    """Accepts the EA on 127.0.0.1; connection number ``i`` (0, 1, ...) is handed to ``script(link, i)``."""

    def __init__(self, token: str, script: Script) -> None:
        self.token = token
        self.script = script
        self.accepted = 0
        self.failures: list[BaseException] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        i, self.accepted = self.accepted, self.accepted + 1
        try:
            await self.script(RawLink(reader, writer, self.token), i)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the EA went away: the next connection carries on
        except Exception as e:  # an assertion in a script: the test reports it
            self.failures.append(e)
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RawBridge]:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()
