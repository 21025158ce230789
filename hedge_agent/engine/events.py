"""What comes out of :meth:`CloudClient.events`: one stream of validated records and link-state changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hedge_agent.domain.models import Action, Position
from hedge_agent.errors import RecordError

RecordSource = Literal["create", "update", "catchup"]
LinkStateName = Literal["connecting", "connected", "disconnected", "auth_failed"]


@dataclass(frozen=True)
class RecordEvent:
    """A validated record. ``catchup`` records come from the index queries after a (re)subscribe, or from
    re-reading a record whose subscription payload was malformed."""

    record: Position | Action
    source: RecordSource
    #: time.monotonic() when the frame (or the query response) arrived
    received_at: float


@dataclass(frozen=True)
class BadRecord:
    """A payload that did not parse; ``error`` names the record type, id (when known) and field."""

    error: RecordError
    #: "create" | "update" (subscription frame) | "catchup" (query result)
    source: str


@dataclass(frozen=True)
class LinkState:
    """Emitted on changes only. ``auth_failed`` means signing in again is needed (the link keeps retrying)."""

    state: LinkStateName
    detail: str = ""


@dataclass(frozen=True)
class CaughtUp:
    """After each (re)subscribe + catch-up: every record active on the server has been delivered since the
    previous CaughtUp, and live events follow. The engine reconciles on it."""

    generation: int


CloudEvent = RecordEvent | BadRecord | LinkState | CaughtUp
