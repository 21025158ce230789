"""Configuration: pydantic models for the TOML file, ``HEDGE_AGENT__SECTION__KEY`` overrides, precise errors.

Validated once at start. Unknown keys are errors (a typo must not silently fall back to a default when real
money is involved). ``load_config`` raises :class:`ConfigError` whose ``problems`` each name the key path,
the bad value and a hint.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse, urlunparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.errors import ConfigError

ENV_PREFIX = "HEDGE_AGENT__"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CognitoConfig(Strict):
    region: str = Field(min_length=1, description="AWS region of the user pool, e.g. ap-northeast-1")
    user_pool_id: str = Field(pattern=r"^[\w-]+_[0-9A-Za-z]+$")
    client_id: str = Field(min_length=1)
    username: str = Field(min_length=1)
    #: only for the local sandbox: the Cognito endpoint to talk to instead of AWS
    endpoint_url: str | None = None


class AppSyncConfig(Strict):
    graphql_url: str
    realtime_url: str | None = None
    #: seconds between periodic catch-ups (the reconnect's catch-up queries, run while connected), so an
    #: update the subscription never delivered is acted on within this period; 0 turns them off
    catchup_interval_s: float = Field(default=30.0, ge=0)

    @field_validator("graphql_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("https", "http") or not u.netloc:
            raise ValueError(
                "must be an http(s) URL such as https://XXXX.appsync-api.REGION.amazonaws.com/graphql"
            )
        return v

    @field_validator("realtime_url")
    @classmethod
    def _ws_url(cls, v: str | None) -> str | None:
        if v is not None:
            u = urlparse(v)
            if u.scheme not in ("wss", "ws") or not u.netloc:
                raise ValueError(
                    "must be a ws(s) URL such as wss://XXXX.appsync-realtime-api.REGION.amazonaws.com/graphql"
                )
        return v

    @property
    def effective_realtime_url(self) -> str:
        return self.realtime_url or derive_realtime_url(self.graphql_url)


def derive_realtime_url(graphql_url: str) -> str:
    """As AppSync does: ``https://X.appsync-api.R.amazonaws.com/graphql`` ->
    ``wss://X.appsync-realtime-api.R.amazonaws.com/graphql``; a custom domain gets ``/graphql/realtime``."""
    u = urlparse(graphql_url)
    scheme = "wss" if u.scheme == "https" else "ws"
    if ".appsync-api." in u.netloc:
        return urlunparse(
            (scheme, u.netloc.replace(".appsync-api.", ".appsync-realtime-api."), u.path, "", "", "")
        )
    return urlunparse((scheme, u.netloc, u.path.rstrip("/") + "/realtime", "", "", ""))


class TerminalKind(StrEnum):
    MT5 = "mt5"
    MT4 = "mt4"
    SIMULATED = "simulated"


class TerminalConfig(Strict):
    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    kind: TerminalKind
    #: the cloud Account id whose positions and actions this terminal executes
    account_id: str = Field(min_length=1)
    login: int = Field(ge=0)
    server: str = ""
    #: MT5 only: terminal64.exe of this terminal (one worker process per terminal)
    path: str | None = None
    #: MT4 only: the port of this terminal's bridge on 127.0.0.1 (the EA's BridgePort input; its default and
    #: the example config's is 17001), and the token file both sides prove they hold. No token_file: the
    #: one the EA's default TokenFile input reads (MetaTrader's Common\Files\hedge-agent\bridge.token,
    #: tokenfile.default_token_path); one of your own must be inside Common\Files for the EA to read it
    bridge_port: int | None = Field(default=None, ge=1024, le=65535)
    token_file: str | None = None
    symbol_map: dict[Symbol, str] = Field(default_factory=dict)
    pip_overrides: dict[Symbol, Decimal] = Field(default_factory=dict)
    magic_base: int = Field(default=0, ge=0, lt=1 << 30)
    deviation_points: int = Field(default=20, ge=0, le=10_000)
    #: opt-in broker-side protective stop: a stop-loss this many pips from the open price, placed WITH the
    #: open order and never moved by the trail; it protects the position while the agent is off. Its hit
    #: is a stop-out for the agent (reported STOPPED, triggers fire). 0 = none (the default)
    protective_stop_pips: float = Field(
        default=0,
        description="pips of a broker-side stop-loss placed with each open and never moved (0: none)",
        json_schema_extra={"minimum": 0},
    )
    #: MT5 only: hours the trade server's clock is ahead of UTC (e.g. 3, -4, 5.5), or "auto" to learn it
    #: from moving prices and our own fills (follows the broker's DST switches; remembered in the journal)
    server_utc_offset_hours: float | Literal["auto"] = "auto"
    #: simulated only: seed of the price walk
    seed: int = 1

    @field_validator("symbol_map")
    @classmethod
    def _broker_names(cls, v: dict[Symbol, str]) -> dict[Symbol, str]:
        targets: dict[str, Symbol] = {}
        for sym, name in v.items():
            if not name.strip():
                raise ValueError(
                    f"symbol_map.{sym.value} is empty: give the broker's name of {sym.value} "
                    f'(e.g. "{sym.value}.raw") or remove the entry'
                )
            if name in targets:
                raise ValueError(
                    f"symbol_map sends both {targets[name].value} and {sym.value} to {name!r}: "
                    "each symbol needs its own broker symbol"
                )
            targets[name] = sym
        return v

    @field_validator("pip_overrides")
    @classmethod
    def _positive_pips(cls, v: dict[Symbol, Decimal]) -> dict[Symbol, Decimal]:
        for sym, pip in v.items():
            if pip <= 0:
                raise ValueError(f"pip size of {sym.value} must be > 0")
        return v

    @field_validator("protective_stop_pips")
    @classmethod
    def _stop_pips(cls, v: float) -> float:
        if not math.isfinite(v) or v < 0:
            raise ValueError(
                f"protective_stop_pips must be 0 (no broker-side stop) or a number of pips > 0, not {v}"
            )
        return v

    @field_validator("server_utc_offset_hours")
    @classmethod
    def _quarter_hours(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            return v
        if not -14 <= v <= 14 or (v * 4) != int(v * 4):
            raise ValueError(
                f'server_utc_offset_hours must be "auto" or hours from -14 to 14 in quarter hours, not {v}'
            )
        return v

    @property
    def server_utc_offset_seconds(self) -> float | None:
        """The configured trade server offset in seconds; None for "auto"."""
        v = self.server_utc_offset_hours
        return None if isinstance(v, str) else float(v) * 3600

    @model_validator(mode="after")
    def _kind_fields(self) -> TerminalConfig:
        if self.kind is TerminalKind.MT5 and not self.path:
            raise ValueError("an mt5 terminal needs `path` (its terminal64.exe)")
        if self.kind is TerminalKind.MT4 and self.bridge_port is None:
            raise ValueError(
                "an mt4 terminal needs `bridge_port` (the EA connects to 127.0.0.1:<bridge_port>)"
            )
        return self

    @property
    def symbols(self) -> SymbolTable:
        return SymbolTable(pip_overrides=dict(self.pip_overrides), broker_names=dict(self.symbol_map))


class TrailingConfig(Strict):
    interval_ms: int = Field(default=100, ge=10, le=5_000)
    #: a quote older than this never moves or fires a trail (market closed, feed stalled)
    stale_quote_s: float = Field(default=5.0, gt=0, le=3_600)


class RiskConfig(Strict):
    max_volume_per_order: float = Field(default=10.0, gt=0)
    max_open_positions: int = Field(default=100, ge=1, description="per terminal")
    max_orders_per_minute: int = Field(default=60, ge=1, description="per terminal")


class JournalConfig(Strict):
    #: a finished position (closed or failed, everything reported, claims settled) leaves the journal's hot
    #: tables after this many days unchanged; its rows stay in the archive, still answered by key
    keep_finished_days: float = Field(default=7.0, ge=1, le=3_650)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class AgentConfig(Strict):
    cognito: CognitoConfig
    appsync: AppSyncConfig
    terminals: list[TerminalConfig] = Field(min_length=1)
    trailing: TrailingConfig = TrailingConfig()
    account_sync_s: float = Field(default=30.0, ge=1, le=3_600)
    risk: RiskConfig = RiskConfig()
    #: defaults: the platform's user data dir / user log dir for hedge-agent
    journal_path: Path | None = None
    journal: JournalConfig = JournalConfig()
    log_dir: Path | None = None
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        for attr in ("name", "account_id", "bridge_port"):
            seen: set[object] = set()
            for t in self.terminals:
                value = getattr(t, attr)
                if value is not None and value in seen:
                    raise ValueError(f"two terminals share {attr} = {value!r}; each must be unique")
                seen.add(value)
        logins: dict[tuple[int, str], str] = {}
        for t in self.terminals:
            if t.kind is TerminalKind.SIMULATED:
                continue
            key = (t.login, t.server)
            if key in logins:
                raise ValueError(
                    f"terminals {logins[key]!r} and {t.name!r} are both login {t.login} on server "
                    f"{t.server!r}: one trading account must be bound to one terminal"
                )
            logins[key] = t.name
        return self

    def terminal_for_account(self, account_id: str) -> TerminalConfig | None:
        return next((t for t in self.terminals if t.account_id == account_id), None)


_HINTS = {
    "extra_forbidden": "check its spelling and section (see config/hedge_agent.example.toml)",
    "missing": "required: add it",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "string_type": 'expected a string in quotes, e.g. "value"',
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "list_type": "expected a list: [[section]] tables in TOML",
    "model_type": "expected a [section] table",
    "dict_type": 'expected a table, e.g. { USDJPY = "USDJPY.raw" }',
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "has the wrong format",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "decimal_parsing": "expected a number",
}


TOP_LEVEL = "top level"


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("after", "before"):
            continue  # pydantic validator frames, not keys
        else:
            out += ("." if out else "") + part
    return out or TOP_LEVEL


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return "a table" if value else "an empty table"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value)[:80]


def format_problems(exc: ValidationError, env_keys: Mapping[str, str] | None = None) -> list[str]:
    """One line per problem. ``env_keys`` maps a key path set from the environment to its variable, so an
    override's error is blamed on the variable, not on a file key the user never wrote."""
    problems = []
    for err in exc.errors():
        path = _key_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        hint = _HINTS.get(err["type"], "")
        if err["type"] == "missing":
            line = f"{path}: missing"
        elif err["type"] == "extra_forbidden":
            line = f"{path}: unknown key"
        elif isinstance(err.get("input"), dict | list) and err["type"] not in _HINTS:
            line = f"{path}: {msg}"  # a validator's own message names what is wrong in the table
        else:
            line = f"{path}: {msg} (got {_shown(err.get('input'))})"
        var = _env_var_for(path, env_keys or {})
        if var:
            line = f"env {var}: {line}"
        problems.append(f"{line} — {hint}" if hint else line)
    return problems


def _env_var_for(path: str, env_keys: Mapping[str, str]) -> str | None:
    dotted = path.replace("[", ".").replace("]", "")
    for key, var in env_keys.items():
        if dotted == key or dotted.startswith(key + "."):
            return var
    return None


def _parse_env_value(raw: str) -> Any:
    """An override is read as a TOML value when it is one (numbers, booleans, arrays), else as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError, an integer over 4,300 digits, nesting too deep
        return raw


#: tables whose keys are symbols (upper case), not config keys (lower case)
_SYMBOL_KEYED = ("symbol_map", "pip_overrides")


def _env_key(node: dict[str, Any], part: str, parent: str | None) -> str:
    """The key an override's part addresses: an existing key in any case, a symbol in upper case."""
    for key in node:
        if isinstance(key, str) and key.lower() == part.lower():
            return key
    return part.upper() if parent in _SYMBOL_KEYED else part.lower()


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str], applied: dict[str, str] | None = None
) -> list[str]:
    """``HEDGE_AGENT__TRAILING__INTERVAL_MS=50`` sets ``trailing.interval_ms``; a list index is a number
    (``HEDGE_AGENT__TERMINALS__0__LOGIN``); symbol keys keep their case
    (``HEDGE_AGENT__TERMINALS__0__SYMBOL_MAP__USDJPY=USDJPY.raw``). Returns problems for overrides that
    address nothing; ``applied`` receives each set key path (dotted, list indexes as numbers) -> variable."""
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        raw_parts = name[len(ENV_PREFIX) :].split("__")
        if not all(raw_parts):
            problems.append(f"env {name}: empty key part — use HEDGE_AGENT__SECTION__KEY")
            continue
        parts: list[str] = []
        node: Any = data
        ok = True
        for raw in raw_parts[:-1]:
            if isinstance(node, list):
                if not (raw.isascii() and raw.isdigit()) or int(raw) >= len(node):
                    problems.append(
                        f"env {name}: {'.'.join([*parts, raw.lower()])} is not an existing list index"
                    )
                    ok = False
                    break
                parts.append(raw)
                node = node[int(raw)]
            elif isinstance(node, dict):
                key = _env_key(node, raw, parts[-1] if parts else None)
                parts.append(key)
                node = node.setdefault(key, {})
            else:
                problems.append(f"env {name}: {'.'.join(parts)} is not a section")
                ok = False
                break
        if not ok:
            continue
        if not isinstance(node, dict):
            problems.append(f"env {name}: {'.'.join(parts)} is not a section")
            continue
        key = _env_key(node, raw_parts[-1], parts[-1] if parts else None)
        node[key] = _parse_env_value(environ[name])
        if applied is not None:
            applied[".".join([*parts, key])] = name
    return problems


_BACKSLASH_HINT = (
    "a Windows path in double quotes needs its backslashes doubled: write it with forward slashes "
    '("C:/Program Files/MetaTrader 5/terminal64.exe") or in single quotes '
    "('C:\\Program Files\\MetaTrader 5\\terminal64.exe')"
)


def _backslash_on_error_line(text: str, message: str) -> bool:
    m = re.search(r"at line (\d+)", message)
    if m is None:
        return "escape" in message.lower()
    lines = text.splitlines()
    n = int(m.group(1))
    return 0 < n <= len(lines) and "\\" in lines[n - 1]


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML table, or a ConfigError naming the file and what to do."""
    name = str(path)
    text = ""
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {name}", [f"{name} does not exist — check the path"]
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{name} is a folder, not a config file",
            [f"{name} is a folder — give the path of the .toml file"],
        ) from None
    except PermissionError:
        raise ConfigError(
            f"cannot read {name}", [f"{name}: permission denied — check the file's permissions"]
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read {name}", [f"{name}: {e.strerror or e} — check the path"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{name} is not UTF-8 text", [f"{name}: byte {e.start} is not UTF-8 — save the file as UTF-8"]
        ) from None
    except tomllib.TOMLDecodeError as e:
        hint = _BACKSLASH_HINT if _backslash_on_error_line(text, str(e)) else "fix the TOML syntax"
        raise ConfigError(f"{name} is not valid TOML", [f"{name}: {e} — {hint}"]) from None
    except (ValueError, RecursionError) as e:  # tomllib: an integer over 4,300 digits; nesting too deep
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ConfigError(f"{name} is not usable TOML", [f"{name}: {why} — fix the value"]) from None


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    path = Path(path)
    data = read_toml(path)
    applied: dict[str, str] = {}
    problems = apply_env_overrides(data, os.environ if environ is None else environ, applied)
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as e:
        problems += format_problems(e, applied)
        config = None
    if problems or config is None:
        raise ConfigError(f"{path}: {len(problems)} problem(s)", problems)
    return config


def summary(config: AgentConfig) -> list[str]:
    """One screen: what the agent will do with this config."""
    lines = [
        f"user       {config.cognito.username} (pool {config.cognito.user_pool_id}, {config.cognito.region})",
        f"appsync    {config.appsync.graphql_url}",
        f"realtime   {config.appsync.effective_realtime_url}",
        f"trailing   every {config.trailing.interval_ms} ms, quotes stale after {config.trailing.stale_quote_s:g} s",
        f"sync       accounts every {config.account_sync_s:g} s",
        f"risk       max {config.risk.max_volume_per_order:g} lots/order, {config.risk.max_open_positions} open "
        f"positions and {config.risk.max_orders_per_minute} orders/min per terminal",
        f"terminals  {len(config.terminals)}:",
    ]
    for t in config.terminals:
        where = {
            "mt5": f"path {t.path}",
            "mt4": f"bridge 127.0.0.1:{t.bridge_port}",
            "simulated": f"seed {t.seed}",
        }
        mapped = ", ".join(f"{k.value}->{v}" for k, v in t.symbol_map.items()) or "no symbol map"
        lines.append(
            f"  {t.name:<12} {t.kind.value:<9} account {t.account_id} login {t.login} {where[t.kind.value]}; {mapped}"
        )
    return lines
