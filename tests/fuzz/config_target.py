"""Fuzz target: ``load_config`` on random TOML files and random ``HEDGE_AGENT__*`` overrides.

Files are configs shaped like the real one with one to three edits (written with tomli_w), damaged TOML
text, deep nesting, random text and bytes that are not UTF-8. Overrides address real keys, list indexes
that do not exist, odd Unicode digits, and carry values that are TOML, not TOML, or nested too deep.

Promise checked: an AgentConfig (whose summary and symbol tables can be built), or a ConfigError whose
problems are non-empty strings that each start with a key path (the file's own path, ``top level``,
``env NAME`` or a dotted path whose first key is in the document or the schema). Nothing else escapes.
"""

from __future__ import annotations

import atexit
import shutil
import tomllib
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import tomli_w

from hedge_agent.config import ENV_PREFIX, TOP_LEVEL, AgentConfig, load_config, summary
from hedge_agent.domain.enums import Symbol
from hedge_agent.errors import ConfigError

from .common import Gen, Outcome, Target, expect, scratch_dir

_KINDS = ("mt5", "mt4", "simulated")
_KEY_WORDS = (
    "cognito", "appsync", "terminals", "trailing", "risk", "account_sync_s", "log_level", "journal_path",
    "region", "user_pool_id", "client_id", "username", "graphql_url", "realtime_url", "name", "kind",
    "account_id", "login", "bridge_port", "symbol_map", "pip_overrides", "magic_base", "interval_ms",
    "stale_quote_s", "max_volume_per_order", "0", "1", "7", "²", "٣", "", "x",
)  # fmt: skip


def _terminal(g: Gen, i: int) -> dict[str, Any]:
    kind = g.pick(_KINDS)
    t: dict[str, Any] = {
        "name": f"t{i}",
        "kind": kind,
        "account_id": f"acc-{i}",
        "login": g.between(0, 10**8),
        "server": g.text(16),
    }
    if kind == "mt5":
        t["path"] = "C:/Program Files/MetaTrader 5/terminal64.exe"
    if kind == "mt4":
        t["bridge_port"] = 18_000 + i
        t["token_file"] = f"t{i}.token"
    if g.chance(0.5):
        t["symbol_map"] = {"USDJPY": "USDJPY.raw", "XAUUSD": "XAUUSDm"}
    if g.chance(0.3):
        t["pip_overrides"] = {"XAUUSD": g.pick((0.1, 0.01, 1))}
    if g.chance(0.3):
        t["deviation_points"] = g.between(0, 10_000)
    return t


def valid_config(g: Gen) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "log_level": g.pick(("DEBUG", "INFO", "WARNING", "ERROR")),
        "account_sync_s": g.pick((30, 1, 3600, 2.5)),
        "cognito": {
            "region": "ap-northeast-1",
            "user_pool_id": "ap-northeast-1_AbCdEfGhI",
            "client_id": "1example23456789abcdefghij",
            "username": g.pick(("trader@example.com", g.text(12) or "u")),
        },
        "appsync": {"graphql_url": "https://abc.appsync-api.ap-northeast-1.amazonaws.com/graphql"},
        "terminals": [_terminal(g, i) for i in range(g.between(1, 3))],
    }
    if g.chance(0.5):
        doc["trailing"] = {"interval_ms": g.between(10, 5000), "stale_quote_s": g.pick((5.0, 0.5, 3600))}
    if g.chance(0.5):
        doc["risk"] = {"max_volume_per_order": 10.0, "max_open_positions": 100, "max_orders_per_minute": 60}
    if g.chance(0.3):
        doc["journal_path"] = "journal.sqlite3"
    return doc


def _tomlable(value: Any) -> Any:
    """TOML has no null and only string keys: drop the one, stringify the other (iteratively deep)."""
    if isinstance(value, dict):
        return {str(k): _tomlable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_tomlable(v) for v in value if v is not None]
    return value


def _toml_junk(g: Gen) -> Any:
    return g.json() if g.chance(0.9) else g.long_text(20_000)  # TOML reads and writes strings char by char


def _file(g: Gen) -> bytes:
    roll = g.between(0, 19)
    valid = valid_config(g)
    if roll <= 2:
        text = tomli_w.dumps(valid)
    elif roll <= 12:
        doc = g.mutate(valid, lambda: _toml_junk(g))
        doc = _tomlable(doc if isinstance(doc, dict) else {"value": doc})
        text = tomli_w.dumps(doc)
    elif roll <= 14:
        text = g.damage(tomli_w.dumps(valid))
    elif roll == 15:
        depth = g.between(1, 100_000)
        text = g.pick(("a = " + "[" * depth + "]" * depth, "a = " + "{b = " * depth + "1" + "}" * depth))
    elif roll == 16:
        return bytes(g.r.getrandbits(8) for _ in range(g.between(0, 200)))
    elif roll == 17:
        return tomli_w.dumps(valid).encode("utf-16", "surrogatepass")
    else:
        text = g.pick((g.text(60), "[[terminals]]\n" * g.between(1, 50), "a.b.c.d = 1\na.b = 2", "=\n"))
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8


def _env(g: Gen) -> dict[str, str]:
    env: dict[str, str] = {}
    for _ in range(g.between(0, 3)):
        parts = [g.pick(_KEY_WORDS) if g.chance(0.8) else g.text(6) for _ in range(g.between(1, 4))]
        name = ENV_PREFIX + "__".join(p.upper() if g.chance(0.7) else p for p in parts)
        if g.chance(0.1):
            name = g.pick(("HEDGE_AGENT_", "PATH", "HEDGE_AGENT__", "hedge_agent__log_level"))
        env[name] = g.pick(
            (
                str(g.integer()),
                g.text(20),
                "true",
                '"quoted"',
                "[1, 2",
                "[" * g.between(1, 50_000),
                "1\nextra = 2",
                "INFO",
                "nan",
                "{ USDJPY = 0 }",
            )
        )
    return env


Case = tuple[bytes, dict[str, str]]


def generate(g: Gen) -> Case:
    return _file(g), _env(g)


@cache
def _config_path() -> Path:
    root = scratch_dir()
    atexit.register(shutil.rmtree, root, True)
    return Path(root) / "hedge_agent.toml"


def _top_keys(data: bytes, environ: dict[str, str]) -> set[str]:
    """Keys a problem may start with: the schema's, the document's, and what the overrides add."""
    keys = set(AgentConfig.model_fields)
    try:
        keys |= set(tomllib.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        pass
    keys |= {n[len(ENV_PREFIX) :].split("__")[0].lower() for n in environ if n.startswith(ENV_PREFIX)}
    return keys


def _starts_with_key_path(problem: str, data: bytes, environ: dict[str, str]) -> bool:
    if problem.startswith((f"{_config_path()}:", f"{TOP_LEVEL}:", f"env {ENV_PREFIX}")):
        return True
    keys = _top_keys(data, environ)
    return any(problem.startswith(k) and problem[len(k) : len(k) + 1] in (".", "[", ":") for k in keys if k)


def check(case: Case) -> Outcome:
    data, environ = case
    path = _config_path()
    path.write_bytes(data)
    try:
        config = load_config(path, environ)
    except ConfigError as e:
        expect(bool(str(e)), "a ConfigError without a message")
        expect(bool(e.problems), f"a ConfigError without problems: {e}")
        for problem in e.problems:
            expect(isinstance(problem, str) and bool(problem.strip()), f"an empty problem in {e.problems!r}")
            expect(
                _starts_with_key_path(problem, data, environ),
                f"a problem that names no key path: {problem!r}",
            )
        return "rejected"
    expect(all(isinstance(line, str) for line in summary(config)), "summary() is not lines of text")
    for terminal in config.terminals:  # what the engine derives from each terminal's section
        for symbol in Symbol:
            terminal.symbols.spec(symbol).pips_to_points(Decimal(10))
            terminal.symbols.broker_name(symbol)
    return "accepted"


TARGET: Target[Case] = Target("config", generate, check)
