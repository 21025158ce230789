"""The protective stop's arithmetic: pips to a price distance, and the stop price from the open's price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.protective import digits_of, protective_stop_price, stop_distance
from hedge_agent.domain.symbols import SymbolTable


@pytest.mark.parametrize(
    ("pips", "symbol", "distance"),
    [
        (20, Symbol.EURUSD, 0.0020),
        (1.5, Symbol.EURUSD, 0.00015),
        (30, Symbol.USDJPY, 0.30),
        (50, Symbol.XAUUSD, 5.0),
        (12.5, Symbol.EURGBP, 0.00125),
    ],
)
def test_stop_distance_is_pips_times_the_pip_size(pips, symbol, distance):
    assert stop_distance(pips, symbol, SymbolTable()) == distance


def test_stop_distance_uses_the_terminals_pip_override():
    table = SymbolTable(pip_overrides={Symbol.XAUUSD: Decimal("0.01")})
    assert stop_distance(50, Symbol.XAUUSD, table) == 0.5


def test_zero_pips_is_no_stop_and_negative_pips_are_refused_by_name():
    assert stop_distance(0, Symbol.EURUSD, SymbolTable()) is None
    with pytest.raises(ValueError, match="protective_stop_pips"):
        stop_distance(-1, Symbol.EURUSD, SymbolTable())


@pytest.mark.parametrize(
    ("side", "reference", "distance", "digits", "stop"),
    [
        (Side.BUY, 1.10012, 0.0020, 5, 1.09812),  # below the ask of a buy
        (Side.SELL, 1.10000, 0.0020, 5, 1.10200),  # above the bid of a sell
        (Side.SELL, 150.000, 0.30, 3, 150.300),
        (Side.BUY, 2350.30, 5.0, 2, 2345.30),
        (Side.BUY, 1.1, 0.0001, 5, 1.0999),  # float noise (1.1 - 0.0001 = 1.0999000000000001) is rounded away
        (Side.BUY, 1.100125, 0.0020, 5, 1.09812),  # rounded half-even to the symbol's digits
        (Side.SELL, 1.100135, 0.0020, 5, 1.10214),
    ],
)
def test_the_stop_price_lies_the_distance_away_on_the_loss_side_on_the_symbols_digits(
    side, reference, distance, digits, stop
):
    got = protective_stop_price(side, reference, distance, digits)
    assert got == stop and repr(got) == repr(stop)


def test_a_stop_needs_a_positive_distance_and_a_positive_price():
    with pytest.raises(ValueError, match="distance"):
        protective_stop_price(Side.BUY, 1.1, 0, 5)
    with pytest.raises(ValueError, match="not a price"):
        protective_stop_price(Side.BUY, 1.1, 2.0, 5)


@pytest.mark.parametrize(
    ("point", "digits"), [(0.001, 3), (0.00001, 5), (0.01, 2), (Decimal("0.10"), 1), (1, 0)]
)
def test_digits_of_a_point(point, digits):
    assert digits_of(point) == digits
