"""Keep tokens out of log lines and exception text produced by libraries we do not control.

gql logs every frame it sends at DEBUG (a subscription ``start`` carries the ``Authorization`` header), and
websockets logs the handshake request line (the realtime URL carries the token, base64-encoded, in
``header=``). ``hedge_agent.logs`` raises those loggers to WARNING and redacts structlog events; this filter
is the second lock on the same door, for whatever logging setup is in place (tests, embedding apps).
"""

from __future__ import annotations

import logging
import re
from collections import deque

from hedge_agent.logs import redact

_LIBRARY_LOGGERS = (
    "gql.transport.common.base",
    "gql.transport.appsync",
    "gql.transport.websockets",
    "gql.transport.websockets_protocol",
    "gql.transport.aiohttp",
    "gql.transport.common.adapters.websockets",
    "websockets.client",
    "websockets.protocol",
    "aiohttp.client",
    # request/response bodies at DEBUG: InitiateAuth parameters and AuthenticationResult
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.hooks",
    "urllib3.connectionpool",
)

#: ``"RefreshToken": "..."``, ``'PASSWORD': '...'`` and the like in logged JSON bodies and dict reprs, whatever
#: the value looks like (a local user pool's refresh tokens are plain UUIDs)
_SECRET_FIELD = re.compile(
    r"""(["'](?:\w*(?:token|Token|TOKEN)|password|Password|PASSWORD|authorization|Authorization|SECRET_HASH|Session)"""
    r"""["']\s*:\s*b?["'])[^"']{4,}"""
)

#: secrets in use right now (tokens, a password during sign-in): replaced literally, whatever their format
_KNOWN: deque[str] = deque(maxlen=32)
_MIN_SECRET_LEN = 8


def remember_secret(secret: str) -> None:
    if len(secret) >= _MIN_SECRET_LEN and secret not in _KNOWN:
        _KNOWN.append(secret)


def forget_secret(secret: str) -> None:
    try:
        _KNOWN.remove(secret)
    except ValueError:
        pass


def scrub(text: str) -> str:
    """``text`` with known secrets, anything that looks like a JWT and realtime ``header=`` parameters
    replaced."""
    for secret in tuple(_KNOWN):
        if secret in text:
            text = text.replace(secret, "[redacted]")
    text = _SECRET_FIELD.sub(r"\1[redacted]", text)
    cleaned = redact(None, "", {"event": text})["event"]
    return cleaned if isinstance(cleaned, str) else text


def describe(exc: BaseException) -> str:
    """A one-line, token-free description of a foreign exception for our own messages."""
    text = str(exc)
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


class ScrubTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string is not ours to fix here
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def install_log_scrubbing() -> None:
    """Attach :class:`ScrubTokens` to the library loggers that may print tokens (idempotent)."""
    global _installed
    if _installed:
        return
    scrubber = ScrubTokens()
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(scrubber)
    _installed = True
