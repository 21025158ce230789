"""Checking Cognito user pool tokens the way AppSync's ``AMAZON_COGNITO_USER_POOLS`` mode does: RS256
signature against the pool's JWKS, expiry, issuer, and the app client (``aud`` of an ID token,
``client_id`` of an access token). Both kinds are accepted: AppSync takes the user pool's ID *and* access
tokens (https://docs.aws.amazon.com/appsync/latest/devguide/security-authz.html, "AMAZON_COGNITO_USER_POOLS
authorization"), and the Amplify v6 JavaScript client sends the access token. The caller's identity is its
``sub`` and ``cognito:groups`` (both kinds carry them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from .model_specs import ADMIN_GROUP


class AuthFailure(Exception):
    """The credentials were refused: 401 over HTTP, connection_error / error frame on the socket."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Caller:
    sub: str
    username: str
    groups: frozenset[str]
    token_id: str  # the token's jti
    expires_at: float  # exp claim, epoch seconds

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


class TokenRegistry:
    """Every ID and access token the local pool has issued (by jti), and which ones were force-expired.

    Written from the Cognito server's request threads, read on the event loop: hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued: set[str] = set()
        self._expired: set[str] = set()

    def record(self, token_id: str) -> None:
        with self._lock:
            self._issued.add(token_id)

    def expire_all(self) -> None:
        with self._lock:
            self._expired |= self._issued

    def is_expired(self, token_id: str) -> bool:
        with self._lock:
            return token_id in self._expired


EXPIRED_MESSAGE = "Token has expired."
_CACHE_SIZE = 1024
NO_TOKEN_MESSAGE = "Valid authorization header not provided."
_REQUIRED = {
    "id": ["exp", "iat", "iss", "aud", "sub", "token_use", "jti"],
    "access": ["exp", "iat", "iss", "client_id", "sub", "token_use", "jti"],
}


class TokenVerifier:
    def __init__(
        self, *, jwks: Mapping[str, Any], issuer: str, client_id: str, registry: TokenRegistry
    ) -> None:
        self._keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(dict(jwks)).keys}
        self._issuer = issuer
        self._client_id = client_id
        self._registry = registry
        self._verified: dict[str, Caller] = {}

    def verify(self, token: str | None) -> Caller:
        """The caller a raw ID or access token stands for, or AuthFailure saying why not."""
        cached = self._verified.get(token) if token else None
        if cached is not None:
            # the signature, issuer and audience were checked; expiry and revocation may have changed
            if cached.expires_at <= time.time():
                raise AuthFailure(EXPIRED_MESSAGE)
            if self._registry.is_expired(cached.token_id):
                raise AuthFailure(EXPIRED_MESSAGE)
            return cached
        caller = self._verify(token)
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[str(token)] = caller
        return caller

    def _verify(self, token: str | None) -> Caller:
        if not token or not token.strip():
            raise AuthFailure(NO_TOKEN_MESSAGE)
        if token.lower().startswith("bearer "):
            raise AuthFailure("Send the raw token in Authorization, without the 'Bearer' prefix.")
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None:
                raise AuthFailure("Token was signed by an unknown key.")
            token_use = jwt.decode(token, options={"verify_signature": False}).get("token_use")
            if token_use not in ("id", "access"):
                raise AuthFailure("Only Cognito user pool ID and access tokens are accepted (token_use).")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                # an ID token names the app client in aud; an access token has no aud, but client_id
                audience=self._client_id if token_use == "id" else None,
                issuer=self._issuer,
                options={"require": _REQUIRED[token_use], "verify_aud": token_use == "id"},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthFailure(EXPIRED_MESSAGE) from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthFailure("Token was not issued by this user pool.") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthFailure("Token was not issued to this app client.") from exc
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"You are not authorized to make this call ({exc}).") from exc
        if token_use == "access" and claims.get("client_id") != self._client_id:
            raise AuthFailure("Token was not issued to this app client.")
        if self._registry.is_expired(str(claims["jti"])):
            raise AuthFailure(EXPIRED_MESSAGE)
        groups = claims.get("cognito:groups") or []
        return Caller(
            sub=str(claims["sub"]),
            username=str(claims.get("cognito:username") or claims.get("username") or claims["sub"]),
            groups=frozenset(str(group) for group in groups),
            token_id=str(claims["jti"]),
            expires_at=float(claims["exp"]),
        )
