"""The MT5 terminal's config key ``server_utc_offset_hours`` and the classification of ``last_error()`` codes
of an ``order_send`` that returned None (mql5.com, Python Integration, last_error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedge_agent.config import load_config
from hedge_agent.errors import ConfigError
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import Rejected, Unknown
from hedge_agent.terminals.factory import build_terminal
from hedge_agent.terminals.mt5 import Mt5Terminal

DATA = Path(__file__).resolve().parents[2] / "data"
MT5 = (DATA / "minimal.toml").read_text().replace('kind = "simulated"', 'kind = "mt5"') + (
    'path = "C:/MT5/terminal64.exe"\n'
)


def load(tmp_path: Path, extra: str) -> Mt5Terminal:
    p = tmp_path / "c.toml"
    p.write_text(MT5 + extra)
    terminal = build_terminal(load_config(p, {}).terminals[0])
    assert isinstance(terminal, Mt5Terminal)
    return terminal


def test_the_server_offset_defaults_to_auto_and_takes_hours(tmp_path: Path):
    assert load(tmp_path, "")._config.server_time_offset is None
    assert load(tmp_path, 'server_utc_offset_hours = "auto"\n')._config.server_time_offset is None
    assert load(tmp_path, "server_utc_offset_hours = 3\n")._config.server_time_offset == 10_800
    assert load(tmp_path, "server_utc_offset_hours = -3.5\n")._config.server_time_offset == -12_600


@pytest.mark.parametrize("value", ["15", "2.2", '"summer"'])
def test_a_bad_server_offset_is_named(tmp_path: Path, value: str):
    p = tmp_path / "c.toml"
    p.write_text(MT5 + f"server_utc_offset_hours = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(p, {})
    assert any("server_utc_offset_hours" in problem for problem in info.value.problems)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(-10001, True), (-10003, True), (-10004, True), (-2, False), (-8, False), (-6, False)],
)
def test_last_errors_meaning_the_request_never_left_are_rejections(code: int, retryable: bool):
    res = rc.mt5_last_error(code).result("order_send returned None")
    assert isinstance(res, Rejected) and res.retryable is retryable and res.code == code


@pytest.mark.parametrize("code", [1, -1, -10000, -10002, -10005, -99])
def test_last_errors_that_may_hide_an_executed_order_are_unknown(code: int):
    assert isinstance(rc.mt5_last_error(code).result(), Unknown)


def test_minus_8_says_how_to_fix_it():
    assert "external Python API" in rc.mt5_last_error(-8).reason
