"""The bridge token: random per install, kept in a user-only file that the EA reads.

The EA reads it with ``FileOpen(..., FILE_COMMON)``, i.e. from the terminals' common files folder
(``%APPDATA%\\MetaQuotes\\Terminal\\Common\\Files`` on Windows), so one file serves every MT4 terminal of
the user. That folder is under the user's profile, which Windows already restricts to the user; on POSIX
the file is created 0600 and tightened if it was left readable by others.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import sys
from pathlib import Path

import structlog

from hedge_agent.errors import ConfigError

log = structlog.get_logger(__name__)

#: where the EA looks by default (its ``TokenFile`` input), relative to the common files folder; the agent
#: uses it when a terminal's config has no ``token_file`` (tokenfile.default_token_path)
DEFAULT_TOKEN_NAME = "hedge-agent/bridge.token"
#: the EA's default ``BridgePort`` input; the example config uses it for its MT4 terminal
DEFAULT_BRIDGE_PORT = 17001
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,256}$")


def mt_common_files_dir() -> Path | None:
    """The MetaTrader common files folder (``FILE_COMMON``), or None where there is none (not Windows)."""
    appdata = os.environ.get("APPDATA")
    if sys.platform != "win32" or not appdata:
        return None
    return Path(appdata) / "MetaQuotes" / "Terminal" / "Common" / "Files"


def default_token_path(fallback_dir: Path) -> Path:
    """The token file the EA finds with its default input; ``fallback_dir`` off Windows (tests, demo)."""
    base = mt_common_files_dir() or fallback_dir
    return base / DEFAULT_TOKEN_NAME


def ea_token_input(path: Path, common_dir: Path | None = None) -> str | None:
    """The EA's ``TokenFile`` input that names ``path`` (relative to the common files folder, with
    backslashes as MQL4 writes it), or None when the EA cannot reach ``path`` (outside that folder).

    Off Windows (tests, the demo) there is no common files folder: the default layout
    (``<dir>/hedge-agent/bridge.token``) maps to the EA's default input."""
    common = common_dir or mt_common_files_dir()
    p = Path(path)
    if common is not None:
        try:
            rel = p.resolve().relative_to(common.resolve())
        except ValueError:
            return None
        return "\\".join(rel.parts)
    default = Path(DEFAULT_TOKEN_NAME)
    if p.parts[-len(default.parts) :] == default.parts:
        return "\\".join(default.parts)
    return None


def load_or_create_token(path: str | os.PathLike[str]) -> str:
    """The token in ``path``, or a new one written there (user-only) when the file is missing or empty.

    A file with something that is not a token in it is an error, not silently replaced: the user may have
    pointed two installs at one file, and replacing it would lock the other agent's EAs out.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the bridge token file {p}: {e}") from e
    if text:
        if not _TOKEN.match(text):
            raise ConfigError(
                f"the bridge token file {p} does not hold a token (32+ URL-safe characters): "
                "delete it to have a new one created, then restart the EAs"
            )
        _restrict(p)
        return text
    return _create(p)


def _create(p: Path) -> str:
    token = secrets.token_urlsafe(32)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
        # O_EXCL + 0600: the secret is never readable by others, not even for an instant
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
        os.replace(tmp, p)  # atomic: the EA never reads half a token
    except OSError as e:
        raise ConfigError(f"cannot write the bridge token file {p}: {e}") from e
    log.info("bridge.token_created", path=str(p))
    return token


def _restrict(p: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        p.chmod(0o600)
        log.warning("bridge.token_permissions_tightened", path=str(p), was=oct(mode))
