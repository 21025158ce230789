"""Helpers for writing and reading a config: a commented starter (``hedge-agent init``), the resolved config
with where each value came from (``hedge-agent show-config``), and the JSON Schema editors use
(``config/hedge_agent.schema.json``, generated from the pydantic models: ``python -m hedge_agent.config_tools``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hedge_agent.config import AgentConfig, apply_env_overrides, format_problems, read_toml
from hedge_agent.errors import ConfigError

SCHEMA_FILE = Path("config") / "hedge_agent.schema.json"

STARTER = """\
# hedge-agent configuration, written by `hedge-agent init`. Replace every CHANGE-ME, then check it:
#   hedge-agent check-config THIS_FILE      (offline: the file itself)
#   hedge-agent check --config THIS_FILE    (online: sign-in, accounts, terminals)
# Every key can be overridden from the environment: HEDGE_AGENT__SECTION__KEY=value.
# Windows paths: write them with forward slashes, "C:/Program Files/...", or in 'single quotes'.

# DEBUG | INFO | WARNING | ERROR (any case)
log_level = "INFO"

[cognito]
# From your admin (or the Amplify outputs): the user pool of the backend.
region = "ap-northeast-1"                       # CHANGE-ME
user_pool_id = "ap-northeast-1_CHANGEME"        # CHANGE-ME
client_id = "CHANGE-ME"
# Your sign-in name; the password is asked once by `hedge-agent login`.
username = "CHANGE-ME@example.com"

[appsync]
graphql_url = "https://CHANGE-ME.appsync-api.ap-northeast-1.amazonaws.com/graphql"

# One [[terminals]] table per MetaTrader terminal on this PC, each bound to one cloud Account.
[[terminals]]
name = "mt5-main"                 # your name for it, shown in the tray and the logs
kind = "mt5"                      # mt5 | mt4 | simulated
account_id = "CHANGE-ME"          # the cloud Account id this terminal trades (Account.id in the web UI)
login = 0                         # CHANGE-ME: the trading account number
server = "CHANGE-ME"              # the broker server, as in the terminal's login dialog
path = "C:/Program Files/MetaTrader 5/terminal64.exe"
# Broker symbol names when they differ, e.g. { USDJPY = "USDJPY.raw", XAUUSD = "XAUUSDm" }
symbol_map = {}

# An MT4 terminal (the HedgeBridge EA connects to 127.0.0.1:bridge_port):
# [[terminals]]
# name = "mt4-hedge"
# kind = "mt4"
# account_id = "CHANGE-ME"
# login = 0
# server = "CHANGE-ME"
# bridge_port = 18765
"""


def config_schema() -> dict[str, Any]:
    schema = AgentConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hedge-agent configuration"
    return schema


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"


def resolved_lines(path: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """``key = value   (file | env VAR | default)`` for every key of the resolved config."""
    data = read_toml(path)
    from_file = _flatten(data)
    applied: dict[str, str] = {}
    problems = apply_env_overrides(data, os.environ if environ is None else environ, applied)
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as e:
        problems += format_problems(e, applied)
        raise ConfigError(f"{path}: {len(problems)} problem(s)", problems) from None
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s)", problems)
    lines = [f"# {path}, resolved (source of each value on the right)"]
    for key, value in _walk(config):
        source = f"env {applied[key]}" if key in applied else ("file" if key in from_file else "default")
        lines.append(f"{key} = {json.dumps(value, default=str)}".ljust(60) + f"  ({source})")
    return lines


def _flatten(data: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            keys.add(key)
            keys |= _flatten(v, key)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            keys |= _flatten(v, f"{prefix}.{i}")
    return keys


def _walk(model: BaseModel, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, BaseModel):
            out += _walk(value, key)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                out += _walk(item, f"{key}.{i}")
        elif isinstance(value, dict):
            if not value:
                out.append((key, {}))
            for k, v in value.items():
                out.append((f"{key}.{getattr(k, 'value', k)}", v))
        else:
            out.append((key, getattr(value, "value", value)))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hedge_agent.config_tools [PATH]``: (re)write the JSON Schema (default: config/...)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else SCHEMA_FILE
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
