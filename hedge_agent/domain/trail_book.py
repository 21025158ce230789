"""All trailed positions of this PC, grouped by symbol, driven by quotes. Pure: no clock, no I/O.

The monitor calls :meth:`on_quote` on every tick and :meth:`sweep` on the 100 ms cadence; both return the
fires and record which states changed so the caller can persist exactly those (``take_changed``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .enums import Side, Symbol
from .trailing import Fire, Quote, TrailState, quiet_band, step

# per position: (state, lo, hi, is_buy, since) where (lo, hi) is the state's quiet band and ``since`` the
# time it was added: a quote received before that (the book keeps the last one per symbol) predates the
# position and must never arm it or move its peak
_Entry = tuple[TrailState, float, float, bool, float]


def _entry(state: TrailState, since: float) -> _Entry:
    lo, hi = quiet_band(state)
    return state, lo, hi, state.side is Side.BUY, since


class TrailBook:
    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self._by_symbol: dict[Symbol, dict[str, _Entry]] = {}
        self._symbol_of: dict[str, Symbol] = {}
        self._last_quote: dict[Symbol, Quote] = {}
        self._changed: dict[str, TrailState] = {}

    def __len__(self) -> int:
        return len(self._symbol_of)

    def __contains__(self, position_id: str) -> bool:
        return position_id in self._symbol_of

    def get(self, position_id: str) -> TrailState | None:
        sym = self._symbol_of.get(position_id)
        if sym is None:
            return None
        entry = self._by_symbol[sym].get(position_id)
        return None if entry is None else entry[0]

    def states(self) -> Iterable[TrailState]:
        for group in self._by_symbol.values():
            for entry in group.values():
                yield entry[0]

    def symbols(self) -> set[Symbol]:
        return {s for s, g in self._by_symbol.items() if g}

    def last_quote(self, symbol: Symbol) -> Quote | None:
        return self._last_quote.get(symbol)

    def add(self, state: TrailState, since: float = float("-inf")) -> None:
        """Start (or resume, with a persisted state) trailing a position; only quotes received at or after
        ``since`` (the caller's clock, as quote times) count. A fired state is kept so it never fires again,
        until the position is removed."""
        self.remove(state.position_id)
        self._by_symbol.setdefault(state.symbol, {})[state.position_id] = _entry(state, since)
        self._symbol_of[state.position_id] = state.symbol

    def remove(self, position_id: str) -> TrailState | None:
        sym = self._symbol_of.pop(position_id, None)
        self._changed.pop(position_id, None)
        entry = None if sym is None else self._by_symbol[sym].pop(position_id, None)
        return None if entry is None else entry[0]

    def _evaluate(self, group: dict[str, _Entry], quote: Quote, now: float, fires: list[Fire]) -> None:
        stale = self.stale_after
        changed = self._changed
        bid, ask = quote.bid, quote.ask
        for pid, (state, lo, hi, buy, since) in group.items():
            if lo < (bid if buy else ask) < hi or quote.time < since:
                continue  # step would return the state unchanged (or the quote predates it): skip the call
            new, fire = step(state, quote, now, stale)
            if new is not state:
                group[pid] = _entry(new, since)
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

    def replace(self, state: TrailState) -> None:
        """An edited state (``trailing.retune``) for a tracked position, keeping when it was added."""
        sym = self._symbol_of.get(state.position_id)
        entry = None if sym is None else self._by_symbol[sym].get(state.position_id)
        if entry is None:
            self.add(state)
            return
        self._by_symbol[state.symbol][state.position_id] = _entry(state, entry[4])
