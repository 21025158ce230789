"""The one classification table of broker codes (design §3)."""

from __future__ import annotations

import pytest

from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.base import Rejected, Unknown
from hedge_agent.terminals.retcodes import Outcome


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (10004, Outcome.RETRYABLE),  # requote
        (10020, Outcome.RETRYABLE),  # price changed
        (10021, Outcome.RETRYABLE),  # off quotes
        (10031, Outcome.RETRYABLE),  # no connection
        (10018, Outcome.PERMANENT),  # market closed
        (10019, Outcome.PERMANENT),  # no money
        (10014, Outcome.PERMANENT),  # invalid volume
        (10017, Outcome.PERMANENT),  # trade disabled
        (10027, Outcome.PERMANENT),  # autotrading disabled by the client
        (10030, Outcome.PERMANENT),  # unsupported filling (after the fallback)
        (10012, Outcome.UNKNOWN),  # timeout
        (10009, Outcome.OK),
    ],
)
def test_mt5_codes_carry_the_policy_the_design_gives_them(code, outcome):
    assert rc.mt5(code).outcome is outcome


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (0, Outcome.OK),
        (128, Outcome.UNKNOWN),
        (135, Outcome.RETRYABLE),
        (136, Outcome.RETRYABLE),
        (138, Outcome.RETRYABLE),
        (146, Outcome.RETRYABLE),
        (4, Outcome.RETRYABLE),
        (6, Outcome.RETRYABLE),
        (132, Outcome.PERMANENT),
        (133, Outcome.PERMANENT),
        (134, Outcome.PERMANENT),
        (131, Outcome.PERMANENT),
        (4109, Outcome.PERMANENT),
        (4110, Outcome.PERMANENT),
        (4111, Outcome.PERMANENT),
    ],
)
def test_mt4_codes_carry_the_same_policy(code, outcome):
    assert rc.mt4(code).outcome is outcome


def test_an_unlisted_code_is_permanent_and_says_which_code_it_was():
    info = rc.mt5(12345)
    assert info.outcome is Outcome.PERMANENT and "12345" in info.reason
    assert rc.mt4(999).outcome is Outcome.PERMANENT


def test_a_rejection_reason_reads_well_and_keeps_the_brokers_comment_and_code():
    res = rc.mt5(10019).result("No money")
    assert res == Rejected(10019, "not enough money (No money) [code 10019]", retryable=False)
    assert rc.mt5(10019).result("not enough money").reason == "not enough money [code 10019]"
    res = rc.mt5(10004).result("Requote 1.1/1.2")
    assert (
        isinstance(res, Rejected) and res.retryable and res.reason == "requote (Requote 1.1/1.2) [code 10004]"
    )


def test_an_unknown_outcome_becomes_an_unknown_result():
    assert rc.mt4(128).result() == Unknown("trade timeout [code 128]", 128)


def test_a_success_code_is_not_a_rejection():
    with pytest.raises(ValueError, match="success"):
        rc.mt5(10009).result()


def test_every_table_entry_is_keyed_by_its_own_code():
    for table in (rc.MT5, rc.MT4):
        assert all(code == info.code and info.reason for code, info in table.items())


def test_invalid_stops_is_permanent_on_both_platforms_and_names_the_protective_stop_setting():
    # the agent sends a stop-loss only as the protective stop: the reason tells the user what to change
    for info in (rc.mt5(rc.INVALID_STOPS), rc.mt4(130)):
        assert info.outcome is Outcome.PERMANENT
        rejected = info.result("Invalid stops")
        assert isinstance(rejected, Rejected) and not rejected.retryable
        assert "protective_stop_pips" in rejected.reason and f"[code {info.code}]" in rejected.reason
