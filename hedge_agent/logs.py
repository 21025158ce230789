"""Logging: structlog events -> JSON lines in a rotating file (user log dir) + a readable console.

Event names follow one convention: ``area.what_happened`` in lower snake case, dotted once (``cognito.signed_in``,
``agent.stopping``, ``trade.fill``); the details go in fields, never in the name. :func:`event_name` checks it.

Every event passes :func:`redact` first: values under secret-sounding keys, and anything that looks like a
JWT or a long opaque token anywhere in a string, are replaced. Secrets must never reach a log line.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import platformdirs
import structlog

APP_NAME = "hedge-agent"
REDACTED = "[redacted]"
LOG_FILE = "hedge-agent.log"
TRADES_FILE = "trades.log"

_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_current_log_file: Path | None = None


def event_name(name: str) -> bool:
    """True when ``name`` follows the convention ``area.what_happened``."""
    return bool(_EVENT_NAME.match(name))


def current_log_file() -> Path | None:
    """The JSON log file the last :func:`setup_logging` opened (None before, or without a file)."""
    return _current_log_file


class LogDirError(OSError):
    """The log folder cannot be created or written; the message names it and the fix."""


_SECRET_KEYS = re.compile(
    r"(token|password|passwd|secret|authorization|credential|api[_-]?key|refresh)", re.I
)
# three base64url segments separated by dots (JWS/JWE compact) and Cognito's opaque refresh tokens (JWE, 5 parts)
_JWT = re.compile(r"eyJ[\w-]{8,}(?:\.[\w-]{4,}){1,4}")
# header=<base64 JSON> in realtime URLs carries the Authorization header
_URL_HEADER = re.compile(r"(header=)[A-Za-z0-9+/=%_-]{16,}")


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _URL_HEADER.sub(r"\1" + REDACTED, _JWT.sub(REDACTED, value))
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_key(k, v) else _scrub(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    return value


def _is_secret_key(key: Any, value: Any) -> bool:
    # a boolean/number under e.g. "token_valid" is not a secret; a string is
    return (
        isinstance(key, str)
        and bool(_SECRET_KEYS.search(key))
        and isinstance(value, str | bytes)
        and bool(value)
    )


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _is_secret_key(key, value):
            event[key] = REDACTED
        else:
            event[key] = _scrub(value)
    return event


def default_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redact,
]


def setup_logging(
    level: str = "INFO",
    log_dir: Path | None = None,
    *,
    console: bool = True,
    file: bool = True,
    file_name: str = LOG_FILE,
) -> Path | None:
    """Configure structlog + stdlib logging once. Returns the log file path (None without a file).

    The windowed build has no stdout: pass ``console=False`` there and everything goes to the file.
    Raises :class:`LogDirError` when the log folder cannot be created or written.
    """
    global _current_log_file
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    _current_log_file = None
    root.setLevel(level.upper())
    log_file = None
    if file:
        directory = log_dir or default_log_dir()
        log_file = directory / file_name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8"
            )
        except OSError as e:
            raise LogDirError(
                f"cannot write the log in {directory} ({e.strerror or type(e).__name__}): set `log_dir` in the "
                "config to a folder you can write, or fix that folder's permissions"
            ) from None
        fh.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(), foreign_pre_chain=_SHARED
            )
        )
        root.addHandler(fh)
    if console and sys.stderr is not None:
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()), foreign_pre_chain=_SHARED
            )
        )
        root.addHandler(ch)
    # chatty libraries: their DEBUG carries payloads (and headers) we do not want in files
    for noisy in ("botocore", "boto3", "urllib3", "websockets", "gql", "aiohttp", "moto", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        # filter_by_level first: a line below the level is dropped before any processor runs (the hot
        # paths log at DEBUG/INFO per order; a timestamp and the redaction cost several us each)
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _current_log_file = log_file
    return log_file
