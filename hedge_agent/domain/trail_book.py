"""All trailed positions of this PC, grouped by symbol, driven by quotes. Pure: no clock, no I/O.

The monitor calls :meth:`on_quote` on every tick and :meth:`sweep` on the 100 ms cadence; both return the
fires and record which states changed so the caller can persist exactly those (``take_changed``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .enums import Symbol
from .trailing import Fire, Quote, TrailState, step


class TrailBook:
    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self._by_symbol: dict[Symbol, dict[str, TrailState]] = {}
        self._symbol_of: dict[str, Symbol] = {}
        self._last_quote: dict[Symbol, Quote] = {}
        self._changed: dict[str, TrailState] = {}

    def __len__(self) -> int:
        return len(self._symbol_of)

    def __contains__(self, position_id: str) -> bool:
        return position_id in self._symbol_of

    def get(self, position_id: str) -> TrailState | None:
        sym = self._symbol_of.get(position_id)
        return None if sym is None else self._by_symbol[sym].get(position_id)

    def states(self) -> Iterable[TrailState]:
        for group in self._by_symbol.values():
            yield from group.values()

    def symbols(self) -> set[Symbol]:
        return {s for s, g in self._by_symbol.items() if g}

    def last_quote(self, symbol: Symbol) -> Quote | None:
        return self._last_quote.get(symbol)

    def add(self, state: TrailState) -> None:
        """Start (or resume, with a persisted state) trailing a position. A fired state is kept so it
        never fires again, until the position is removed."""
        self.remove(state.position_id)
        self._by_symbol.setdefault(state.symbol, {})[state.position_id] = state
        self._symbol_of[state.position_id] = state.symbol

    def remove(self, position_id: str) -> TrailState | None:
        sym = self._symbol_of.pop(position_id, None)
        self._changed.pop(position_id, None)
        return None if sym is None else self._by_symbol[sym].pop(position_id, None)

    def _evaluate(self, group: dict[str, TrailState], quote: Quote, now: float, fires: list[Fire]) -> None:
        stale = self.stale_after
        changed = self._changed
        for pid, state in group.items():
            new, fire = step(state, quote, now, stale)
            if new is not state:
                group[pid] = new
                changed[pid] = new
            if fire is not None:
                fires.append(fire)

    def on_quote(self, quote: Quote, now: float) -> list[Fire]:
        self._last_quote[quote.symbol] = quote
        fires: list[Fire] = []
        group = self._by_symbol.get(quote.symbol)
        if group:
            self._evaluate(group, quote, now, fires)
        return fires

    def sweep(self, now: float) -> list[Fire]:
        """Re-evaluate every position against its symbol's latest quote (catches anything a tick handler
        missed, and lets staleness rules see the clock)."""
        fires: list[Fire] = []
        for sym, group in self._by_symbol.items():
            quote = self._last_quote.get(sym)
            if quote is not None and group:
                self._evaluate(group, quote, now, fires)
        return fires

    def take_changed(self) -> list[TrailState]:
        out = list(self._changed.values())
        self._changed.clear()
        return out
