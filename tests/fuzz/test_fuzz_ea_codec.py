"""MT4 bridge frames: a message that survives encode -> parse, or a FrameError with a reason; nothing else.

The fuzz test runs a few hundred seeded cases (bench/fuzz.py runs 10,000); the tests after it pin what the
fuzzer found, one each.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from hedge_agent.terminals.mt4 import codec

from .common import FUZZ, SEEDS
from .ea_codec_target import TARGET, check


@FUZZ
@given(SEEDS)
def test_any_frame_is_a_message_that_round_trips_or_a_frame_error_with_a_reason(seed: int) -> None:
    TARGET.check(TARGET.case(seed))


@pytest.mark.parametrize("prefix", ['{"type":"ticks","q":', '{"type":"ack","id":', ""])
def test_a_frame_nested_past_the_recursion_limit_is_a_frame_error(prefix: str) -> None:
    with pytest.raises(codec.FrameError, match="JSON"):
        codec.parse_from_ea(prefix + "[" * 100_000 + "]" * 100_000 + "}")


def test_a_tick_symbol_with_a_lone_surrogate_is_refused_as_the_model_refuses_it() -> None:
    with pytest.raises(codec.FrameError, match="JSON"):
        codec.parse_from_ea('{"type":"ticks","q":[["\\ud800EURUSD",1.1,1.2,5]]}')


def test_a_tick_symbol_with_an_escaped_surrogate_pair_is_a_symbol_like_any_other() -> None:
    assert check(("ea", '{"type":"ticks","q":[["\\ud83d\\udcb8",1.1,1.2,5]]}')) == "accepted"


def test_a_time_sent_in_milliseconds_is_a_frame_error_naming_the_field_not_a_crash_on_the_fill() -> None:
    raw = (
        '{"type":"result","id":"r1","status":"done","ticket":7,"price":1.1,"volume":0.1,"time":1700000000000}'
    )
    with pytest.raises(codec.FrameError) as e:
        codec.parse_from_ea(raw)
    assert (e.value.frame, e.value.field) == ("result", "time")


def test_an_ack_id_with_a_trailing_newline_is_refused_by_the_fast_path_as_by_the_model() -> None:
    with pytest.raises(codec.FrameError) as e:
        codec.parse_from_ea('{"type":"ack","id":"r1\\n","dup":false}')
    assert e.value.field == "id"
