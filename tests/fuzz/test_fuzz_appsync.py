"""AppSync payloads and realtime frames: a record, or a RecordError naming the record; never anything else.

The fuzz test runs a few hundred seeded cases (bench/fuzz.py runs 10,000); the tests after it pin the
crashes the fuzzer found, one each.
"""

from __future__ import annotations

import json

import pytest
from gql.transport.exceptions import TransportProtocolError
from hypothesis import given

from hedge_agent.domain.models import parse_account, parse_position, trigger_action_ids
from hedge_agent.errors import RecordError

from .appsync_target import TARGET, check_frames, position
from .common import FUZZ, SEEDS, Gen, nested_in_stack


@FUZZ
@given(SEEDS)
def test_any_payload_or_frame_becomes_a_record_or_a_record_error_naming_it(seed: int) -> None:
    TARGET.check(TARGET.case(seed))


def _position(**changes: object) -> dict[str, object]:
    return position(Gen(1)) | {"id": "p1", "userId": "u1"} | changes


def test_trigger_ids_nested_past_the_recursion_limit_are_a_record_error_on_the_position() -> None:
    p = parse_position(_position(triggerActionIds="[" * 100_000))
    with pytest.raises(RecordError) as e:
        trigger_action_ids(p)
    assert (e.value.record_id, e.value.field) == ("p1", "triggerActionIds")


@pytest.mark.parametrize(("field", "value"), [("trailWidth", float("inf")), ("entryPrice", float("nan"))])
def test_a_non_finite_number_is_refused_before_it_reaches_the_point_arithmetic(
    field: str, value: float
) -> None:
    with pytest.raises(RecordError) as e:
        parse_position(_position(**{field: value}))
    assert e.value.field == field and "finite" in e.value.reason


def test_a_date_time_without_a_zone_is_refused_as_aws_date_time_requires() -> None:
    with pytest.raises(RecordError) as e:
        parse_position(_position(updatedAt="2025-01-01T00:00:02"))
    assert e.value.field == "updatedAt" and "zone offset" in e.value.reason


def test_two_versions_of_a_record_one_without_a_zone_do_not_break_the_stream() -> None:
    frame = '{"type":"data","id":"4","payload":{"data":{"onUpdatePosition":%s}}}'
    aware = json.dumps(_position(userId="user-sub-1", updatedAt="2025-01-01T00:00:01.000Z"))
    naive = json.dumps(_position(userId="user-sub-1", updatedAt="2025-01-01T00:00:02", status="CLOSING"))
    assert check_frames([(3, frame % aware), (3, frame % naive)]) == "rejected"


def test_a_bad_value_nested_near_the_recursion_limit_is_reported_without_recursing() -> None:
    deep = json.loads("[" * 900 + "]" * 900)
    with pytest.raises(RecordError) as e:
        nested_in_stack(150, lambda: parse_account({"id": "a1", "userId": deep}))
    assert e.value.record_id == "a1" and e.value.field == "userId"


def test_a_frame_nested_past_the_recursion_limit_is_a_protocol_error_that_ends_the_session() -> None:
    from .appsync_target import _transport

    with pytest.raises(TransportProtocolError, match="not JSON"):
        _transport()._parse_answer('{"type":"data","id":"1","payload":' + "[" * 100_000)


@pytest.mark.parametrize("errors", ["5", '"Cannot return null"', "{}", '[{"message":"","path":[""]}]'])
def test_a_null_payload_with_odd_errors_is_one_bad_record_with_a_reason(errors: str) -> None:
    frame = '{"type":"data","id":"3","payload":{"data":{"onCreatePosition":null},"errors":' + errors + "}}"
    assert check_frames([(2, frame)]) == "rejected"
