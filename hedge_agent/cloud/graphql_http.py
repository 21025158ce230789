"""Queries and mutations: GraphQL over HTTP POST with the raw ID token in ``Authorization``.

Answers are classified once, here, into a few error classes that say what to do (CONTRACT.md, error shapes):
- HTTP 401/403 or ``UnauthorizedException``: the token was refused -> refresh it and try once more;
- ``errorType: Unauthorized`` (status 200): a field-level denial -> :class:`AccessDenied`, no retry;
- ``...ConditionalCheckFailedException``: -> :class:`ConditionalCheckFailed`, no retry;
- network errors, timeouts, 429/5xx, throttling: retried with backoff, a bounded number of times;
- anything else (validation, composite-key errors): :class:`GraphQLRejected`, no retry.
Matching is on ``errorType`` (real AppSync words its messages differently from the simulator).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from hedge_agent.errors import AuthError, PermanentError, RetryableError

from .auth import CognitoAuth
from .redaction import describe
from .retry import REQUEST_ATTEMPTS, REQUEST_BACKOFF, Backoff, Disposition

log = structlog.get_logger(__name__)

_TRANSIENT_ERROR_TYPES = (
    "ProvisionedThroughputExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceeded",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflict",
    "Timeout",
)


@dataclass(frozen=True)
class GraphQLErrorInfo:
    message: str
    error_type: str | None = None
    path: tuple[str | int, ...] = ()

    @classmethod
    def from_wire(cls, raw: Any) -> GraphQLErrorInfo:
        if not isinstance(raw, Mapping):
            return cls(message=str(raw)[:300])
        path = raw.get("path")
        return cls(
            message=str(raw.get("message") or "")[:300],
            error_type=str(raw["errorType"]) if raw.get("errorType") else None,
            path=tuple(p for p in path if isinstance(p, str | int)) if isinstance(path, list) else (),
        )

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}" if self.error_type else self.message


class ConditionalCheckFailed(PermanentError):
    """The write's condition did not hold. ``after_retry``: an earlier attempt of the same request may have
    been applied (its answer was lost), so the record may already be in the requested state."""

    def __init__(self, message: str, *, after_retry: bool) -> None:
        super().__init__(message)
        self.after_retry = after_retry


class AccessDenied(PermanentError):
    """``errorType: Unauthorized``: this user may not read or write that record."""


class GraphQLRejected(PermanentError):
    """The request is wrong in a way retrying cannot fix (validation, schema, key errors, or a stored
    record that breaks the schema: ``errors`` then name the field by path)."""

    def __init__(self, message: str, errors: tuple[GraphQLErrorInfo, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class RequestRetriesExhausted(RetryableError):
    """Transient failures on every attempt; trying again later may work."""


@dataclass(frozen=True)
class GraphQLResponse:
    data: Mapping[str, Any]
    #: errors that came with usable data (e.g. one bad item in a list); the root field is not null
    errors: tuple[GraphQLErrorInfo, ...] = field(default=())


def classify_errors(errors: tuple[GraphQLErrorInfo, ...]) -> Disposition:
    kinds = {e.error_type or "" for e in errors}
    if any(k == "UnauthorizedException" for k in kinds):
        return Disposition.REFRESH
    if any(k and any(t in k for t in _TRANSIENT_ERROR_TYPES) for k in kinds):
        return Disposition.RETRY
    return Disposition.GIVE_UP


class GraphQLHttp:
    """One endpoint, one user. ``execute`` returns the data or raises one of the classes above,
    :class:`~hedge_agent.errors.AuthError` (token refused even after a refresh) or
    :class:`RequestRetriesExhausted`."""

    def __init__(
        self,
        url: str,
        auth: CognitoAuth,
        *,
        timeout_s: float = 10.0,
        backoff: Backoff = REQUEST_BACKOFF,
        attempts: int = REQUEST_ATTEMPTS,
    ) -> None:
        self._url = url
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff = backoff
        self._attempts = attempts
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def execute(self, query: str, variables: Mapping[str, Any], *, root: str) -> GraphQLResponse:
        """POST the operation; ``root`` is the operation's root field (e.g. ``updateAction``)."""
        body = json.dumps({"query": query, "variables": variables}, allow_nan=False, separators=(",", ":"))
        delays = self._backoff.delays()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = await self._auth.id_token()
            outcome = await self._attempt(body, token, root, after_retry=attempt > 1)
            if isinstance(outcome, GraphQLResponse):
                return outcome
            if outcome.disposition is Disposition.REFRESH:
                if refreshed:
                    raise AuthError(f"{root}: AppSync refused a freshly refreshed token ({outcome.detail})")
                refreshed = True
                attempt -= 1  # a refused token is not a failed attempt (nothing was applied)
                await self._auth.force_refresh(stale=token)
                continue
            if attempt >= self._attempts:
                raise RequestRetriesExhausted(
                    f"{root}: gave up after {attempt} attempts; last error: {outcome.detail}"
                )
            delay = next(delays)
            log.info(
                "graphql.retry", root=root, attempt=attempt, delay_s=round(delay, 3), error=outcome.detail
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self, body: str, token: str, root: str, *, after_retry: bool
    ) -> GraphQLResponse | _Again:
        """One POST: the response, or what to do next; raises for answers retrying cannot change."""
        headers = {"Authorization": token, "Content-Type": "application/json"}
        try:
            async with self._http().post(self._url, data=body, headers=headers) as resp:
                status = resp.status
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return _Again(Disposition.RETRY, describe(e))
        if status in (401, 403):
            return _Again(Disposition.REFRESH, f"HTTP {status}")
        server_busy = status == 429 or status >= 500
        try:
            answer = json.loads(text)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            if server_busy:
                return _Again(Disposition.RETRY, f"HTTP {status}")
            raise GraphQLRejected(f"{root}: HTTP {status} without a GraphQL answer: {text[:200]!r}")
        raw_errors = answer.get("errors")
        wire_errors = raw_errors if isinstance(raw_errors, list) else [raw_errors] if raw_errors else []
        errors = tuple(GraphQLErrorInfo.from_wire(e) for e in wire_errors)
        data = answer.get("data")
        if isinstance(data, dict) and (data.get(root) is not None or (root in data and not errors)):
            return GraphQLResponse(data=data, errors=errors)  # a null root without errors: nothing there
        if not errors:
            if server_busy:
                return _Again(Disposition.RETRY, f"HTTP {status}")
            raise GraphQLRejected(f"{root}: answer without data or errors (HTTP {status})")
        first = errors[0]
        kinds = " ".join(e.error_type or "" for e in errors)
        if "ConditionalCheckFailedException" in kinds:
            raise ConditionalCheckFailed(f"{root}: {first.message}", after_retry=after_retry)
        if any(e.error_type == "Unauthorized" for e in errors):
            raise AccessDenied(f"{root}: not authorized ({first.message})")
        disposition = classify_errors(errors)
        if disposition is Disposition.GIVE_UP and server_busy:
            disposition = Disposition.RETRY
        if disposition is Disposition.GIVE_UP:
            raise GraphQLRejected(f"{root}: {first}", errors)
        return _Again(disposition, str(first))


@dataclass(frozen=True)
class _Again:
    disposition: Disposition
    detail: str
