"""Condition, filter and key-condition semantics, without a server."""

from __future__ import annotations

import pytest

from hedge_agent.sandbox.expressions import condition_holds, key_condition_holds, subscription_filter_holds

ITEM = {"id": "a1", "status": "PENDING", "volume": 0.5, "isActive": True, "memo": "hedge leg", "tags": ["x"]}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, True),
        ({"status": {"eq": "PENDING"}}, True),
        ({"status": {"eq": "OPEN"}}, False),
        ({"status": {"ne": "OPEN"}}, True),
        ({"missing": {"ne": "OPEN"}}, True),
        ({"missing": {"eq": "OPEN"}}, False),
        ({"volume": {"gt": 0.1, "le": 0.5}}, True),
        ({"volume": {"between": [0.6, 1.0]}}, False),
        ({"volume": {"eq": "0.5"}}, False),  # a string is not a number
        ({"volume": {"ne": "0.5"}}, True),
        ({"memo": {"beginsWith": "hedge"}}, True),
        ({"memo": {"contains": "leg"}, "status": {"notContains": "X"}}, True),
        ({"tags": {"contains": "x"}}, True),
        ({"memo": {"size": {"eq": 9}}}, True),
        ({"missing": {"attributeExists": False}}, True),
        ({"memo": {"attributeType": "string"}}, True),
        ({"volume": {"attributeType": "string"}}, False),
        ({"isActive": {"eq": True}}, True),
        ({"isActive": {"gt": False}}, False),  # booleans do not order
        ({"and": [{"status": {"eq": "PENDING"}}, {"volume": {"lt": 1}}]}, True),
        ({"or": [{"status": {"eq": "OPEN"}}, {"volume": {"lt": 0.1}}]}, False),
        ({"not": {"status": {"eq": "OPEN"}}}, True),
        ({"status": {"eq": None}}, True),  # a null operator constrains nothing
    ],
)
def test_conditions_evaluate_like_dynamodb(condition: dict, expected: bool) -> None:
    assert condition_holds(condition, ITEM) is expected


def test_a_condition_on_a_missing_item_sees_only_absent_attributes() -> None:
    assert condition_holds({"status": {"attributeExists": False}}, {})
    assert not condition_holds({"status": {"eq": "PENDING"}}, {})


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"status": {"in": ["OPEN", "PENDING"]}}, True),
        ({"status": {"notIn": ["OPEN", "PENDING"]}}, False),
        ({"missing": {"in": ["x"]}}, False),
        ({"missing": {"notIn": ["x"]}}, True),
        ({"or": [{"status": {"eq": "OPEN"}}, {"id": {"eq": "a1"}}]}, True),
    ],
)
def test_subscription_filters_add_in_and_not_in(flt: dict, expected: bool) -> None:
    assert subscription_filter_holds(flt, ITEM) is expected


@pytest.mark.parametrize(
    ("condition", "key", "expected"),
    [
        ({"beginsWith": "OPEN"}, "OPENING#2025-01-01T00:00:00.000Z", True),
        ({"eq": "OPENING"}, "OPENING#2025-01-01T00:00:00.000Z", False),
        ({"between": ["OPENING#2025", "OPENING#2026"]}, "OPENING#2025-06-01T00:00:00.000Z", True),
        ({"gt": 0}, 10.0, True),
        ({"gt": 0}, 0.0, False),
        (None, "anything", True),
    ],
)
def test_key_conditions(condition: dict | None, key: object, expected: bool) -> None:
    assert key_condition_holds(condition, key) is expected


def test_between_needs_two_bounds() -> None:
    with pytest.raises(ValueError, match="two values"):
        condition_holds({"volume": {"between": [1]}}, ITEM)
