"""Pure evaluation of the inputs AppSync turns into DynamoDB expressions and subscription filters.

- ``condition_holds``: ``Model*ConditionInput`` and ``Model*FilterInput`` (DynamoDB condition and filter
  expressions: ``and``/``or``/``not``, ``attributeExists``, ``size``, ...).
- ``subscription_filter_holds``: ``ModelSubscription*FilterInput`` (AppSync enhanced filters: adds
  ``in``/``notIn``, no ``not``).
- ``key_condition_holds``: ``Model*KeyConditionInput`` on a sort key value.

Values are what the JSON document holds. A missing attribute is ``None``: every comparison with it is
false except ``ne``/``notIn``/``notContains`` (as DynamoDB: ``a <> :v`` is true when ``a`` is absent).
A comparison across kinds (string vs number) is false, ``ne`` aside. An operator given as ``null``
constrains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return type(value).__name__


def _comparable(left: Any, right: Any) -> bool:
    kind = _kind(left)
    return kind is not None and kind == _kind(right) and kind in ("string", "number", "bool")


def _ordered(left: Any, right: Any, test: Callable[[Any, Any], bool]) -> bool:
    return _comparable(left, right) and _kind(left) != "bool" and test(left, right)


def _size(value: Any) -> int | None:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    return None


def _contains(value: Any, needle: Any) -> bool:
    if isinstance(value, str):
        return isinstance(needle, str) and needle in value
    if isinstance(value, list | tuple):
        return needle in value
    return False


_ATTRIBUTE_TYPES = {
    "string": "string",
    "number": "number",
    "bool": "bool",
    "list": "list",
    "map": "map",
}


def _operator_holds(operator: str, operand: Any, value: Any) -> bool:
    if operator == "eq":
        return _comparable(value, operand) and bool(value == operand)
    if operator == "ne":
        return not (_comparable(value, operand) and value == operand)
    if operator == "lt":
        return _ordered(value, operand, lambda a, b: a < b)
    if operator == "le":
        return _ordered(value, operand, lambda a, b: a <= b)
    if operator == "gt":
        return _ordered(value, operand, lambda a, b: a > b)
    if operator == "ge":
        return _ordered(value, operand, lambda a, b: a >= b)
    if operator == "between":
        if not isinstance(operand, Sequence) or isinstance(operand, str) or len(operand) != 2:
            raise ValueError("between takes exactly two values [low, high]")
        low, high = operand
        return _ordered(value, low, lambda a, b: a >= b) and _ordered(value, high, lambda a, b: a <= b)
    if operator == "beginsWith":
        return isinstance(value, str) and isinstance(operand, str) and value.startswith(operand)
    if operator == "contains":
        return _contains(value, operand)
    if operator == "notContains":
        return not _contains(value, operand)
    if operator == "in":
        return value is not None and any(_operator_holds("eq", item, value) for item in operand)
    if operator == "notIn":
        return not any(_operator_holds("eq", item, value) for item in operand)
    if operator == "attributeExists":
        return (value is not None) == bool(operand)
    if operator == "attributeType":
        if operand == "_null":
            return False  # absent attributes are not stored as NULL
        return value is not None and _ATTRIBUTE_TYPES.get(str(operand)) == _kind(value)
    if operator == "size":
        size = _size(value)
        return size is not None and field_holds(operand, size)
    raise ValueError(f"unknown operator {operator!r}")


def field_holds(operators: Mapping[str, Any] | None, value: Any) -> bool:
    """Every operator given for one field holds for ``value`` (operators given as null are ignored)."""
    if not operators:
        return True
    return all(
        _operator_holds(operator, operand, value)
        for operator, operand in operators.items()
        if operand is not None
    )


def validate(condition: Mapping[str, Any] | None) -> None:
    """Raise ValueError naming the first malformed operand (evaluation short-circuits, so it may not)."""
    for key, operand in (condition or {}).items():
        if operand is None:
            continue
        if key in ("and", "or"):
            for part in operand:
                validate(part)
        elif key == "not":
            validate(operand)
        else:
            for operator, value in operand.items():
                if operator == "between" and value is not None and len(value) != 2:
                    raise ValueError(f"{key}.between takes exactly two values [low, high], got {len(value)}")
                if operator == "size" and value is not None:
                    validate({key: value})


def condition_holds(condition: Mapping[str, Any] | None, item: Mapping[str, Any]) -> bool:
    """A condition or filter input against a stored item (``{}`` when the item does not exist)."""
    if not condition:
        return True
    for key, operand in condition.items():
        if operand is None:
            continue
        if key == "and":
            if not all(condition_holds(part, item) for part in operand):
                return False
        elif key == "or":
            if operand and not any(condition_holds(part, item) for part in operand):
                return False
        elif key == "not":
            if condition_holds(operand, item):
                return False
        elif not field_holds(operand, item.get(key)):
            return False
    return True


def subscription_filter_holds(flt: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> bool:
    """An enhanced subscription filter against a published payload (fields not selected are None)."""
    return condition_holds(flt, payload)


def key_condition_holds(condition: Mapping[str, Any] | None, key: Any) -> bool:
    """A sort key condition (``eq le lt ge gt between beginsWith``) against one sort key value."""
    return field_holds(condition, key)
