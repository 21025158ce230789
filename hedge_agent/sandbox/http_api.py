"""AppSync's HTTP side: ``POST /graphql`` with the raw ID token in ``Authorization``.

Bad credentials -> 401 ``UnauthorizedException``; a malformed request -> 400; everything GraphQL
(validation, resolver errors) -> 200 with ``errors``. The realtime socket is served on
``/graphql/realtime`` and also on ``/graphql`` (an upgrade request there).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from aiohttp import web
from graphql import ExecutionResult, OperationType, execute, get_operation_ast

from .appsync_errors import format_errors, transport_error
from .auth import AuthFailure, TokenVerifier
from .realtime import RealtimeHub
from .resolvers import DataPlane, RequestContext
from .schema import SandboxSchema
from .stats import SandboxStats

UNAUTHORIZED_EXCEPTION = "UnauthorizedException"
BAD_REQUEST = "BadRequestException"


class GraphQLHttp:
    def __init__(
        self, *, schema: SandboxSchema, plane: DataPlane, verifier: TokenVerifier, stats: SandboxStats
    ) -> None:
        self._schema = schema
        self._plane = plane
        self._verifier = verifier
        self._stats = stats

    async def handle(self, request: web.Request) -> web.Response:
        self._stats.http_requests += 1
        try:
            caller = self._verifier.verify(request.headers.get("Authorization"))
        except AuthFailure as exc:
            self._stats.auth_rejections += 1
            return web.json_response(transport_error(UNAUTHORIZED_EXCEPTION, exc.message), status=401)
        try:
            body = json.loads(await request.read())
            query = body["query"]
            variables = body.get("variables") or {}
            operation_name = body.get("operationName")
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError("'query' must be a string and 'variables' an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            message = f"The body must be a JSON object {{query, variables?, operationName?}}: {exc}"
            return web.json_response(transport_error(BAD_REQUEST, message), status=400)
        return web.json_response(
            await self._run(
                caller_context=RequestContext(caller, self._plane),
                query=query,
                variables=variables,
                operation_name=operation_name,
            )
        )

    async def _run(
        self, *, caller_context: RequestContext, query: str, variables: dict[str, Any], operation_name: Any
    ) -> dict[str, Any]:
        document, errors = self._schema.documents.get(query)
        if document is None or errors:
            return {"data": None, "errors": format_errors(list(errors))}
        operation = get_operation_ast(document, operation_name if isinstance(operation_name, str) else None)
        if operation is not None and operation.operation == OperationType.SUBSCRIPTION:
            message = "Subscriptions are served on the realtime endpoint (/graphql/realtime)."
            return {"data": None, "errors": [{"errorType": "UnsupportedOperation", "message": message}]}
        outcome = execute(
            self._schema.schema,
            document,
            context_value=caller_context,
            variable_values=variables,
            operation_name=operation_name if isinstance(operation_name, str) else None,
        )
        result = await outcome if inspect.isawaitable(outcome) else outcome
        assert isinstance(result, ExecutionResult)
        response: dict[str, Any] = {"data": result.data}
        if result.errors:
            response["errors"] = format_errors(list(result.errors))
        return response


def build_app(http: GraphQLHttp, hub: RealtimeHub) -> web.Application:
    async def graphql_get(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await hub.handle(request)
        return web.json_response(
            transport_error(BAD_REQUEST, "POST GraphQL requests to /graphql."), status=405
        )

    app = web.Application()
    app.router.add_post("/graphql", http.handle)
    app.router.add_get("/graphql", graphql_get)
    app.router.add_get("/graphql/realtime", hub.handle)
    return app
