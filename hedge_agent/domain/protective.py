"""The opt-in broker-side protective stop (``protective_stop_pips``): a stop-loss placed with the open
order, never moved by the trail, that protects a position while the agent is not running.

Pure arithmetic shared by every adapter: the caller turns pips into a price distance with the symbol's
pip size (:func:`stop_distance`), the adapter turns the distance into the stop price from the very price it
sends the open at (:func:`protective_stop_price`): below the ask of a BUY, above the bid of a SELL.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from .enums import Side, Symbol
from .symbols import SymbolTable


def stop_distance(pips: float, symbol: Symbol, symbol_table: SymbolTable) -> float | None:
    """``pips`` of ``symbol`` as a distance in price units (None: no protective stop, for 0)."""
    if pips < 0:
        raise ValueError(f"protective_stop_pips must be >= 0, got {pips}")
    if pips == 0:
        return None
    return float(Decimal(str(pips)) * symbol_table.spec(symbol).pip)


def protective_stop_price(side: Side, reference_price: float, distance: float, digits: int) -> float:
    """The stop-loss price ``distance`` away from ``reference_price`` (the ask a BUY opens at, the bid a
    SELL opens at), on the loss side, rounded half-even to ``digits`` decimals (the symbol's)."""
    if distance <= 0:
        raise ValueError(f"a protective stop needs a distance > 0, got {distance}")
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    ref, dist = Decimal(str(reference_price)), Decimal(str(distance))
    price = ref - dist if side is Side.BUY else ref + dist
    if price <= 0:
        raise ValueError(f"a protective stop {distance} below {reference_price} is not a price")
    return float(price.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN))


def digits_of(point: float | Decimal) -> int:
    """Decimals of a point size (0.001 -> 3)."""
    d = point if isinstance(point, Decimal) else Decimal(str(point))
    return max(0, -d.normalize().as_tuple().exponent)  # type: ignore[operator]
