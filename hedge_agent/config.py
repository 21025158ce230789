"""Configuration: pydantic models for the TOML file, ``HEDGE_AGENT__SECTION__KEY`` overrides, precise errors.

Validated once at start. Unknown keys are errors (a typo must not silently fall back to a default when real
money is involved). ``load_config`` raises :class:`ConfigError` whose ``problems`` each name the key path,
the bad value and a hint.
"""

from __future__ import annotations

import os
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
    #: MT4 only: the port of this terminal's bridge on 127.0.0.1, and the token file the EA reads
    bridge_port: int | None = Field(default=None, ge=1024, le=65535)
    token_file: str | None = None
    symbol_map: dict[Symbol, str] = Field(default_factory=dict)
    pip_overrides: dict[Symbol, Decimal] = Field(default_factory=dict)
    magic_base: int = Field(default=0, ge=0, lt=1 << 30)
    deviation_points: int = Field(default=20, ge=0, le=10_000)
    #: simulated only: seed of the price walk
    seed: int = 1

    @field_validator("pip_overrides")
    @classmethod
    def _positive_pips(cls, v: dict[Symbol, Decimal]) -> dict[Symbol, Decimal]:
        for sym, pip in v.items():
            if pip <= 0:
                raise ValueError(f"pip size of {sym.value} must be > 0")
        return v

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
    log_dir: Path | None = None
    log_level: LogLevel = "INFO"

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        for attr in ("name", "account_id", "bridge_port"):
            seen: set[object] = set()
            for t in self.terminals:
                value = getattr(t, attr)
                if value is not None and value in seen:
                    raise ValueError(f"two terminals share {attr} = {value!r}; each must be unique")
                seen.add(value)
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


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("after", "before"):
            continue  # pydantic validator frames, not keys
        else:
            out += ("." if out else "") + part
    return out or "<file>"


def format_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        path = _key_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        hint = _HINTS.get(err["type"], "")
        if err["type"] == "missing":
            line = f"{path}: missing"
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            line = f"{path}: {msg} (got {shown[:80]})"
        if err["type"] == "extra_forbidden":
            line = f"{path}: unknown key"
        problems.append(f"{line} — {hint}" if hint else line)
    return problems


def _parse_env_value(raw: str) -> Any:
    """An override is read as a TOML value when it is one (numbers, booleans, arrays), else as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError, an integer over 4,300 digits, nesting too deep
        return raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """``HEDGE_AGENT__TRAILING__INTERVAL_MS=50`` sets ``trailing.interval_ms``; a list index is a number
    (``HEDGE_AGENT__TERMINALS__0__LOGIN``). Returns problems for overrides that address nothing."""
    problems = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(parts):
            problems.append(f"env {name}: empty key part — use HEDGE_AGENT__SECTION__KEY")
            continue
        node: Any = data
        ok = True
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                if not (part.isascii() and part.isdigit()) or int(part) >= len(node):
                    problems.append(f"env {name}: {'.'.join(parts[: i + 1])} is not an existing list index")
                    ok = False
                    break
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                problems.append(f"env {name}: {'.'.join(parts[:i])} is not a section")
                ok = False
                break
        if not ok:
            continue
        if not isinstance(node, dict):
            problems.append(f"env {name}: {'.'.join(parts[:-1])} is not a section")
            continue
        node[parts[-1]] = _parse_env_value(environ[name])
    return problems


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}", [f"<file>: {path} does not exist"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path} is not UTF-8 text", [f"<file>: byte {e.start} is not UTF-8 — save the file as UTF-8"]
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML", [f"<file>: {e} — fix the TOML syntax"]) from None
    except (ValueError, RecursionError) as e:  # tomllib: an integer over 4,300 digits; nesting too deep
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise ConfigError(f"{path} is not usable TOML", [f"<file>: {why} — fix the value"]) from None
    problems = apply_env_overrides(data, os.environ if environ is None else environ)
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as e:
        problems += format_problems(e)
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
