"""Immutable records of the four backend models, parsed from AppSync payloads.

Field names are snake_case in Python and camelCase on the wire. ``parse_*`` turns a payload dict into a
record or raises :class:`RecordError` naming the record id and the first bad field. Unknown keys (such as
``__typename``) are ignored: the server may add fields we do not use.
"""

from __future__ import annotations

import json
import reprlib
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from hedge_agent.errors import RecordError

from .enums import (
    ActionStatus,
    ActionType,
    ExecutionType,
    PCStatus,
    PositionStatus,
    Side,
    Symbol,
    UserRole,
    side,
)


class Record(BaseModel):
    # allow_inf_nan=False: JSON has no NaN/Infinity, but Python's json reads those literals (and 1e400 as
    # inf); a non-finite price or trail width would only fail later, in the Decimal point arithmetic
    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        strict=False,
        allow_inf_nan=False,
    )

    id: str = Field(min_length=1)

    @field_validator("*")
    @classmethod
    def _zoned(cls, v: Any) -> Any:
        # AWSDateTime always has a zone offset; a naive time cannot even be compared with the others
        if isinstance(v, datetime) and v.utcoffset() is None:
            raise ValueError("a date-time needs a zone offset (AWSDateTime), e.g. 2025-01-01T00:00:00.000Z")
        return v

    def to_wire(self) -> dict[str, Any]:
        """The record as AppSync would send it (camelCase, enums as strings, ISO datetimes)."""
        return self.model_dump(mode="json", by_alias=True)


class User(Record):
    email: str
    name: str | None = None
    role: UserRole
    pc_status: PCStatus
    is_active: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Account(Record):
    user_id: str = Field(min_length=1)
    broker_type: str
    account_number: str
    server_name: str
    display_name: str
    balance: float
    credit: float
    equity: float
    is_active: bool
    last_updated: datetime
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Position(Record):
    user_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    execution_type: ExecutionType
    status: PositionStatus
    symbol: Symbol
    volume: float = Field(gt=0)
    entry_price: float | None = None
    entry_time: datetime | None = None
    exit_price: float | None = None
    exit_time: datetime | None = None
    exit_reason: str | None = None
    trail_width: float = Field(ge=0)
    trigger_action_ids: str | None = None
    mt_ticket: str | None = None
    memo: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def side(self) -> Side:
        return side(self.execution_type)

    @property
    def trailed(self) -> bool:
        return self.trail_width > 0


class Action(Record):
    user_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    position_id: str = Field(min_length=1)
    trigger_position_id: str | None = None
    type: ActionType
    status: ActionStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("trigger_position_id")
    @classmethod
    def _empty_is_none(cls, v: str | None) -> str | None:
        return v or None


R = TypeVar("R", bound=Record)

# bounded repr of a bad value: a plain repr of a deeply nested or huge payload value recurses or copies it all
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 120, 120


def _parse(cls: type[R], payload: Any) -> R:
    name = cls.__name__
    if not isinstance(payload, dict):
        raise RecordError(name, None, "<record>", f"expected an object, got {type(payload).__name__}")
    raw_id = payload.get("id")
    record_id = raw_id if isinstance(raw_id, str) and raw_id else None
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "<record>"
        more = exc.error_count() - 1
        reason = first["msg"].removeprefix("Value error, ")
        reason += f" (and {more} more problem(s))" if more else ""
        value = first.get("input")
        if first["type"] != "missing":
            reason += f"; got {_REPR.repr(value)}"[:200]
        raise RecordError(name, record_id, field, reason) from None


def parse_user(payload: Any) -> User:
    return _parse(User, payload)


def parse_account(payload: Any) -> Account:
    return _parse(Account, payload)


def parse_position(payload: Any) -> Position:
    return _parse(Position, payload)


def parse_action(payload: Any) -> Action:
    return _parse(Action, payload)


def trigger_action_ids(position: Position) -> tuple[str, ...]:
    """The Action ids a trail (or stop-out) of this position claims.

    ``triggerActionIds`` is a JSON array string; null, "" and "[]" mean none. Anything else that is not a
    JSON array of non-empty strings is bad input: a RecordError on this position, nothing else breaks.
    """
    raw = position.trigger_action_ids
    if raw is None or raw.strip() == "":
        return ()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested past the interpreter's limit
        raise RecordError(
            "Position", position.id, "triggerActionIds", f"not valid JSON: {raw[:80]!r}"
        ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RecordError(
            "Position",
            position.id,
            "triggerActionIds",
            f"expected a JSON array of action ids, got {raw[:80]!r}",
        )
    # keep order, drop duplicates: one claim per action
    return tuple(dict.fromkeys(value))
