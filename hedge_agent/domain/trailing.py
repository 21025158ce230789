"""The trailing-stop engine, exactly as design §4. Pure: state + quote -> new state + optional fire.

All prices are integer points on the symbol's grid. For a BUY the close-side price is the bid, for a SELL
the ask. With W = trailWidth x pip in points:

* armed once W in profit: BUY ``bid >= entry + W``; SELL ``ask <= entry - W``;
* once armed, ``peak`` is the best close-side price since arming and the stop is ``peak - W`` (BUY) /
  ``peak + W`` (SELL): it only moves in the profit direction;
* fires when BUY ``bid <= stop`` / SELL ``ask >= stop``, once (latched);
* a stale or untradeable quote changes nothing and never fires.

Edits take effect (:func:`retune`), on an OPEN position whose ``trailWidth`` changes to W':

* W' = 0 stops trailing (the state is dropped; nothing fires any more);
* armed: armed and peak are kept, the stop moves to ``peak - W'`` (BUY) / ``peak + W'`` (SELL) at once; a
  narrower width can put the stop past the current price: the next evaluation then fires;
* not yet armed: W' is the new arming threshold (``entry + W'`` / ``entry - W'``);
* fired: the latch holds; an edit changes nothing.

``step`` returns the *same* state object when nothing changed, so callers can skip journal writes with
an identity check and sweeps over thousands of positions allocate nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .enums import Side, Symbol


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: Symbol
    bid: int  # points
    ask: int  # points
    time: float  # monotonic seconds at which the agent received it
    tradeable: bool = True  # False when the market is closed or trading is disabled


@dataclass(frozen=True, slots=True)
class TrailState:
    position_id: str
    symbol: Symbol
    side: Side
    entry: int  # points
    width: int  # W in points, > 0
    armed: bool = False
    peak: int | None = None
    fired: bool = False

    @property
    def stop(self) -> int | None:
        if self.peak is None:
            return None
        return self.peak - self.width if self.side is Side.BUY else self.peak + self.width

    def to_json(self) -> dict[str, Any]:
        return {
            "position_id": self.position_id,
            "symbol": self.symbol.value,
            "side": self.side.value,
            "entry": self.entry,
            "width": self.width,
            "armed": self.armed,
            "peak": self.peak,
            "fired": self.fired,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrailState:
        peak = data["peak"]
        state = cls(
            position_id=str(data["position_id"]),
            symbol=Symbol(data["symbol"]),
            side=Side(data["side"]),
            entry=int(data["entry"]),
            width=int(data["width"]),
            armed=bool(data["armed"]),
            peak=None if peak is None else int(peak),
            fired=bool(data["fired"]),
        )
        if state.width <= 0:
            raise ValueError(f"trail state of {state.position_id}: width must be > 0, got {state.width}")
        if state.armed != (state.peak is not None):
            raise ValueError(f"trail state of {state.position_id}: armed and peak disagree")
        return state


@dataclass(frozen=True, slots=True)
class Fire:
    position_id: str
    price: int  # the close-side quote that crossed the stop, points
    stop: int  # points
    peak: int  # points


def new_trail(position_id: str, symbol: Symbol, side: Side, entry: int, width: int) -> TrailState:
    if width <= 0:
        raise ValueError(f"trail of {position_id}: width must be > 0 points, got {width}")
    return TrailState(position_id, symbol, side, entry, width)


def retune(state: TrailState, width: int) -> TrailState | None:
    """The trail after an edit of its width to ``width`` points (the rule above); None: stop trailing."""
    if width < 0:
        raise ValueError(f"trail of {state.position_id}: width must be >= 0 points, got {width}")
    if state.fired or width == state.width:
        return state
    if width == 0:
        return None
    return TrailState(
        state.position_id, state.symbol, state.side, state.entry, width, state.armed, state.peak, state.fired
    )


def step(state: TrailState, quote: Quote, now: float, stale_after: float) -> tuple[TrailState, Fire | None]:
    """Evaluate one quote for one position. ``now`` is the caller's clock (the core reads none)."""
    if state.fired or not quote.tradeable or now - quote.time > stale_after:
        return state, None
    w = state.width
    if state.side is Side.BUY:
        price = quote.bid
        peak = state.peak
        if peak is None:
            if price >= state.entry + w:
                return TrailState(
                    state.position_id, state.symbol, state.side, state.entry, w, True, price
                ), None
            return state, None
        if price > peak:
            return TrailState(state.position_id, state.symbol, state.side, state.entry, w, True, price), None
        stop = peak - w
        if price <= stop:
            return (
                TrailState(state.position_id, state.symbol, state.side, state.entry, w, True, peak, True),
                Fire(state.position_id, price, stop, peak),
            )
        return state, None
    price = quote.ask
    peak = state.peak
    if peak is None:
        if price <= state.entry - w:
            return TrailState(state.position_id, state.symbol, state.side, state.entry, w, True, price), None
        return state, None
    if price < peak:
        return TrailState(state.position_id, state.symbol, state.side, state.entry, w, True, price), None
    stop = peak + w
    if price >= stop:
        return (
            TrailState(state.position_id, state.symbol, state.side, state.entry, w, True, peak, True),
            Fire(state.position_id, price, stop, peak),
        )
    return state, None


_INF = float("inf")


def quiet_band(state: TrailState) -> tuple[float, float]:
    """The open interval (lo, hi) of close-side prices (bid for BUY, ask for SELL) for which ``step``
    provably returns ``state`` unchanged and no fire, whatever the clock: sweeps skip those positions
    without a call. Derived from ``step`` case by case (the tests check the equivalence)."""
    if state.fired:
        return -_INF, _INF
    w = state.width
    if state.side is Side.BUY:
        if state.peak is None:
            return -_INF, state.entry + w  # not yet W in profit
        return state.peak - w, state.peak + 1  # above the stop, not a new high
    if state.peak is None:
        return state.entry - w, _INF
    return state.peak - 1, state.peak + w  # not a new low, below the stop
