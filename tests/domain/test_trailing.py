"""Trailing semantics of design §4, for BUY and SELL, plus hypothesis properties."""

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import Fire, Quote, TrailState, new_trail, retune, step

NOW = 1000.0
STALE = 5.0


def q(bid: int, ask: int | None = None, *, t: float = NOW, tradeable: bool = True) -> Quote:
    return Quote(Symbol.USDJPY, bid, bid + 2 if ask is None else ask, t, tradeable)


def buy(entry: int = 150_000, width: int = 100) -> TrailState:
    return new_trail("p1", Symbol.USDJPY, Side.BUY, entry, width)


def sell(entry: int = 150_000, width: int = 100) -> TrailState:
    return new_trail("p1", Symbol.USDJPY, Side.SELL, entry, width)


def run(state: TrailState, quotes: list[Quote]) -> tuple[TrailState, list[Fire]]:
    fires = []
    for quote in quotes:
        state, fire = step(state, quote, NOW, STALE)
        if fire:
            fires.append(fire)
    return state, fires


def test_buy_is_not_armed_below_w_in_profit():
    state, fires = run(buy(), [q(150_099)])
    assert not state.armed and state.peak is None and not fires


def test_buy_arms_exactly_at_w_in_profit_with_peak_at_the_bid():
    state, _ = run(buy(), [q(150_100)])
    assert state.armed and state.peak == 150_100 and state.stop == 150_000


def test_buy_peak_ratchets_up_and_stop_never_loosens():
    state, fires = run(buy(), [q(150_100), q(150_250), q(150_200), q(150_240)])
    assert state.peak == 150_250 and state.stop == 150_150 and not fires


def test_buy_fires_when_bid_touches_the_stop_exactly():
    state, fires = run(buy(), [q(150_100), q(150_250), q(150_150)])
    assert fires == [Fire("p1", price=150_150, stop=150_150, peak=150_250)] and state.fired


def test_buy_uses_the_bid_not_the_ask():
    # the ask is far above the arming level, the bid is not: not armed
    state, _ = run(buy(), [q(150_050, ask=150_300)])
    assert not state.armed


def test_fires_once_even_when_later_quotes_stay_through_the_stop():
    _, fires = run(buy(), [q(150_100), q(150_000), q(149_000), q(150_500), q(140_000)])
    assert len(fires) == 1


def test_a_gap_far_through_the_stop_fires_once_at_the_gapped_price():
    _, fires = run(buy(), [q(150_300), q(149_000)])
    assert fires == [Fire("p1", price=149_000, stop=150_200, peak=150_300)]


def test_stale_quote_neither_arms_nor_fires():
    state, _ = run(buy(), [q(150_100), q(150_300)])
    stale_state, stale_fire = step(state, q(100_000, t=NOW - STALE - 0.001), NOW, STALE)
    assert stale_state is state and stale_fire is None
    unarmed, _ = step(buy(), q(160_000, t=NOW - 60), NOW, STALE)
    assert not unarmed.armed


def test_untradeable_quote_never_fires():
    state, _ = run(buy(), [q(150_300)])
    after, fire = step(state, q(100_000, tradeable=False), NOW, STALE)
    assert fire is None and after is state


def test_sell_arms_at_w_below_entry_on_the_ask():
    state, _ = run(sell(), [q(149_880, ask=149_900)])
    assert state.armed and state.peak == 149_900 and state.stop == 150_000


def test_sell_peak_ratchets_down_and_fires_when_ask_reaches_stop():
    state, fires = run(sell(), [q(0, ask=149_900), q(0, ask=149_700), q(0, ask=149_750), q(0, ask=149_800)])
    assert fires == [Fire("p1", price=149_800, stop=149_800, peak=149_700)] and state.fired


def test_restored_state_continues_exactly_where_it_stopped():
    quotes = [q(150_100), q(150_400), q(150_350), q(150_390), q(150_300)]
    whole, whole_fires = run(buy(), quotes)
    half, _ = run(buy(), quotes[:3])
    restored = TrailState.from_json(half.to_json())
    rest, rest_fires = run(restored, quotes[3:])
    assert restored == half and rest == whole and rest_fires == whole_fires


def test_unchanged_state_is_returned_as_the_same_object():
    state, _ = run(buy(), [q(150_300)])
    assert step(state, q(150_250), NOW, STALE)[0] is state


# -- properties ---------------------------------------------------------------------------------------

walks = st.lists(st.integers(min_value=-400, max_value=400), min_size=1, max_size=200)
widths = st.integers(min_value=1, max_value=500)


def _walk_quotes(moves: list[int], start: int = 150_000) -> list[Quote]:
    price, out = start, []
    for m in moves:
        price += m
        out.append(q(price, ask=price + 3))
    return out


@settings(max_examples=300, deadline=None)
@given(walks, widths)
def test_stop_only_moves_in_the_profit_direction(moves, width):
    for side in Side:
        state = new_trail("p", Symbol.USDJPY, side, 150_000, width)
        last_stop = None
        for quote in _walk_quotes(moves):
            state, _ = step(state, quote, NOW, STALE)
            if state.stop is not None and last_stop is not None:
                assert state.stop >= last_stop if side is Side.BUY else state.stop <= last_stop
            if state.stop is not None:
                last_stop = state.stop


@settings(max_examples=300, deadline=None)
@given(walks, widths)
def test_at_most_one_fire_per_position(moves, width):
    for side in Side:
        _, fires = run(new_trail("p", Symbol.USDJPY, side, 150_000, width), _walk_quotes(moves))
        assert len(fires) <= 1


@settings(max_examples=300, deadline=None)
@given(walks, widths, st.integers(min_value=0, max_value=5))
def test_buy_and_sell_are_mirror_images(moves, width, spread):
    """Reflect prices around 0: a BUY on bid b behaves like a SELL on ask -b."""
    b = new_trail("p", Symbol.USDJPY, Side.BUY, 150_000, width)
    s = new_trail("p", Symbol.USDJPY, Side.SELL, -150_000, width)
    price = 150_000
    for m in moves:
        price += m
        b, fb = step(b, Quote(Symbol.USDJPY, price, price + spread, NOW), NOW, STALE)
        s, fs = step(s, Quote(Symbol.USDJPY, -price - spread, -price, NOW), NOW, STALE)
        assert (b.armed, b.fired) == (s.armed, s.fired)
        assert (b.peak is None and s.peak is None) or (
            b.peak == -s.peak if b.peak is not None and s.peak is not None else False
        )
        assert (fb is None) == (fs is None)


def test_state_from_json_rejects_inconsistent_data():
    import pytest

    bad = replace(buy(), armed=True).to_json()
    with pytest.raises(ValueError, match="armed and peak disagree"):
        TrailState.from_json(bad)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(list(Side)),
    st.integers(min_value=149_000, max_value=151_000),
    st.integers(min_value=1, max_value=300),
    st.one_of(st.none(), st.integers(min_value=148_000, max_value=152_000)),
    st.booleans(),
    st.integers(min_value=147_000, max_value=153_000),
)
def test_inside_the_quiet_band_step_changes_nothing(side, entry, width, peak, fired, price):
    from hedge_agent.domain.trailing import quiet_band

    state = TrailState("p", Symbol.USDJPY, side, entry, width, peak is not None, peak, fired)
    lo, hi = quiet_band(state)
    quote = Quote(Symbol.USDJPY, price, price, NOW)
    new, fire = step(state, quote, NOW, STALE)
    if lo < price < hi:
        assert new is state and fire is None
    else:  # just outside the band, step acts (a move, an arm or a fire)
        assert new is not state


# -- edits take effect: retune (design §4) ----------------------------------------------------------------


def _armed(side: Side) -> TrailState:
    s = new_trail("p1", Symbol.USDJPY, side, 150_000, 50)
    peak = 150_200 if side is Side.BUY else 149_800
    return TrailState(s.position_id, s.symbol, s.side, s.entry, s.width, True, peak)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_width_zero_stops_trailing(side):
    assert retune(_armed(side), 0) is None
    assert retune(new_trail("p1", Symbol.USDJPY, side, 150_000, 50), 0) is None


@pytest.mark.parametrize(("side", "stop"), [(Side.BUY, 150_200 - 500), (Side.SELL, 149_800 + 500)])
def test_a_new_width_keeps_armed_and_peak_and_moves_the_stop(side, stop):
    new = retune(_armed(side), 500)
    assert new is not None and new.armed and new.peak == _armed(side).peak and new.stop == stop


def test_a_narrower_width_past_the_price_fires_on_the_next_quote():
    new = retune(_armed(Side.BUY), 10)  # stop 150_190
    assert new is not None
    _, fire = step(new, Quote(Symbol.USDJPY, 150_150, 150_160, 0.0), 0.0, 5.0)
    assert fire is not None and fire.stop == 150_190


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_unarmed_the_new_width_is_the_arming_threshold(side):
    s = new_trail("p1", Symbol.USDJPY, side, 150_000, 50)
    new = retune(s, 200)
    assert new is not None and not new.armed and new.peak is None and new.width == 200
    near = 150_100 if side is Side.BUY else 149_900  # would arm at W=50, not at W=200
    armed, _ = step(new, Quote(Symbol.USDJPY, near, near, 0.0), 0.0, 5.0)
    assert not armed.armed
    far = 150_200 if side is Side.BUY else 149_800
    armed, _ = step(new, Quote(Symbol.USDJPY, far, far, 0.0), 0.0, 5.0)
    assert armed.armed


def test_a_fired_trail_ignores_edits_and_the_same_width_is_no_change():
    fired = replace(_armed(Side.BUY), fired=True)
    assert retune(fired, 0) is fired and retune(fired, 999) is fired
    s = _armed(Side.SELL)
    assert retune(s, s.width) is s
    with pytest.raises(ValueError, match="width"):
        retune(s, -1)


def test_a_quote_received_before_the_position_was_added_never_arms_it():
    from hedge_agent.domain.trail_book import TrailBook

    book = TrailBook(stale_after=5.0)
    book.on_quote(Quote(Symbol.USDJPY, 150_300, 150_302, 9.0), 9.0)  # the market before the open
    book.add(new_trail("p1", Symbol.USDJPY, Side.BUY, 150_000, 50), since=10.0)
    assert book.sweep(10.5) == [] and book.get("p1") == new_trail("p1", Symbol.USDJPY, Side.BUY, 150_000, 50)
    book.on_quote(Quote(Symbol.USDJPY, 150_060, 150_062, 11.0), 11.0)
    state = book.get("p1")
    assert state is not None and state.armed and state.peak == 150_060
