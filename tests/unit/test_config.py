import subprocess
import sys
from pathlib import Path

import pytest

from hedge_agent.config import derive_realtime_url, load_config
from hedge_agent.domain.enums import Symbol
from hedge_agent.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "hedge_agent.example.toml"

MINIMAL = (Path(__file__).parents[1] / "data" / "minimal.toml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def problems_of(path: Path, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ or {})
    return info.value.problems


def test_the_example_config_is_valid():
    config = load_config(EXAMPLE, {})
    assert config.trailing.interval_ms == 100 and config.account_sync_s == 30
    assert [t.kind.value for t in config.terminals] == ["mt5", "mt4"]


def test_defaults_fill_optional_sections(tmp_path):
    config = load_config(write(tmp_path, MINIMAL), {})
    assert config.risk.max_orders_per_minute == 60 and config.trailing.stale_quote_s == 5.0


def test_an_unknown_section_is_named(tmp_path):
    problems = problems_of(write(tmp_path, MINIMAL + "\n[trailling]\ninterval_ms = 5\n"))
    assert problems == [
        "trailling: unknown key — check its spelling and section (see config/hedge_agent.example.toml)"
    ]


def test_an_unknown_key_inside_a_terminal_is_named_with_its_index(tmp_path):
    problems = problems_of(write(tmp_path, MINIMAL + "magic = 5\n"))
    assert any(p.startswith("terminals[0].magic: unknown key") for p in problems)


def test_a_wrong_type_names_the_key_the_value_and_a_hint(tmp_path):
    text = MINIMAL.replace("login = 1", 'login = "one"')
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.startswith("terminals[0].login:") and "'one'" in problem and "whole number" in problem


def test_a_missing_section_is_reported(tmp_path):
    text = MINIMAL.replace(
        '[appsync]\ngraphql_url = "https://abc.appsync-api.eu-west-1.amazonaws.com/graphql"\n', ""
    )
    assert problems_of(write(tmp_path, text)) == ["appsync: missing — required: add it"]


def test_every_problem_is_reported_at_once(tmp_path):
    text = MINIMAL.replace('kind = "simulated"', 'kind = "mt6"').replace("login = 1", "login = -5")
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2 and any("kind" in p and "'mt6'" in p for p in problems)


def test_an_mt4_terminal_without_bridge_port_gets_a_hint(tmp_path):
    problems = problems_of(write(tmp_path, MINIMAL.replace('"simulated"', '"mt4"')))
    assert len(problems) == 1 and "bridge_port" in problems[0] and problems[0].startswith("terminals[0]")


def test_env_overrides_set_nested_keys_and_list_items(tmp_path):
    env = {
        "HEDGE_AGENT__TRAILING__INTERVAL_MS": "50",
        "HEDGE_AGENT__TERMINALS__0__LOGIN": "42",
        "HEDGE_AGENT__LOG_LEVEL": "DEBUG",
        "HEDGE_AGENT__COGNITO__USERNAME": "bob",
    }
    config = load_config(write(tmp_path, MINIMAL), env)
    assert config.trailing.interval_ms == 50 and config.terminals[0].login == 42
    assert config.log_level == "DEBUG" and config.cognito.username == "bob"


def test_a_bad_env_override_is_reported_by_variable_name(tmp_path):
    problems = problems_of(write(tmp_path, MINIMAL), {"HEDGE_AGENT__TERMINALS__3__LOGIN": "1"})
    assert problems == ["env HEDGE_AGENT__TERMINALS__3__LOGIN: terminals.3 is not an existing list index"]
    problems = problems_of(write(tmp_path, MINIMAL), {"HEDGE_AGENT__TRAILING__INTERVAL_MS": "fast"})
    # blamed on the variable the user set, not on a file key they never wrote (issue 14, point 7)
    assert problems[0].startswith("env HEDGE_AGENT__TRAILING__INTERVAL_MS: trailing.interval_ms:")
    assert "'fast'" in problems[0]


def test_invalid_toml_is_a_config_error(tmp_path):
    assert "fix the TOML syntax" in problems_of(write(tmp_path, "[cognito\n"))[0]


def test_duplicate_accounts_are_refused(tmp_path):
    text = MINIMAL + MINIMAL.split("[appsync]")[1].split("\n", 2)[2].replace('name = "sim"', 'name = "sim2"')
    problems = problems_of(write(tmp_path, text))
    assert any("account_id" in p for p in problems)


@pytest.mark.parametrize(
    ("graphql", "realtime"),
    [
        (
            "https://x.appsync-api.r.amazonaws.com/graphql",
            "wss://x.appsync-realtime-api.r.amazonaws.com/graphql",
        ),
        ("http://127.0.0.1:8080/graphql", "ws://127.0.0.1:8080/graphql/realtime"),
    ],
)
def test_realtime_url_is_derived_as_appsync_does(graphql, realtime):
    assert derive_realtime_url(graphql) == realtime


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hedge_agent", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_prints_a_summary_and_exits_0():
    r = run_cli("check-config", str(EXAMPLE))
    assert r.returncode == 0 and "mt5-main" in r.stdout and "bridge 127.0.0.1:17001" in r.stdout


def test_check_config_exits_2_naming_an_unknown_section(tmp_path):
    r = run_cli("check-config", str(write(tmp_path, MINIMAL + "\n[extra]\nx = 1\n")))
    assert r.returncode == 2 and "extra: unknown key" in r.stderr


def test_version_prints_the_package_version():
    from hedge_agent import __version__

    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"hedge-agent {__version__}"


# -- issue 14, point 7: config gaps ---------------------------------------------------------------------


def with_terminal_lines(extra: str) -> str:
    return MINIMAL.rstrip("\n") + "\n" + extra + "\n"


def test_two_symbols_mapped_to_one_broker_symbol_are_refused(tmp_path):
    text = with_terminal_lines('symbol_map = { USDJPY = "EURUSD", EURUSD = "EURUSD" }')
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.startswith("terminals[0].symbol_map:") and "USDJPY and EURUSD" in problem
    assert "(got" not in problem


def test_an_empty_broker_symbol_is_refused(tmp_path):
    (problem,) = problems_of(write(tmp_path, with_terminal_lines('symbol_map = { EURUSD = "" }')))
    assert "symbol_map.EURUSD is empty" in problem and "(got" not in problem


def test_two_terminals_on_one_login_and_server_are_refused(tmp_path):
    one = '[[terminals]]\nname = "{n}"\nkind = "mt4"\naccount_id = "{a}"\nlogin = 7\nserver = "S"\nbridge_port = {p}\n'
    head = MINIMAL.split("[[terminals]]")[0]
    text = head + one.format(n="a", a="acc-a", p=18001) + one.format(n="b", a="acc-b", p=18002)
    (problem,) = problems_of(write(tmp_path, text))
    assert "'a' and 'b' are both login 7 on server 'S'" in problem and problem.startswith("top level")


@pytest.mark.parametrize("pasted", ["C:\\Program Files\\MT4\\x.token", "C:\\Users\\me\\x.token"])
def test_a_pasted_windows_path_gets_a_hint(tmp_path, pasted):
    text = MINIMAL.replace('kind = "simulated"', f'kind = "simulated"\ntoken_file = "{pasted}"')
    (problem,) = problems_of(write(tmp_path, text))
    assert "forward slashes" in problem and "<file>" not in problem
    assert problem.startswith(str(tmp_path / "c.toml"))


def test_log_level_is_case_insensitive(tmp_path):
    config = load_config(write(tmp_path, 'log_level = "debug"\n' + MINIMAL), {})
    assert config.log_level == "DEBUG"


def test_symbol_map_keys_can_be_overridden_from_the_environment(tmp_path):
    env = {"HEDGE_AGENT__TERMINALS__0__SYMBOL_MAP__USDJPY": "USDJPY.raw"}
    config = load_config(write(tmp_path, MINIMAL), env)
    assert config.terminals[0].symbol_map == {Symbol.USDJPY: "USDJPY.raw"}


def test_a_table_value_is_not_shown_as_its_python_type(tmp_path):
    text = MINIMAL.replace('kind = "simulated"', 'kind = "simulated"\nlogin_x = 1').replace(
        "login = 1", "login = { a = 1 }"
    )
    problems = problems_of(write(tmp_path, text))
    assert problems and not any("(got dict)" in p or "<file>" in p for p in problems)
    assert any("terminals[0].login" in p and "a table" in p for p in problems)


def test_a_folder_given_as_config_is_a_config_error(tmp_path):
    (problem,) = problems_of(tmp_path)
    assert "is a folder" in problem and "<file>" not in problem


def test_the_json_schema_is_up_to_date():
    from hedge_agent.config_tools import SCHEMA_FILE, schema_text

    committed = (Path(__file__).parents[2] / SCHEMA_FILE).read_text()
    assert committed == schema_text(), "run: python -m hedge_agent.config_tools"


def test_the_starter_config_is_valid_and_commented(tmp_path):
    r = run_cli("init", str(tmp_path / "my.toml"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "my.toml").read_text()
    assert text.count("#") > 10 and "CHANGE-ME" in text
    assert load_config(tmp_path / "my.toml", {}).terminals[0].kind.value == "mt5"
    again = run_cli("init", str(tmp_path / "my.toml"))
    assert again.returncode == 2 and "exists" in again.stderr


def test_show_config_names_the_source_of_each_value(tmp_path):
    import os

    path = write(tmp_path, MINIMAL)
    r = subprocess.run(
        [sys.executable, "-m", "hedge_agent", "show-config", str(path)], capture_output=True, text=True,
        timeout=60, env={**os.environ, "HEDGE_AGENT__TRAILING__INTERVAL_MS": "50"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(
        ln.startswith("trailing.interval_ms = 50") and "(env HEDGE_AGENT__TRAILING__INTERVAL_MS)" in ln
        for ln in lines
    )
    assert any(ln.startswith("terminals.0.login = 1") and "(file)" in ln for ln in lines)
    assert any(ln.startswith("risk.max_open_positions = 100") and "(default)" in ln for ln in lines)


def test_protective_stop_pips_defaults_to_off_and_takes_pips(tmp_path):
    assert load_config(write(tmp_path, MINIMAL), {}).terminals[0].protective_stop_pips == 0
    config = load_config(write(tmp_path, with_terminal_lines("protective_stop_pips = 25.5")), {})
    assert config.terminals[0].protective_stop_pips == 25.5


@pytest.mark.parametrize("value", ["-5", "nan", "inf"])
def test_a_negative_or_non_finite_protective_stop_is_refused_by_name(tmp_path, value):
    (problem,) = problems_of(write(tmp_path, with_terminal_lines(f"protective_stop_pips = {value}")))
    assert problem.startswith("terminals[0].protective_stop_pips:") and "0 (no broker-side stop)" in problem
