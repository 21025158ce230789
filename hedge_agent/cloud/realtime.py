"""One AppSync realtime socket with the four subscriptions, over gql's ``AppSyncWebsocketsTransport``.

What we add to gql, in a small subclass (it reaches into two protected hooks; pinned by the tests):
- ``connectionTimeoutMs`` from the ``connection_ack`` payload becomes ``keep_alive_timeout`` (gql ignores it);
- ``start_ack`` frames resolve a future per subscription (gql drops them), so a session is only "open" once
  the server has every subscription registered: catching up before that could miss an event;
- each data frame is stamped with ``time.monotonic()`` as it is parsed (the latency the engine measures).

gql builds the realtime URL once, with the token it was given: a session is bound to one token, and the
client replaces the whole session before that token's deadline.

Subscriptions are consumed through ``transport.subscribe`` directly (no gql ``Client``): a data frame with
``errors`` is then handed to us instead of ending the subscription, so one malformed record cannot silence
the stream. If a subscription ends anyway (``complete``, an ``error`` frame), the session fails and the
client reconnects, resubscribes and catches up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import structlog
from gql import GraphQLRequest
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import DocumentNode, ExecutionResult, parse

from hedge_agent.errors import AuthError, RetryableError

from .documents import SubscriptionDoc
from .redaction import describe
from .retry import Disposition

log = structlog.get_logger(__name__)

#: AppSync's documented default, used until the connection_ack says otherwise
DEFAULT_CONNECTION_TIMEOUT_S = 300.0


class SubscriptionEnded(RetryableError):
    """A subscription stopped delivering (server ``complete`` or ``error`` frame)."""


class TimedResult(ExecutionResult):
    """A data frame's result, stamped with its arrival time."""

    received_at: float

    def __init__(self, result: ExecutionResult, received_at: float) -> None:
        super().__init__(data=result.data, errors=result.errors, extensions=result.extensions)
        self.received_at = received_at


class _Transport(AppSyncWebsocketsTransport):
    def __init__(
        self,
        url: str,
        *,
        host: str,
        token: str,
        keep_alive_timeout_s: float | None,
        connect_timeout_s: float,
    ) -> None:
        super().__init__(
            url=url,
            auth=AppSyncJWTAuthentication(host=host, jwt=token),
            connect_timeout=int(max(1, connect_timeout_s)),
            ack_timeout=int(max(1, connect_timeout_s)),
            close_timeout=2,
            keep_alive_timeout=keep_alive_timeout_s or DEFAULT_CONNECTION_TIMEOUT_S,
        )
        self._fixed_keep_alive = keep_alive_timeout_s is not None
        self.connection_timeout_ms: int | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}

    def expect_ack(self, query_id: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[query_id] = fut
        return fut

    async def _wait_ack(self) -> None:
        while True:
            raw = await self._receive()
            try:
                frame = json.loads(raw)
            except (ValueError, RecursionError):
                raise TransportProtocolError(
                    f"the server sent a frame that is not JSON: {raw[:200]!r}"
                ) from None
            kind = frame.get("type") if isinstance(frame, dict) else None
            if kind == "connection_ack":
                payload = frame.get("payload")
                timeout_ms = payload.get("connectionTimeoutMs") if isinstance(payload, dict) else None
                if (
                    isinstance(timeout_ms, int | float)
                    and not isinstance(timeout_ms, bool)
                    and timeout_ms > 0
                ):
                    self.connection_timeout_ms = int(timeout_ms)
                    if not self._fixed_keep_alive:
                        self.keep_alive_timeout = timeout_ms / 1000
                return
            if kind == "ka":
                continue
            self._parse_answer(raw)  # raises for connection_error and the like
            raise TransportProtocolError(f"expected connection_ack, got {kind!r}")

    def _parse_answer(self, answer: str) -> tuple[str, int | None, ExecutionResult | None]:
        received_at = time.monotonic()
        try:
            frame = json.loads(answer)
        except (ValueError, RecursionError):  # RecursionError: nested too deep. Only Transport* errors end
            # a session cleanly; anything else kills gql's receive loop and the stream stays silent
            raise TransportProtocolError(
                f"the server sent a frame that is not JSON: {answer[:200]!r}"
            ) from None
        if not isinstance(frame, dict):
            raise TransportProtocolError(f"the server sent a frame that is not an object: {answer[:200]!r}")
        kind = frame.get("type")
        if kind == "start_ack":
            try:
                fut = self._acks.pop(int(str(frame.get("id"))), None)
            except ValueError:
                fut = None
            if fut is not None and not fut.done():
                fut.set_result(None)
            return "start_ack", None, None
        if kind == "error" and "id" not in frame:
            raise TransportServerError(f"Server error: {frame.get('payload')!r}")
        answer_type, answer_id, result = WebsocketsTransport._parse_answer_apollo(self, frame)  # type: ignore[arg-type]
        if result is not None:
            result = TimedResult(result, received_at)
        return answer_type, answer_id, result


@cache
def _document(query: str) -> DocumentNode:
    return parse(query)


FrameSink = Callable[[SubscriptionDoc, ExecutionResult], None]


class RealtimeSession:
    """One socket bound to one token. ``failed`` resolves (with the cause) when the socket or any
    subscription ends; ``deadline`` (monotonic) is when the token must be replaced."""

    def __init__(
        self,
        *,
        url: str,
        host: str,
        token: str,
        deadline: float,
        docs: tuple[SubscriptionDoc, ...],
        variables: dict[str, Any],
        sink: FrameSink,
        keep_alive_timeout_s: float | None = None,
        connect_timeout_s: float = 10.0,
        name: str = "realtime",
    ) -> None:
        self.deadline = deadline
        self.name = name
        self._docs = docs
        self._variables = variables
        self._sink = sink
        self._transport = _Transport(
            url,
            host=host,
            token=token,
            keep_alive_timeout_s=keep_alive_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        self._connect_timeout = connect_timeout_s
        self._pumps: list[asyncio.Task[None]] = []
        self._closing = False
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.opened_at = time.monotonic()

    @property
    def keep_alive_timeout_s(self) -> float | None:
        value = self._transport.keep_alive_timeout
        return float(value) if value is not None else None

    @property
    def connection_timeout_ms(self) -> int | None:
        return self._transport.connection_timeout_ms

    async def open(self) -> None:
        """Connect, then start each subscription and wait for its ``start_ack``."""
        try:
            await self._transport.connect()
            for doc in self._docs:
                await self._start(doc)
            self.opened_at = time.monotonic()
        except BaseException:
            await self.close()
            raise

    async def _start(self, doc: SubscriptionDoc) -> None:
        ack = self._transport.expect_ack(self._transport.next_query_id)
        request = GraphQLRequest(_document(doc.query), variable_values=self._variables)
        pump = asyncio.create_task(self._pump(doc, request), name=f"{self.name}.{doc.field}")
        self._pumps.append(pump)
        pump.add_done_callback(self._pump_done)
        done, _ = await asyncio.wait(
            {ack, pump}, timeout=self._connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ack in done:
            return
        ack.cancel()
        if pump in done:
            exc = pump.exception() if not pump.cancelled() else None
            raise exc or SubscriptionEnded(f"{doc.field}: the server ended the subscription before start_ack")
        raise TimeoutError(f"{doc.field}: no start_ack within {self._connect_timeout:g} s")

    async def _pump(self, doc: SubscriptionDoc, request: GraphQLRequest) -> None:
        gen = self._transport.subscribe(request)
        try:
            async for result in gen:
                self._sink(doc, result)
        finally:
            await gen.aclose()
        raise SubscriptionEnded(f"{doc.field}: the server completed the subscription")

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        if self.failed.done() or self._closing:
            return
        exc: BaseException = (
            SubscriptionEnded(f"{task.get_name()} was cancelled")
            if task.cancelled()
            else task.exception() or SubscriptionEnded(f"{task.get_name()} ended")
        )
        self.failed.set_result(exc)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        for pump in self._pumps:
            pump.cancel()
        if self._pumps:
            await asyncio.gather(*self._pumps, return_exceptions=True)
        try:
            await asyncio.wait_for(self._transport.close(), 5)
        except Exception as e:  # closing a dead socket may fail in many ways; it is gone either way
            log.debug("realtime.close_error", session=self.name, error=describe(e))
        if not self.failed.done():
            self.failed.set_result(SubscriptionEnded("closed"))


def classify(exc: BaseException) -> Disposition:
    """What a link failure calls for. The link never gives up: the worst case is waiting for a new login."""
    if isinstance(exc, AuthError):
        return Disposition.CREDENTIALS
    text = str(exc)
    if isinstance(exc, TransportServerError | TransportQueryError) and "Unauthorized" in text:
        return Disposition.REFRESH
    if isinstance(exc, TransportConnectionFailed):
        status = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
        if status in (401, 403):
            return Disposition.REFRESH
    return Disposition.RETRY
