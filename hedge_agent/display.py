"""How prices, lots and times read for a person: a price has its symbol's digits, a time is local."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hedge_agent.domain.symbols import SymbolSpec


def price_digits(spec: SymbolSpec) -> int:
    """Digits after the decimal point of the symbol's point (USDJPY 0.001 -> 3)."""
    exponent = spec.point.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fmt_price(spec: SymbolSpec, price: float | Decimal | None) -> str:
    """``150.1`` on USDJPY -> ``150.100``; None -> ``-``."""
    if price is None:
        return "-"
    points = spec.to_points(price)
    return f"{spec.point * points:.{price_digits(spec)}f}"


def fmt_points(spec: SymbolSpec, points: int | None) -> str:
    return "-" if points is None else f"{spec.point * points:.{price_digits(spec)}f}"


def fmt_pips(spec: SymbolSpec, points: int) -> str:
    """Points as pips with one decimal: 40 points of USDJPY (pip 0.01, point 0.001) -> ``4.0``."""
    return f"{Decimal(points) * spec.point / spec.pip:.1f}"


def fmt_lots(volume: float) -> str:
    return f"{volume:.2f}"


def local_time(at: datetime) -> str:
    """An aware UTC time as local wall time with its offset: ``2026-12-02 09:51:03 +0900``."""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
