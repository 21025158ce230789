"""Cognito sign-in (SRP via pycognito) and ID-token freshness.

pycognito's SRP and our small Cognito client (:mod:`.cognito_http`, in place of a botocore client, whose service
model alone costs ~10 MB of memory) are synchronous: every call runs in a worker thread
(``asyncio.to_thread``) so the event loop never blocks. pycognito's ``Cognito.authenticate`` would also verify the tokens against a JWKS it
fetches with ``requests`` (blocking, and an issuer check a local user pool cannot pass), so we drive its
``AWSSRP`` directly and decode claims without verification: the tokens come straight from Cognito over TLS,
and AppSync verifies them on every request anyway.

Freshness is measured on the token's own lifetime (``exp - iat``) from the moment we received it, on both the
monotonic clock (immune to wall-clock changes) and the wall clock (which keeps running while the PC sleeps):
a wrong PC clock cannot make a fresh token look stale or the reverse. A token is refreshed ``refresh_margin_s``
(default 5 minutes) before it expires, or half its lifetime for short-lived tokens (the sandbox uses seconds).

Tokens and passwords never appear in messages: every error is rebuilt from codes and our own words.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from hedge_agent.config import CognitoConfig
from hedge_agent.errors import AuthError, HedgeError, RetryableError

from .cognito_http import CognitoError, CognitoIdpClient, CognitoUnreachable
from .redaction import forget_secret, install_log_scrubbing, remember_secret

log = structlog.get_logger(__name__)

DEFAULT_REFRESH_MARGIN_S = 300.0
_CALL_TIMEOUT_S = 30.0

# Cognito error codes -> what the user should do (messages are ours: Cognito's may change)
_CREDENTIAL_CODES = {
    "NotAuthorizedException": "incorrect username or password, or the user is disabled",
    "UserNotFoundException": "incorrect username or password",
    "UserNotConfirmedException": "the user has not confirmed the sign-up: confirm it, then sign in again",
    "PasswordResetRequiredException": "a password reset is required: reset it on the web UI, then sign in again",
}
_CONFIG_CODES = {
    "ResourceNotFoundException": "user pool or app client not found: check cognito.user_pool_id and client_id",
    "InvalidParameterException": "Cognito rejected the request: check cognito.client_id (USER_SRP_AUTH and "
    "REFRESH_TOKEN_AUTH must be enabled on the app client, without a client secret)",
    "InvalidUserPoolConfigurationException": "the user pool is not configured for this sign-in flow",
}
_TRANSIENT_CODES = {
    "TooManyRequestsException",
    "InternalErrorException",
    "ServiceUnavailable",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
}


def decode_claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified. Raises AuthError (without the token) if it is not one."""
    try:
        segment = jwt.split(".")[1]
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        claims = json.loads(raw)
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthError("Cognito returned a token that is not a readable JWT") from None
    if not isinstance(claims, dict):
        raise AuthError("Cognito returned a token whose payload is not a JSON object")
    return claims


@dataclass(frozen=True)
class _Tokens:
    id_token: str
    refresh_token: str
    claims: Mapping[str, Any]
    lifetime_s: float
    received_mono: float
    received_wall: float

    def __repr__(self) -> str:  # never print a token, not even in a debugger dump or a traceback
        return f"_Tokens(sub={self.claims.get('sub')!r}, lifetime_s={self.lifetime_s})"


class CognitoAuth:
    """Holds one user's tokens. ``id_token()`` always returns a token fresh enough to use now."""

    def __init__(
        self,
        config: CognitoConfig,
        *,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        on_refresh_token: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._margin = refresh_margin_s
        self._on_refresh_token = on_refresh_token
        self._mono = monotonic
        self._wall = wall
        self._tokens: _Tokens | None = None
        self._client = CognitoIdpClient(config.region, config.endpoint_url)
        self._lock = asyncio.Lock()
        install_log_scrubbing()

    def __repr__(self) -> str:
        return f"CognitoAuth(user={self._config.username!r}, signed_in={self._tokens is not None})"

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self._tokens is not None

    @property
    def sub(self) -> str:
        sub = self._current().claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("the ID token has no `sub` claim")
        return sub

    @property
    def groups(self) -> tuple[str, ...]:
        groups = self._current().claims.get("cognito:groups") or ()
        return tuple(str(g) for g in groups) if isinstance(groups, list) else ()

    @property
    def refresh_token(self) -> str | None:
        """For the credential store only. None before sign-in."""
        return self._tokens.refresh_token if self._tokens else None

    @property
    def username(self) -> str:
        return self._config.username

    def _current(self) -> _Tokens:
        if self._tokens is None:
            raise AuthError(f"not signed in as {self._config.username!r}: run `hedge-agent login` first")
        return self._tokens

    def _refresh_at(self, tokens: _Tokens) -> float:
        """Monotonic time from which the token must be replaced."""
        margin = min(self._margin, tokens.lifetime_s / 2)
        mono_due = tokens.received_mono + tokens.lifetime_s - margin
        wall_due = tokens.received_wall + tokens.lifetime_s - margin
        # the wall clock keeps running while the PC sleeps, the monotonic one may not: take the earlier
        return min(mono_due, self._mono() + (wall_due - self._wall()))

    # -- sign-in -------------------------------------------------------------------------------------------

    async def sign_in_with_password(self, password: str) -> None:
        """SRP sign-in. Raises AuthError with a clear reason (never the password), RetryableError when
        Cognito could not be reached."""
        if not password:
            raise AuthError("empty password")
        client = self._client
        cfg = self._config

        def srp() -> Mapping[str, Any]:
            from pycognito.aws_srp import AWSSRP

            srp = AWSSRP(
                username=cfg.username,
                password=password,
                pool_id=cfg.user_pool_id,
                client_id=cfg.client_id,
                client=client,
            )
            result: Mapping[str, Any] = srp.authenticate_user()
            return result

        remember_secret(password)  # in case a library logs it at DEBUG
        try:
            response = await self._call(srp, during=f"sign-in as {cfg.username!r}")
        finally:
            forget_secret(password)
        async with self._lock:
            self._tokens = self._tokens_from(response, refresh_token=None)
        log.info("cognito.signed_in", user=cfg.username, sub=self.sub, flow="srp")

    async def sign_in_with_refresh_token(self, token: str) -> None:
        """Resume a stored sign-in. A revoked or expired refresh token raises AuthError telling the user
        to run ``hedge-agent login`` again."""
        if not token:
            raise AuthError("empty refresh token: run `hedge-agent login` again")
        async with self._lock:
            self._tokens = await self._refresh_with(token)
        log.info("cognito.signed_in", user=self._config.username, sub=self.sub, flow="refresh_token")

    # -- tokens --------------------------------------------------------------------------------------------

    async def id_token(self) -> str:
        token, _ = await self.id_token_with_deadline()
        return token

    async def id_token_with_deadline(self) -> tuple[str, float]:
        """A fresh ID token and the monotonic time by which it must be replaced (e.g. a socket opened with
        it must be recycled by then)."""
        tokens = self._current()
        if self._mono() >= self._refresh_at(tokens):
            async with self._lock:
                tokens = self._current()
                if self._mono() >= self._refresh_at(tokens):  # nobody refreshed while we waited
                    self._tokens = tokens = await self._refresh_with(tokens.refresh_token)
                    log.debug("cognito.refreshed", reason="due", lifetime_s=tokens.lifetime_s)
        return tokens.id_token, self._refresh_at(tokens)

    async def force_refresh(self, stale: str | None = None) -> None:
        """Refresh now (AppSync said the token is not good). With ``stale``, skip when the current token is
        already a newer one: several callers failing on the same token cause one refresh."""
        async with self._lock:
            tokens = self._current()
            if stale is not None and tokens.id_token != stale:
                return
            self._tokens = await self._refresh_with(tokens.refresh_token)
            log.info("cognito.refreshed", reason="forced")

    # -- internals -----------------------------------------------------------------------------------------

    async def _refresh_with(self, refresh_token: str) -> _Tokens:
        remember_secret(refresh_token)
        client = self._client
        cfg = self._config

        def refresh() -> Mapping[str, Any]:
            result: Mapping[str, Any] = client.initiate_auth(
                ClientId=cfg.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": refresh_token},
            )
            return result

        response = await self._call(refresh, during="token refresh", refresh=True)
        tokens = self._tokens_from(response, refresh_token=refresh_token)
        if tokens.refresh_token != refresh_token and self._on_refresh_token is not None:
            # the pool rotates refresh tokens: the stored one is now the old one
            self._on_refresh_token(tokens.refresh_token)
        return tokens

    def _tokens_from(self, response: Mapping[str, Any], *, refresh_token: str | None) -> _Tokens:
        result = response.get("AuthenticationResult")
        if not isinstance(result, Mapping) or not result.get("IdToken"):
            challenge = response.get("ChallengeName")
            if challenge:
                raise AuthError(
                    f"Cognito asks for the {challenge} challenge, which hedge-agent does not support"
                )
            raise AuthError("Cognito's answer has no ID token")
        id_token = str(result["IdToken"])
        new_refresh = result.get("RefreshToken") or refresh_token
        if not new_refresh:
            raise AuthError(
                "Cognito did not return a refresh token: enable REFRESH_TOKEN_AUTH on the app client"
            )
        claims = decode_claims(id_token)
        try:
            lifetime = float(claims["exp"]) - float(claims["iat"])
        except (KeyError, TypeError, ValueError):
            lifetime = float(result.get("ExpiresIn") or 3600)
        if lifetime <= 0:
            raise AuthError("Cognito returned an ID token that is already expired")
        remember_secret(id_token)
        remember_secret(str(new_refresh))
        return _Tokens(
            id_token=id_token,
            refresh_token=str(new_refresh),
            claims=claims,
            lifetime_s=lifetime,
            received_mono=self._mono(),
            received_wall=self._wall(),
        )

    async def _call(
        self, fn: Callable[[], Mapping[str, Any]], *, during: str, refresh: bool = False
    ) -> Mapping[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), _CALL_TIMEOUT_S)
        except TimeoutError:
            raise RetryableError(f"{during}: Cognito did not answer within {_CALL_TIMEOUT_S:g} s") from None
        except Exception as e:  # translated below; `from None`: foreign messages may echo parameters
            raise _translate(e, during=during, refresh=refresh) from None


def _translate(exc: Exception, *, during: str, refresh: bool) -> HedgeError:
    if isinstance(exc, HedgeError):
        return exc
    if type(exc).__module__.startswith("pycognito"):
        # only then: importing pycognito imports boto3 (~8 MB), which a refresh-token run never needs
        from pycognito.exceptions import ForceChangePasswordException, MFAChallengeException

        if isinstance(exc, ForceChangePasswordException):
            return AuthError(f"{during}: the user must set a new password first (sign in once on the web UI)")
        if isinstance(exc, MFAChallengeException):
            return AuthError(f"{during}: the user has MFA enabled, which hedge-agent does not support")
    if isinstance(exc, CognitoError):
        code = exc.code
        if code in _TRANSIENT_CODES or (code == "Unknown" and exc.status >= 500):
            return RetryableError(f"{during}: Cognito is busy or unavailable ({code}); will retry")
        if refresh and code == "NotAuthorizedException":
            return AuthError(
                f"{during}: the stored sign-in is no longer valid (refresh token expired or revoked); "
                "run `hedge-agent login` again"
            )
        if code in _CREDENTIAL_CODES:
            return AuthError(f"{during}: {_CREDENTIAL_CODES[code]} ({code})")
        if code in _CONFIG_CODES:
            return AuthError(f"{during}: {_CONFIG_CODES[code]} ({code})")
        return AuthError(f"{during}: Cognito refused ({code})")
    if isinstance(exc, CognitoUnreachable):
        return RetryableError(f"{during}: cannot reach Cognito ({exc}); will retry")
    return AuthError(f"{during}: unexpected {type(exc).__name__}")
