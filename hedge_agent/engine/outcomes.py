"""Mutation outcomes: what happened, as values. Losing a race or being denied is an answer, not a crash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from hedge_agent.domain.models import Record

T = TypeVar("T")


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The write took effect; ``record`` is the server's full record after it."""

    record: T


@dataclass(frozen=True)
class ConditionFailed:
    """The record was not in the expected status (someone else moved it first)."""

    message: str
    #: the record as read right after the failure, when that read succeeded
    current: Record | None = None


@dataclass(frozen=True)
class Unauthorized:
    """The server denied the write (not the owner, or the sign-in is no longer valid)."""

    message: str


@dataclass(frozen=True)
class NotFound:
    message: str


@dataclass(frozen=True)
class Failed:
    """Gave up after bounded retries (``retryable``: trying again later may work) or a permanent error."""

    message: str
    retryable: bool


MutationOutcome = Ok[T] | ConditionFailed | Unauthorized | NotFound | Failed
