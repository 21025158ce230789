from decimal import Decimal

import pytest
from pydantic import ValidationError

from hedge_agent.domain.enums import ExecutionType, PositionStatus, Side, Symbol, side
from hedge_agent.domain.models import parse_action, parse_position, trigger_action_ids
from hedge_agent.domain.ownership import Ownership, ownership
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import (
    CLOSE_ATTEMPTS_SEARCHED,
    MT4_MAGIC_BITS,
    IntentKind,
    close_intent_id,
    close_intent_of,
    intent_id,
    order_tag,
)
from hedge_agent.errors import RecordError


def position_payload(**over):
    p = {
        "id": "pos-1",
        "userId": "u1",
        "accountId": "acc-1",
        "executionType": "ENTRY",
        "status": "OPENING",
        "symbol": "USDJPY",
        "volume": 0.1,
        "entryPrice": None,
        "entryTime": None,
        "exitPrice": None,
        "exitTime": None,
        "exitReason": None,
        "trailWidth": 10.0,
        "triggerActionIds": '["a1","a2"]',
        "mtTicket": None,
        "memo": "seed",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:01.000Z",
        "__typename": "Position",
    }
    p.update(over)
    return p


def action_payload(**over):
    a = {
        "id": "act-1",
        "userId": "u1",
        "accountId": "acc-1",
        "positionId": "pos-1",
        "triggerPositionId": None,
        "type": "ENTRY",
        "status": "EXECUTING",
        "createdAt": "2025-01-01T00:00:00.000Z",
        "updatedAt": "2025-01-01T00:00:00.000Z",
    }
    a.update(over)
    return a


def test_a_full_position_payload_parses_into_an_immutable_record():
    p = parse_position(position_payload())
    assert p.status is PositionStatus.OPENING and p.symbol is Symbol.USDJPY and p.side is Side.BUY
    with pytest.raises(ValidationError):
        p.status = PositionStatus.OPEN  # type: ignore[misc]
    assert p.to_wire()["accountId"] == "acc-1"


@pytest.mark.parametrize(
    ("field", "value", "wire_name"),
    [
        ("symbol", "GBPJPY", "symbol"),
        ("status", "OPENED", "status"),
        ("volume", 0, "volume"),
        ("volume", "lots", "volume"),
        ("trailWidth", -1, "trailWidth"),
        ("accountId", None, "accountId"),
        ("entryTime", "yesterday", "entryTime"),
    ],
)
def test_a_malformed_position_names_its_id_and_the_field(field, value, wire_name):
    with pytest.raises(RecordError) as info:
        parse_position(position_payload(**{field: value}))
    assert info.value.record_id == "pos-1" and info.value.field == wire_name
    assert "pos-1" in str(info.value) and wire_name in str(info.value)


def test_a_missing_field_is_named():
    payload = position_payload()
    del payload["executionType"]
    with pytest.raises(RecordError, match="executionType"):
        parse_position(payload)


def test_a_payload_that_is_not_an_object_is_rejected():
    with pytest.raises(RecordError, match="expected an object"):
        parse_action(["not", "a", "record"])


def test_an_action_without_id_is_reported_as_such():
    with pytest.raises(RecordError) as info:
        parse_action(action_payload(id=None))
    assert info.value.record_id is None and info.value.field == "id"


def test_execution_type_maps_entry_to_buy_and_exit_to_sell():
    assert side(ExecutionType.ENTRY) is Side.BUY and side(ExecutionType.EXIT) is Side.SELL


@pytest.mark.parametrize("raw", [None, "", "[]", "  "])
def test_empty_trigger_ids_mean_none(raw):
    assert trigger_action_ids(parse_position(position_payload(triggerActionIds=raw))) == ()


def test_trigger_ids_keep_order_and_drop_duplicates():
    p = parse_position(position_payload(triggerActionIds='["b","a","b"]'))
    assert trigger_action_ids(p) == ("b", "a")


@pytest.mark.parametrize("raw", ["[a1]", '{"a": 1}', "[1, 2]", '[""]', "not json"])
def test_malformed_trigger_ids_are_a_clear_error_on_the_position(raw):
    with pytest.raises(RecordError) as info:
        trigger_action_ids(parse_position(position_payload(triggerActionIds=raw)))
    assert info.value.record_id == "pos-1" and info.value.field == "triggerActionIds"


def test_ownership_needs_this_user_and_a_local_account():
    p = parse_position(position_payload())
    assert ownership(p, "u1", {"acc-1"}) is Ownership.OWNED
    assert ownership(p, "u2", {"acc-1"}) is Ownership.OTHER_USER
    assert ownership(p, "u1", {"acc-9"}) is Ownership.OTHER_PC


def test_symbol_table_maps_broker_names_both_ways_and_applies_pip_overrides():
    t = SymbolTable(
        pip_overrides={Symbol.XAUUSD: Decimal("0.01")}, broker_names={Symbol.USDJPY: "USDJPY.raw"}
    )
    assert t.broker_name(Symbol.USDJPY) == "USDJPY.raw" and t.from_broker("USDJPY.raw") is Symbol.USDJPY
    assert t.from_broker("EURUSD") is Symbol.EURUSD and t.from_broker("BTCUSD") is None
    assert t.spec(Symbol.XAUUSD).pips_to_points(10) == 10
    assert t.spec(Symbol.USDJPY).pips_to_points(10) == 100


def test_prices_land_on_the_point_grid_without_float_error():
    spec = SymbolTable().spec(Symbol.EURUSD)
    assert spec.to_points(1.10001) - spec.pips_to_points(1) == spec.to_points(1.09991)
    assert spec.to_points(0.1 + 0.2) == spec.to_points("0.3")


def test_order_tags_are_deterministic_bounded_and_distinct():
    a = order_tag(intent_id("pos-1", IntentKind.OPEN))
    assert a == order_tag(intent_id("pos-1", IntentKind.OPEN))
    assert a.magic != order_tag(intent_id("pos-1", IntentKind.CLOSE)).magic
    assert 0 < a.magic < 2**MT4_MAGIC_BITS and len(a.comment) <= 16
    based = order_tag("open:x", magic_base=1_000_000)
    assert based.magic > 1_000_000


def test_a_closing_deals_tag_names_the_close_attempt_of_any_agent_that_sent_it():
    # tags are deterministic: another PC's third close attempt carries the same tag as this PC's would
    third = order_tag(close_intent_id("pos-1", 3), magic_base=500).magic
    assert close_intent_of("pos-1", third, 0, magic_base=500) == "close:pos-1:3"
    # beyond this PC's own attempts, within the search
    far = order_tag(close_intent_id("pos-1", 5 + CLOSE_ATTEMPTS_SEARCHED)).magic
    assert close_intent_of("pos-1", far, 5) == f"close:pos-1:{5 + CLOSE_ATTEMPTS_SEARCHED}"
    # not a close of this position: its open, another position's close, another magic base
    assert close_intent_of("pos-1", order_tag(intent_id("pos-1", IntentKind.OPEN)).magic, 3) is None
    assert close_intent_of("pos-1", order_tag(close_intent_id("pos-2", 1)).magic, 3) is None
    assert close_intent_of("pos-1", third, 3) is None
