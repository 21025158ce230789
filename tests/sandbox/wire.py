"""A bare realtime client speaking AppSync's frames over a real socket, to assert on every frame."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import urlparse

from websockets.asyncio.client import ClientConnection, connect

from hedge_agent.sandbox import SandboxInfo


def header_subprotocol(info: SandboxInfo, token: str) -> str:
    """The Amplify v6 form: ``header-`` + base64url (no padding) of the authorization header."""
    host = urlparse(info.graphql_url).netloc
    raw = json.dumps({"Authorization": token, "host": host}).encode()
    return "header-" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def realtime_url(info: SandboxInfo, token: str) -> str:
    host = urlparse(info.graphql_url).netloc
    header = base64.b64encode(json.dumps({"host": host, "Authorization": token}).encode()).decode()
    return f"{info.realtime_url}?header={header}&payload=e30="


class RealtimeClient:
    def __init__(self, ws: ClientConnection, info: SandboxInfo, token: str) -> None:
        self.ws = ws
        self.info = info
        self.token = token
        self.ka_seen = 0

    @classmethod
    async def open(
        cls, info: SandboxInfo, token: str, *, init: bool = True, header_in_subprotocol: bool = False
    ) -> RealtimeClient:
        if header_in_subprotocol:  # as Amplify v6 connects: no query string, the header as a subprotocol
            ws = await connect(
                info.realtime_url,
                subprotocols=["graphql-ws", header_subprotocol(info, token)],  # type: ignore[list-item]
                open_timeout=5,
            )
        else:
            ws = await connect(realtime_url(info, token), subprotocols=["graphql-ws"], open_timeout=5)  # type: ignore[list-item]
        client = cls(ws, info, token)
        if init:
            await client.send({"type": "connection_init"})
            ack = await client.expect("connection_ack")
            assert ack["payload"]["connectionTimeoutMs"] > 0
        return client

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0, *, skip_ka: bool = True) -> dict[str, Any]:
        """The next frame within ``timeout`` (overall, however many ka frames are skipped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(remaining, 0.0)))
            if frame.get("type") == "ka":
                self.ka_seen += 1
                if skip_ka:
                    continue
            return dict(frame)

    async def expect(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame["type"] == kind, frame
        return frame

    async def silent_for(self, seconds: float) -> None:
        """Assert no frame other than ka arrives within ``seconds``."""
        try:
            frame = await self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def start(
        self, sub_id: str, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """Send start; return the start_ack or error frame."""
        data = json.dumps({"query": query, "variables": variables or {}})
        host = urlparse(self.info.graphql_url).netloc
        await self.send(
            {
                "id": sub_id,
                "type": "start",
                "payload": {
                    "data": data,
                    "extensions": {"authorization": {"host": host, "Authorization": token or self.token}},
                },
            }
        )
        return await self.recv()

    async def close(self) -> None:
        await self.ws.close()
