"""A small Cognito Identity Provider client: the unauthenticated calls sign-in needs, over HTTPS JSON.

Cognito's API is JSON over HTTPS (``X-Amz-Target: AWSCognitoIdentityProviderService.<Op>``, ``Content-Type:
application/x-amz-json-1.1``); InitiateAuth and RespondToAuthChallenge need no AWS signature. A botocore
client would load the whole service model (several MB of JSON, kept in memory for the process's life) for
these two calls. This one has the two methods pycognito's ``AWSSRP`` calls (``client=``), with boto3's
keyword arguments and answers, and raises :class:`CognitoError` (a Cognito error code) or
:class:`CognitoUnreachable` (no answer) instead of botocore's exceptions. It is synchronous (stdlib
``urllib``): the callers run it in a worker thread.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

_TARGET = "AWSCognitoIdentityProviderService."
_CONTENT_TYPE = "application/x-amz-json-1.1"
_TIMEOUT_S = 10.0
_ATTEMPTS = 2  # as botocore's standard retry mode was configured: one more try on a transient failure
_RETRY_DELAY_S = 0.5
_TRANSIENT_HTTP = {500, 502, 503, 504}
_TRANSIENT_CODES = {"TooManyRequestsException", "ThrottlingException", "InternalErrorException"}


class CognitoError(Exception):
    """Cognito answered with an error. ``code`` is its error type (e.g. NotAuthorizedException); Cognito's
    own message is not kept: it may echo parameters."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(f"Cognito error {code} (HTTP {status})")
        self.code = code
        self.status = status


class CognitoUnreachable(Exception):
    """No answer from Cognito (connection refused, DNS, TLS, timeout, a reply that is not Cognito's)."""


def endpoint_for(region: str, endpoint_url: str | None) -> str:
    return endpoint_url or f"https://cognito-idp.{region}.amazonaws.com/"


def _error_code(body: bytes, header: str | None) -> str:
    code = ""
    try:
        payload = json.loads(body) if body else {}
        if isinstance(payload, dict):
            code = str(payload.get("__type") or payload.get("code") or "")
    except ValueError:
        pass
    if not code and header:
        code = header.split(":", 1)[0]
    # "com.amazonaws.cognito.identity.idp.model#NotAuthorizedException" -> the part after '#'
    return code.rsplit("#", 1)[-1].strip() or "Unknown"


class CognitoIdpClient:
    """``initiate_auth`` / ``respond_to_auth_challenge`` as boto3's cognito-idp client has them."""

    def __init__(
        self, region: str, endpoint_url: str | None = None, *, timeout_s: float = _TIMEOUT_S
    ) -> None:
        self._url = endpoint_for(region, endpoint_url)
        self._timeout = timeout_s
        self._ssl = ssl.create_default_context() if self._url.startswith("https:") else None

    def __repr__(self) -> str:
        return f"CognitoIdpClient({self._url!r})"

    def initiate_auth(self, **params: Any) -> Mapping[str, Any]:
        return self._call("InitiateAuth", params)

    def respond_to_auth_challenge(self, **params: Any) -> Mapping[str, Any]:
        return self._call("RespondToAuthChallenge", params)

    def _call(self, operation: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        body = json.dumps(params).encode()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._once(operation, body)
            except CognitoError as e:
                if attempt == _ATTEMPTS or not (e.status in _TRANSIENT_HTTP or e.code in _TRANSIENT_CODES):
                    raise
            except CognitoUnreachable:
                if attempt == _ATTEMPTS:
                    raise
            time.sleep(_RETRY_DELAY_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, operation: str, body: bytes) -> Mapping[str, Any]:
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": _CONTENT_TYPE, "X-Amz-Target": _TARGET + operation},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._ssl) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            with e:
                raw_error = e.read()
            raise CognitoError(_error_code(raw_error, e.headers.get("x-amzn-ErrorType")), e.code) from None
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            OSError,
            ValueError,
        ) as e:  # refused, DNS, TLS, timeout, bad URL
            raise CognitoUnreachable(type(e).__name__) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise CognitoUnreachable("the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise CognitoUnreachable("the answer is not a JSON object")
        return answer
