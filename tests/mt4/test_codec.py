"""The sans-I/O codec: every message round-trips, bad frames are rejected naming the field, nothing else
ever escapes the parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedge_agent.terminals.mt4 import codec as c

EA_FRAMES: list[c.FromEa] = [
    c.Hello(v=2, nonce="a" * 64),
    c.Auth(proof="b" * 64, build=1420, login=5, server="S", ea_version="2.0.0", instance="i1"),
    c.Heartbeat(),
    c.Ticks(q=[("EURUSD", 1.1, 1.1002, 1_700_000_000_123)]),
    c.Account(login=5, balance=1.5, credit=0, equity=1.5, margin=0, trade_allowed=True),
    c.Watching(symbols=["EURUSD"], missing=["XAUUSDm"]),
    c.Ack(id="r1", dup=True),
    c.Result(id="r1", status="done", ticket=7, price=1.1, volume=0.1, time=1.7e9),
    c.Result(id="r2", status="rejected", code=134, reason="not enough money"),
    c.Trades(
        id="q1",
        trades=[
            c.Trade(
                ticket=7,
                symbol="EURUSD",
                side="BUY",
                volume=0.1,
                open_price=1.1,
                open_time=1.7e9,
                magic=9,
                state="closed",
                close_price=1.2,
                close_time=1.8e9,
                close_magic=10,
                close_reason="closed by expert",
            )
        ],
        stored=c.Stored(status="pending", op="open"),
    ),
    c.Positions(id="p1", positions=[]),
    c.ErrorMsg(code="bad_frame", reason="x", ref="r1"),
]
AGENT_FRAMES: list[c.FromAgent] = [
    c.Challenge(nonce="c" * 64, proof="d" * 64),
    c.Welcome(session="s1", heartbeat_s=1, dead_after_s=5, max_frame=1 << 20),
    c.Heartbeat(),
    c.Watch(symbols=["EURUSD", "USDJPY.raw"]),
    c.Order(
        id="r1", op="open", symbol="EURUSD", side="SELL", volume=0.1, deviation=20, magic=1, comment="ha:x"
    ),
    c.Order(id="r2", op="close", ticket=7, volume=0.1, deviation=20, magic=2),
    c.Order(id="r3", op="open", symbol="EURUSD", side="BUY", volume=0.1, deviation=20, magic=1, sl=1.05),
    c.Query(id="q1", magic=5, req="r1"),
    c.GetPositions(id="p1"),
]


@pytest.mark.parametrize("msg", EA_FRAMES, ids=lambda m: m.type)
def test_every_ea_message_survives_a_round_trip(msg: c.FromEa):
    assert c.parse_from_ea(c.encode(msg)) == msg


@pytest.mark.parametrize("msg", AGENT_FRAMES, ids=lambda m: m.type)
def test_every_agent_message_survives_a_round_trip(msg: c.FromAgent):
    assert c.parse_from_agent(c.encode(msg)) == msg


def test_absent_optional_fields_are_left_out_of_the_frame():
    frame = json.loads(c.encode(c.Order(id="r2", op="close", ticket=7, volume=0.1, deviation=0, magic=2)))
    assert "symbol" not in frame and "side" not in frame


def test_unknown_keys_are_ignored_for_forward_compatibility():
    msg = c.parse_from_ea('{"type":"ack","id":"r1","dup":false,"added_in_1_1":42}')
    assert msg == c.Ack(id="r1")


@pytest.mark.parametrize(
    ("raw", "frame", "field", "words"),
    [
        (
            '{"type":"order","id":"a","op":"open","side":"BUY","volume":0.1,"deviation":1,"magic":3}',
            "order",
            "symbol",
            "required when op is 'open'",
        ),
        (
            '{"type":"order","id":"a","op":"close","volume":0.1,"deviation":1,"magic":3}',
            "order",
            "ticket",
            "required",
        ),
        (
            '{"type":"order","id":"a","op":"open","symbol":"X","side":"BUY","volume":0,"deviation":1,"magic":3}',
            "order",
            "volume",
            "greater than 0",
        ),
        (
            '{"type":"order","id":"a","op":"open","symbol":"X","side":"BUY","volume":0.1,"deviation":1,"magic":2147483648}',
            "order",
            "magic",
            "less than or equal",
        ),
        (
            '{"type":"order","id":"a b","op":"open","symbol":"X","side":"BUY","volume":0.1,"deviation":1,"magic":3}',
            "order",
            "id",
            "pattern",
        ),
        ('{"type":"query","id":"a"}', "query", "magic", "needs"),
    ],
)
def test_a_bad_agent_frame_names_its_type_and_field(raw: str, frame: str, field: str, words: str):
    with pytest.raises(c.FrameError) as e:
        c.parse_from_agent(raw)
    assert (e.value.frame, e.value.field) == (frame, field)
    assert words in e.value.reason


@pytest.mark.parametrize(
    ("raw", "frame", "field"),
    [
        ('{"type":"result","id":"a","status":"done","price":1.1,"volume":0.1,"time":5}', "result", "ticket"),
        ('{"type":"result","id":"a","status":"maybe"}', "result", "status"),
        (
            '{"type":"account","login":"5","balance":1,"credit":0,"equity":1,"margin":0,"trade_allowed":true}',
            "account",
            "login",
        ),
        (
            '{"type":"account","login":5,"balance":1,"credit":0,"equity":1,"margin":0,"trade_allowed":1}',
            "account",
            "trade_allowed",
        ),
        ('{"type":"trades","id":"a","trades":[{"ticket":1}]}', "trades", "trades[0].symbol"),
        ('{"type":"ticks","q":[["EURUSD",1.1,"1.2",5]]}', "ticks", "q[0][2]"),
        ('{"type":"ticks","q":[["EURUSD",1.1,1.2]]}', "ticks", "q[0]"),
        ('{"type":"ticks","q":[["EURUSD",NaN,1.2,5]]}', "ticks", "q[0][1]"),
        ('{"type":"ticks","q":[["EURUSD",1.1,1.2,5.5]]}', "ticks", "q[0][3]"),
        ('{"type": "ticks", "q": [["EURUSD", 1.1, "x", 5]]}', "ticks", "q.0.2"),
    ],
)
def test_a_bad_ea_frame_names_its_type_and_field(raw: str, frame: str, field: str):
    with pytest.raises(c.FrameError) as e:
        c.parse_from_ea(raw)
    assert e.value.frame == frame
    assert e.value.field is not None and e.value.field.replace("[", ".").replace("]", "") in (
        field.replace("[", ".").replace("]", ""),
    )


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("not json", "not valid JSON"),
        (b"\x00binary", "binary frame"),
        ("[1,2]", "JSON object with a 'type'"),
        ('{"id":"x"}', "JSON object with a 'type'"),
        ('{"type":"launch"}', "unknown type 'launch'"),
    ],
)
def test_frames_that_are_not_messages_say_why(raw: str | bytes, words: str):
    with pytest.raises(c.FrameError, match=words):
        c.parse_from_ea(raw)


def test_the_tick_fast_path_agrees_with_the_validated_model():
    q = [["EURUSD", 1.085, 1.08512, 1_700_000_000_000], ["USDJPY.raw", 150, 150.015, 1_700_000_000_001]]
    fast = c.parse_from_ea(json.dumps({"type": "ticks", "q": q}, separators=(",", ":")))
    slow = c.parse_from_ea(json.dumps({"q": q, "type": "ticks"}))
    assert (
        fast
        == slow
        == c.Ticks(
            q=[
                ("EURUSD", 1.085, 1.08512, 1_700_000_000_000),
                ("USDJPY.raw", 150.0, 150.015, 1_700_000_000_001),
            ]
        )
    )


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "id", "q", "v", "token", "status", "op", "x"]), inner, max_size=5
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=64), st.binary(max_size=32), JSONISH.map(json.dumps)))
def test_no_input_makes_the_parser_raise_anything_but_a_frame_error(raw: str | bytes):
    for parse in (c.parse_from_ea, c.parse_from_agent):
        try:
            parse(raw)
        except c.FrameError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ticks", "result", "order", "hello", "trades"]),
    st.dictionaries(
        st.sampled_from(["q", "id", "status", "op", "v", "trades", "ticket"]), JSONISH, max_size=4
    ),
)
def test_typed_frames_with_random_fields_are_accepted_or_rejected_cleanly(
    kind: str, fields: dict[str, object]
):
    raw = json.dumps({"type": kind, **fields}, separators=(",", ":"))
    for parse in (c.parse_from_ea, c.parse_from_agent):
        try:
            parse(raw)
        except c.FrameError as e:
            assert str(e)


def _trade(**over: object) -> dict[str, object]:
    t: dict[str, object] = {"ticket": 7, "symbol": "EURUSD", "side": "BUY", "volume": 0.1, "open_price": 1.1}
    t.update(open_time=1.7e9, magic=9, comment="", state="open")
    t.update(over)
    return t


@pytest.mark.parametrize("magic", [-1, -(1 << 31), -123456])
def test_positions_of_foreign_eas_with_negative_magics_are_accepted(magic: int):
    """MT4 magics are signed 32-bit ints and other EAs use negative ones: before, one such position made the
    whole ``positions`` frame a FrameError (positions() failed for the terminal)."""
    frame = json.dumps(
        {"type": "positions", "id": "p1", "positions": [_trade(), _trade(ticket=8, magic=magic)]}
    )
    msg = c.parse_from_ea(frame)
    assert isinstance(msg, c.Positions) and msg.positions[1].magic == magic
    closed = _trade(state="closed", close_price=1.2, close_time=1.8e9, close_magic=magic)
    assert isinstance(
        c.parse_from_ea(json.dumps({"type": "trades", "id": "q", "trades": [closed]})), c.Trades
    )


def test_a_magic_outside_32_bits_is_still_refused():
    frame = json.dumps({"type": "positions", "id": "p1", "positions": [_trade(magic=-(1 << 31) - 1)]})
    with pytest.raises(c.FrameError, match="magic"):
        c.parse_from_ea(frame)


def test_our_own_orders_never_carry_a_negative_magic():
    with pytest.raises(ValueError, match="magic"):
        c.Order(id="r", op="open", symbol="EURUSD", side="BUY", volume=0.1, deviation=0, magic=-1)


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"result","id":"r1","status":"rejected","ticket":null,"price":null,"code":134,"reason":"x"}',
        '{"type":"account","login":5,"balance":1,"credit":0,"equity":1,"margin":0,"margin_level":null,'
        '"currency":null,"trade_allowed":true,"connected":null}',
        '{"type":"auth","proof":"' + "b" * 64 + '","build":1,"login":5,"server":"S","company":null,'
        '"ea_version":"2","instance":"i","session":null}',
        '{"type":"trades","id":"q","trades":[],"stored":null}',
        '{"type":"error","code":"x","reason":"y","ref":null}',
    ],
    ids=["result", "account", "auth", "trades", "error"],
)
def test_null_means_the_same_as_a_missing_key(frame: str):
    """PROTOCOL §1. Before, an optional field with a default (``company``, ``currency``) refused null."""
    assert c.parse_from_ea(frame) == c.parse_from_ea(
        json.dumps({k: v for k, v in json.loads(frame).items() if v is not None})
    )


def test_null_for_a_required_field_is_refused_naming_the_field():
    with pytest.raises(c.FrameError, match="field 'status'"):
        c.parse_from_ea('{"type":"result","id":"r1","status":null}')


@pytest.mark.parametrize("side", ["buy", "Buy", "BUY ", "LONG", "", 1])
def test_an_order_side_other_than_exactly_buy_or_sell_is_refused(side: object):
    frame = {"type": "order", "id": "r", "op": "open", "symbol": "EURUSD", "side": side, "volume": 0.1}
    frame.update(deviation=0, magic=1)
    with pytest.raises(c.FrameError, match="side"):
        c.parse_from_agent(json.dumps(frame))


def test_the_proof_is_hmac_sha256_of_role_and_both_nonces():
    """PROTOCOL §3 test vector: what an independent implementation (the EA's hmac_sha256_hex) must produce."""
    token, a, b = "T" * 43, "a" * 64, "b" * 64
    assert c.proof(token, "bridge", a, b) != c.proof(token, "ea", a, b) != c.proof(token, "ea", b, a)
    assert c.proof(token, "ea", a, b) == VECTOR


#: computed independently: printf "HB2|ea|<64 a>|<64 b>" | openssl dgst -sha256 -hmac <43 T>
VECTOR = "93603f4666f35c115e282c9a394fecad9f468669faf3db29f8c2090f89a52ad3"
