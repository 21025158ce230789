"""Enums of the backend schema (shared/backend/schema.graphql), plus the order side."""

from __future__ import annotations

from enum import StrEnum


class UserRole(StrEnum):
    CLIENT = "CLIENT"
    ADMIN = "ADMIN"


class PCStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class ExecutionType(StrEnum):
    ENTRY = "ENTRY"
    EXIT = "EXIT"


class PositionStatus(StrEnum):
    PENDING = "PENDING"
    OPENING = "OPENING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    STOPPED = "STOPPED"
    CANCELED = "CANCELED"


class Symbol(StrEnum):
    USDJPY = "USDJPY"
    EURUSD = "EURUSD"
    EURGBP = "EURGBP"
    XAUUSD = "XAUUSD"


class ActionType(StrEnum):
    ENTRY = "ENTRY"
    CLOSE = "CLOSE"


class ActionStatus(StrEnum):
    PENDING = "PENDING"
    EXECUTING = "EXECUTING"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


def side(execution_type: ExecutionType) -> Side:
    """The one place that maps the schema's executionType to an order side (reference implementation:
    ENTRY means BUY, EXIT means SELL; the schema has no side field)."""
    return Side.BUY if execution_type is ExecutionType.ENTRY else Side.SELL
