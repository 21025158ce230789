"""Config files and HEDGE_AGENT__* overrides: an AgentConfig, or a ConfigError whose problems each start with
a key path; never anything else.

The fuzz test runs a few hundred seeded cases (bench/fuzz.py runs 10,000); the tests after it pin the
crashes the fuzzer found, one each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from hedge_agent.config import load_config
from hedge_agent.errors import ConfigError

from .common import FUZZ, SEEDS
from .config_target import TARGET, check

MINIMAL = (Path(__file__).parents[1] / "data" / "minimal.toml").read_bytes()


@FUZZ
@given(SEEDS)
def test_any_file_and_overrides_give_a_config_or_problems_that_each_name_a_key_path(seed: int) -> None:
    TARGET.check(TARGET.case(seed))


def problems(tmp_path: Path, text: bytes, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "hedge_agent.toml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as e:
        load_config(path, environ or {})
    return e.value.problems


def test_the_minimal_config_used_below_is_valid() -> None:
    assert check((MINIMAL, {})) == "accepted"


def test_a_file_that_is_not_utf8_is_one_problem_saying_where(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + b'\nlog_level = "\xff"\n') == [
        f"{tmp_path / 'hedge_agent.toml'}: byte {len(MINIMAL) + 14} is not UTF-8 — save the file as UTF-8"
    ]


@pytest.mark.parametrize("value", [b"[" * 5_000 + b"]" * 5_000, b"9" * 5_000])
def test_a_value_too_deep_or_too_long_for_tomllib_is_a_file_problem(tmp_path: Path, value: bytes) -> None:
    (problem,) = problems(tmp_path, MINIMAL + b"\naccount_sync_s = " + value + b"\n")
    assert problem.startswith(f"{tmp_path / 'hedge_agent.toml'}: ")  # the file, by its name


@pytest.mark.parametrize("value", ["[" * 5_000, "9" * 5_000])
def test_an_override_too_deep_or_too_long_for_tomllib_is_read_as_text(tmp_path: Path, value: str) -> None:
    (problem,) = problems(tmp_path, MINIMAL, {"HEDGE_AGENT__ACCOUNT_SYNC_S": value})
    assert problem.startswith("env HEDGE_AGENT__ACCOUNT_SYNC_S: account_sync_s: ")  # blamed on the variable


def test_an_override_index_in_other_digits_is_not_an_existing_list_index(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL, {"HEDGE_AGENT__TERMINALS__²__LOGIN": "5"}) == [
        "env HEDGE_AGENT__TERMINALS__²__LOGIN: terminals.² is not an existing list index"
    ]
