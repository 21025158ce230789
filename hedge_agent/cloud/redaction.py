"""Keep tokens out of log lines and exception text produced by libraries we do not control.

gql logs every frame it sends at DEBUG (a subscription ``start`` carries the ``Authorization`` header), and
websockets logs the handshake request line (the realtime URL carries the token, base64-encoded, in
``header=``). ``hedge_agent.logs`` raises those loggers to WARNING and redacts structlog events; this filter
is the second lock on the same door, for whatever logging setup is in place (tests, embedding apps).
"""

from __future__ import annotations

import logging

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
)


def scrub(text: str) -> str:
    """``text`` with anything that looks like a JWT or a realtime ``header=`` parameter replaced."""
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
