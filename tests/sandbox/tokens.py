"""Forged ID tokens for the JWT checks: a wrong key, a wrong issuer, an old expiry."""

from __future__ import annotations

import gzip
import json
import time
from functools import cache
from importlib import resources
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def moto_signing_key() -> Any:
    raw = resources.files("moto.cognitoidp").joinpath("resources/jwks-private.json.gz").read_bytes()
    return jwt.PyJWK(json.loads(gzip.decompress(raw))).key


def forge(token: str, *, key: Any | None = None, **claims: Any) -> str:
    """``token`` with ``claims`` replaced, signed by ``key`` (moto's own key unless given)."""
    payload = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    return jwt.encode(payload, key or moto_signing_key(), algorithm="RS256", headers={"kid": "dummy"})


@cache
def stranger_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def an_hour_ago() -> int:
    return int(time.time()) - 3600
