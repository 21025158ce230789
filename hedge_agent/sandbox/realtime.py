"""AppSync's realtime WebSocket protocol (subprotocol ``graphql-ws``), server side, as AWS documents it in
"Building a real-time WebSocket client" (https://docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html).

handshake: the authorization header as base64 JSON ``{"host","Authorization"}``, either in the
``header-<base64url>`` subprotocol offered next to ``graphql-ws`` in ``Sec-WebSocket-Protocol`` (what the
Amplify v6 JavaScript client sends) or as ``?header=<base64>&payload=e30=`` (what gql sends) ->
``connection_init`` (optional, per the docs) -> ``connection_ack {connectionTimeoutMs}`` (or
``connection_error`` and close) -> ``ka`` every ``ka_interval_s`` -> ``start`` (auth checked again, from
the frame's extensions) -> ``start_ack`` | ``error`` -> ``data`` ... -> ``stop`` -> ``complete``. A
``start`` without a ``connection_init`` first is served once the handshake header has been checked (no
``connection_ack`` is sent then). An error without an ``id`` closes the connection.

When the token a subscription was started with expires (its ``exp``, or ``expire_tokens()``), the
subscription gets an ``error`` frame (UnauthorizedException) and ends; the socket stays open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web
from graphql import (
    ExecutionResult,
    OperationType,
    execute,
    get_operation_ast,
)

from .appsync_errors import format_errors
from .auth import AuthFailure, Caller, TokenVerifier
from .faults import Faults
from .pubsub import Broker, Frame, LiveSubscription, SubscribeContext
from .schema import SandboxSchema
from .stats import SandboxStats

log = logging.getLogger(__name__)

SUBPROTOCOL = "graphql-ws"
INIT_TIMEOUT_S = 30.0
OUTBOX_LIMIT = 10_000
UNAUTHORIZED_EXCEPTION = "UnauthorizedException"


HEADER_SUBPROTOCOL_PREFIX = "header-"


def _decode_header(raw: str, *, where: str) -> tuple[str | None, str | None]:
    try:
        header = json.loads(
            base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4))
        )
    except (binascii.Error, ValueError):
        return None, f"The {where} is not base64-encoded JSON."
    if not isinstance(header, dict) or not isinstance(header.get("Authorization"), str):
        return None, f"The {where} has no Authorization."
    return str(header["Authorization"]), None


def offered_subprotocols(request: web.Request) -> list[str]:
    return [
        part.strip() for part in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if part.strip()
    ]


def _header_token(request: web.Request) -> tuple[str | None, str | None]:
    """(token, problem) from the ``header-<base64url>`` subprotocol, else the ``header`` query parameter."""
    for protocol in offered_subprotocols(request):
        if protocol.startswith(HEADER_SUBPROTOCOL_PREFIX):
            return _decode_header(protocol[len(HEADER_SUBPROTOCOL_PREFIX) :], where="header- subprotocol")
    raw = request.query.get("header")
    if not raw:
        return None, "No authorization header: neither a header- subprotocol nor a 'header' query parameter."
    return _decode_header(raw, where="'header' query parameter")


class RealtimeConnection:
    def __init__(self, hub: RealtimeHub, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._hub = hub
        self._request = request
        self._ws = ws
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._subscriptions: dict[str, LiveSubscription] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._acknowledged = False
        self._closing = False  # an error without id or a connection_error went out: ignore the rest
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        if self._closing:
            return
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            log.warning("realtime client is not reading; dropping its connection")
            self.abort()
            return
        self._outbox.put_nowait(json.dumps(frame, separators=(",", ":")))

    def _close_after_sending(self) -> None:
        self._closing = True
        self._outbox.put_nowait(None)

    def _fatal(self, error_type: str, message: str) -> None:
        """An error without an id: the client must treat the connection as dead, and it is."""
        self.send({"type": "error", "payload": {"errors": [{"errorType": error_type, "message": message}]}})
        self._close_after_sending()

    def _error(self, subscription_id: str, errors: list[dict[str, Any]], data: Any = None) -> None:
        payload: dict[str, Any] = {"errors": errors}
        if data is not None:
            payload["data"] = data
        self.send({"id": subscription_id, "type": "error", "payload": payload})

    async def _write_loop(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                if message is None:
                    await self._ws.close()
                    return
                await self._ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return

    async def _keepalive_loop(self) -> None:
        while True:
            if self._hub.faults.keepalive_enabled:
                self.send({"type": "ka"})
                self._hub.stats.ka_sent += 1
            await asyncio.sleep(self._hub.ka_interval_s)

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a network failure would."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        else:  # pragma: no cover - already detached
            self._close_after_sending()

    # -- serving ---------------------------------------------------------------------------------

    async def serve(self) -> None:
        token, problem = _header_token(self._request)
        self._tasks.append(asyncio.create_task(self._write_loop(), name="sandbox-ws-writer"))
        loop = asyncio.get_running_loop()
        init_timer = loop.call_later(
            INIT_TIMEOUT_S, self._fatal, "ConnectionInitTimeout", "No connection_init."
        )
        try:
            async for message in self._ws:
                if self._closing:
                    continue
                if message.type != WSMsgType.TEXT:
                    self._fatal("UnsupportedOperation", "Only text frames carrying JSON are accepted.")
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict):
                    self._fatal("BadRequestException", "A frame must be a JSON object.")
                    continue
                kind = frame.get("type")
                if kind == "connection_init":
                    init_timer.cancel()
                    self._on_init(token, problem)
                    continue
                if not self._acknowledged:
                    # connection_init is optional: the handshake header authenticates the connection
                    init_timer.cancel()
                    if not self._authenticate(token, problem):
                        continue
                if kind == "start":
                    self._on_start(frame)
                elif kind == "stop":
                    self._on_stop(frame)
                else:
                    self._fatal("UnsupportedOperation", f"Unknown message type {kind!r}.")
        finally:
            init_timer.cancel()
            self._teardown()

    def _on_init(self, token: str | None, problem: str | None) -> None:
        if self._acknowledged:
            return
        if self._authenticate(token, problem):
            self.send(
                {
                    "type": "connection_ack",
                    "payload": {"connectionTimeoutMs": self._hub.connection_timeout_ms},
                }
            )

    def _authenticate(self, token: str | None, problem: str | None) -> bool:
        """Check the handshake's token once; a refusal is ``connection_error`` and the socket closes."""
        if self._acknowledged:
            return True
        try:
            if problem is not None:
                raise AuthFailure(problem)
            self._hub.verifier.verify(token)
        except AuthFailure as exc:
            self._hub.stats.auth_rejections += 1
            self.send(
                {
                    "type": "connection_error",
                    "payload": {"errors": [{"errorType": UNAUTHORIZED_EXCEPTION, "message": exc.message}]},
                }
            )
            self._close_after_sending()
            return False
        self._acknowledged = True
        self._tasks.append(asyncio.create_task(self._keepalive_loop(), name="sandbox-ws-ka"))
        return True

    def _on_start(self, frame: Mapping[str, Any]) -> None:
        subscription_id = frame.get("id")
        if not isinstance(subscription_id, str) or not subscription_id:
            self._fatal("BadRequestException", "A start frame needs a non-empty string id.")
            return
        if subscription_id in self._subscriptions:
            self._error(
                subscription_id, [{"errorType": "DuplicatedOperationError", "message": "Duplicate id."}]
            )
            return
        payload = frame.get("payload")
        extensions = payload.get("extensions") if isinstance(payload, dict) else None
        authorization = extensions.get("authorization") if isinstance(extensions, dict) else None
        token = authorization.get("Authorization") if isinstance(authorization, dict) else None
        try:
            caller = self._hub.verifier.verify(token if isinstance(token, str) else None)
        except AuthFailure as exc:
            self._hub.stats.auth_rejections += 1
            self._error(subscription_id, [{"errorType": UNAUTHORIZED_EXCEPTION, "message": exc.message}])
            return
        try:
            request = json.loads(payload["data"])  # type: ignore[index]
            query = request["query"]
            variables = request.get("variables") or {}
            operation_name = request.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError("query must be a string and variables an object")
        except (KeyError, TypeError, ValueError) as exc:
            message = f"payload.data must be a JSON string of {{query, variables}}: {exc}"
            self._error(subscription_id, [{"errorType": "BadRequestException", "message": message}])
            return
        schema = self._hub.schema
        document, errors = schema.documents.get(query)
        if document is None or errors:
            self._error(subscription_id, format_errors(list(errors)))
            return
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation != OperationType.SUBSCRIPTION:
            message = (
                "Only subscriptions travel on the realtime socket; send queries and mutations over HTTP."
            )
            self._error(subscription_id, [{"errorType": "UnsupportedOperation", "message": message}])
            return
        context = SubscribeContext(schema, caller)
        result = execute(
            schema.schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
        )
        assert isinstance(result, ExecutionResult), "subscribe-time resolvers are synchronous"
        if result.errors or context.accepted is None:
            self._hub.stats.auth_rejections += 1
            self._error(subscription_id, format_errors(list(result.errors or ())), result.data)
            return
        subscription = LiveSubscription(
            id=subscription_id,
            caller=caller,
            accepted=context.accepted,
            document=document,
            variables=variables,
            operation_name=operation_name,
            send=self._deliver,
        )
        self._subscriptions[subscription_id] = subscription
        self._hub.broker.add(subscription)
        self._expiry[subscription_id] = asyncio.get_running_loop().call_later(
            max(0.0, caller.expires_at - time.time()), self.expire, subscription_id
        )
        self.send({"id": subscription_id, "type": "start_ack"})

    def _deliver(self, frame: Frame) -> None:
        self._hub.stats.frames_delivered += 1
        self.send(frame)

    def _drop(self, subscription_id: str) -> bool:
        subscription = self._subscriptions.pop(subscription_id, None)
        handle = self._expiry.pop(subscription_id, None)
        if handle is not None:
            handle.cancel()
        if subscription is None:
            return False
        self._hub.broker.remove(subscription)
        return True

    def _on_stop(self, frame: Mapping[str, Any]) -> None:
        subscription_id = frame.get("id")
        if not isinstance(subscription_id, str):
            self._fatal("BadRequestException", "A stop frame needs the id of the subscription.")
            return
        self._drop(subscription_id)
        self.send({"id": subscription_id, "type": "complete"})

    def expire(self, subscription_id: str) -> None:
        if self._drop(subscription_id):
            self._error(
                subscription_id, [{"errorType": UNAUTHORIZED_EXCEPTION, "message": "Token has expired."}]
            )

    def expire_where(self, expired: Callable[[Caller], bool]) -> None:
        for subscription_id, subscription in list(self._subscriptions.items()):
            if expired(subscription.caller):
                self.expire(subscription_id)

    def _teardown(self) -> None:
        for subscription_id in list(self._subscriptions):
            self._drop(subscription_id)
        for task in self._tasks:
            task.cancel()
        self.closed.set()


class RealtimeHub:
    def __init__(
        self,
        *,
        schema: SandboxSchema,
        broker: Broker,
        verifier: TokenVerifier,
        faults: Faults,
        stats: SandboxStats,
        ka_interval_s: float,
        connection_timeout_ms: int,
        is_revoked: Callable[[Caller], bool],
    ) -> None:
        self.schema = schema
        self.broker = broker
        self.verifier = verifier
        self.faults = faults
        self.stats = stats
        self.ka_interval_s = ka_interval_s
        self.connection_timeout_ms = connection_timeout_ms
        self._is_revoked = is_revoked
        self._connections: set[RealtimeConnection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        offered = offered_subprotocols(request)
        if SUBPROTOCOL not in offered:
            return web.json_response(
                {
                    "errors": [
                        {"errorType": "BadRequestException", "message": "Use the graphql-ws subprotocol."}
                    ]
                },
                status=400,
            )
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), autoping=True)
        await ws.prepare(request)
        connection = RealtimeConnection(self, request, ws)
        self._connections.add(connection)
        self.stats.sockets_open = len(self._connections)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self.stats.sockets_open = len(self._connections)
        return ws

    async def drop_all(self, *, timeout_s: float = 5.0) -> int:
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        if connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(connection.closed.wait() for connection in connections)), timeout_s
                )
        return len(connections)

    def expire_revoked(self) -> None:
        for connection in list(self._connections):
            connection.expire_where(self._is_revoked)
