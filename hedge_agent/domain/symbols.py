"""Symbols: pip and point sizes, broker symbol names, and prices on the point grid.

Prices are compared as integer points, never as raw floats, so that ``peak - W`` is exactly the quote
that should fire (design §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from .enums import Symbol

#: pip size per symbol (design §2); overridable per terminal in config
DEFAULT_PIP: Mapping[Symbol, Decimal] = {
    Symbol.USDJPY: Decimal("0.01"),
    Symbol.EURUSD: Decimal("0.0001"),
    Symbol.EURGBP: Decimal("0.0001"),
    Symbol.XAUUSD: Decimal("0.1"),
}

#: quote granularity (the usual 5/3-digit pricing; gold in cents)
DEFAULT_POINT: Mapping[Symbol, Decimal] = {
    Symbol.USDJPY: Decimal("0.001"),
    Symbol.EURUSD: Decimal("0.00001"),
    Symbol.EURGBP: Decimal("0.00001"),
    Symbol.XAUUSD: Decimal("0.01"),
}


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: Symbol
    pip: Decimal
    point: Decimal

    def to_points(self, price: float | Decimal | str) -> int:
        """Price -> integer points, rounded half-even to the nearest point."""
        d = price if isinstance(price, Decimal) else Decimal(str(price))
        return int((d / self.point).to_integral_value(rounding=ROUND_HALF_EVEN))

    def to_price(self, points: int) -> Decimal:
        return (self.point * points).normalize()

    def pips_to_points(self, pips: float | Decimal) -> int:
        d = pips if isinstance(pips, Decimal) else Decimal(str(pips))
        return int((d * self.pip / self.point).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class SymbolTable:
    """Per-terminal view: pip overrides and the broker's names (``USDJPY`` -> ``USDJPY.raw``)."""

    pip_overrides: Mapping[Symbol, Decimal] = field(default_factory=dict)
    broker_names: Mapping[Symbol, str] = field(default_factory=dict)

    def spec(self, symbol: Symbol) -> SymbolSpec:
        return SymbolSpec(symbol, self.pip_overrides.get(symbol, DEFAULT_PIP[symbol]), DEFAULT_POINT[symbol])

    def broker_name(self, symbol: Symbol) -> str:
        return self.broker_names.get(symbol, symbol.value)

    def from_broker(self, name: str) -> Symbol | None:
        """Canonical symbol for a broker name, or None for symbols we do not trade."""
        for sym, broker in self.broker_names.items():
            if broker == name:
                return sym
        try:
            return Symbol(name)
        except ValueError:
            return None
