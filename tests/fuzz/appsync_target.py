"""Fuzz target: AppSync payloads and subscription frames -> domain records.

Two kinds of case:
- a payload handed straight to ``parse_position`` / ``parse_action`` / ``parse_account`` / ``parse_user``
  (and, for a position, ``trigger_action_ids``);
- one to four realtime frames as text, through the realtime transport's frame decoder and the client's
  frame handler (``CloudClient._on_frame``: ownership filter, parse, de-duplication, BadRecord), with no
  socket: the client's own decoding and bookkeeping is under test, not gql's socket loop.

Promise checked: a record, or a RecordError whose record_type/field/reason are non-empty strings and whose
message names the payload's id; a frame the transport cannot read is a gql transport error (which the link
turns into a reconnect); an accepted record is usable (finite numbers, re-parses from its own wire form,
trigger ids are a tuple of ids). Nothing else escapes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from gql.transport.exceptions import TransportProtocolError, TransportQueryError, TransportServerError
from structlog.testing import capture_logs

from hedge_agent.cloud.auth import CognitoAuth
from hedge_agent.cloud.client import CloudClient
from hedge_agent.cloud.documents import SUBSCRIPTIONS
from hedge_agent.cloud.realtime import RealtimeSession, _Transport
from hedge_agent.config import AppSyncConfig
from hedge_agent.domain.enums import (
    ActionStatus,
    ActionType,
    ExecutionType,
    PCStatus,
    PositionStatus,
    Symbol,
    UserRole,
)
from hedge_agent.domain.models import (
    Position,
    Record,
    parse_account,
    parse_action,
    parse_position,
    parse_user,
    trigger_action_ids,
)
from hedge_agent.engine.events import BadRecord, RecordEvent
from hedge_agent.errors import RecordError

from .common import Gen, Outcome, Target, dumps, expect

SUB = "user-sub-1"
PARSERS = {"Position": parse_position, "Action": parse_action, "Account": parse_account, "User": parse_user}
KINDS = tuple(sorted(PARSERS))

# -- valid payloads -----------------------------------------------------------------------------------------

#: a small pool of ids and times, so that a sequence of frames revisits a record with other versions
_IDS = ("p1", "p2", "a1", "a2", "299fe909-cced-4ffa-b919-2e5048982560")
_TIMES = (
    "2025-01-01T00:00:00.000Z",
    "2025-01-01T00:00:01.000Z",
    "2025-01-01T09:00:00.000+09:00",
    "2025-01-01T00:00:02",
)


def _id(g: Gen) -> str:
    return g.pick(_IDS) if g.chance(0.7) else g.text(20) or "x"


def _time(g: Gen) -> str:
    if g.chance(0.6):
        return g.pick(_TIMES)
    moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=g.between(0, 3_000_000_000))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _maybe_time(g: Gen) -> str | None:
    return None if g.chance(0.3) else _time(g)


def _price(g: Gen) -> float:
    return round(g.r.uniform(0.5, 3000), g.between(0, 5))


def _trigger_ids(g: Gen) -> str | None:
    roll = g.between(0, 5)
    if roll == 0:
        return None
    if roll == 1:
        return ""
    if roll <= 3:
        return dumps([_id(g) for _ in range(g.between(0, 4))])
    return dumps(g.json()) if roll == 4 else g.deep_text()


def position(g: Gen) -> dict[str, Any]:
    return {
        "id": _id(g),
        "userId": SUB if g.chance(0.85) else "someone-else",
        "accountId": _id(g),
        "executionType": g.pick(list(ExecutionType)).value,
        "status": g.pick(list(PositionStatus)).value,
        "symbol": g.pick(list(Symbol)).value,
        "volume": round(g.r.uniform(0.01, 100), 2),
        "entryPrice": None if g.chance(0.5) else _price(g),
        "entryTime": _maybe_time(g),
        "exitPrice": None if g.chance(0.7) else _price(g),
        "exitTime": _maybe_time(g),
        "exitReason": None if g.chance(0.7) else g.text(20),
        "trailWidth": g.pick((0.0, 5.0, 10.0, round(g.r.uniform(0, 500), 1))),
        "triggerActionIds": _trigger_ids(g),
        "mtTicket": None if g.chance(0.5) else str(g.between(1, 10**9)),
        "memo": None if g.chance(0.5) else g.text(20),
        "createdAt": _maybe_time(g),
        "updatedAt": _maybe_time(g),
        "__typename": "Position",
    }


def action(g: Gen) -> dict[str, Any]:
    return {
        "id": _id(g),
        "userId": SUB if g.chance(0.85) else "someone-else",
        "accountId": _id(g),
        "positionId": _id(g),
        "triggerPositionId": g.pick((None, "", _id(g))),
        "type": g.pick(list(ActionType)).value,
        "status": g.pick(list(ActionStatus)).value,
        "createdAt": _maybe_time(g),
        "updatedAt": _maybe_time(g),
        "__typename": "Action",
    }


def account(g: Gen) -> dict[str, Any]:
    return {
        "id": _id(g),
        "userId": SUB,
        "brokerType": g.pick(("MT4", "MT5")),
        "accountNumber": str(g.between(1, 10**8)),
        "serverName": g.text(20),
        "displayName": g.text(20),
        "balance": round(g.r.uniform(-1e6, 1e9), 2),
        "credit": round(g.r.uniform(0, 1e6), 2),
        "equity": round(g.r.uniform(-1e6, 1e9), 2),
        "isActive": g.chance(0.5),
        "lastUpdated": _time(g),
        "createdAt": _maybe_time(g),
        "updatedAt": _maybe_time(g),
    }


def user(g: Gen) -> dict[str, Any]:
    return {
        "id": _id(g),
        "email": g.pick(("trader@example.com", g.text(30))),
        "name": None if g.chance(0.5) else g.text(20),
        "role": g.pick(list(UserRole)).value,
        "pcStatus": g.pick(list(PCStatus)).value,
        "isActive": g.chance(0.5),
        "createdAt": _maybe_time(g),
        "updatedAt": _maybe_time(g),
    }


VALID: dict[str, Callable[[Gen], dict[str, Any]]] = {
    "Position": position,
    "Action": action,
    "Account": account,
    "User": user,
}


def payload(g: Gen, kind: str, junk: Callable[[], Any] | None = None) -> Any:
    """Nearly valid (the bulk), valid, or anything at all."""
    junk = junk or g.junk
    roll = g.r.random()
    if roll < 0.6:
        return g.mutate(VALID[kind](g), junk)
    if roll < 0.85:
        return VALID[kind](g)
    return junk()


# -- frames -------------------------------------------------------------------------------------------------

CONTROL_FRAMES = (
    '{"type":"ka"}',
    '{"type":"start_ack","id":"1"}',
    '{"type":"start_ack","id":"x"}',
    '{"type":"connection_ack","payload":{"connectionTimeoutMs":300000}}',
    '{"type":"complete","id":"1"}',
    '{"type":"error","id":"1","payload":{"errors":[{"errorType":"Unauthorized"}]}}',
    '{"type":"error","payload":{"errors":[]}}',
    '{"type":"connection_error","payload":{"errors":[]}}',
)


def graphql_errors(g: Gen) -> Any:
    """What AppSync puts next to a payload whose selection lacked non-null fields, or junk."""
    if g.chance(0.3):
        return g.serializable_junk()
    return [
        {
            "message": g.pick(("Cannot return null for non-nullable type", "", g.text())),
            "errorType": g.pick((None, "", "Unauthorized", g.text())),
            "path": g.pick(
                ([], ["onUpdatePosition", "accountId"], [g.scalar() for _ in range(g.between(0, 3))])
            ),
        }
        for _ in range(g.between(0, 2))
    ]


def data_frame(g: Gen, doc_index: int) -> dict[str, Any]:
    doc = SUBSCRIPTIONS[doc_index]
    body: dict[str, Any] = {
        "data": {doc.field: None if g.chance(0.05) else payload(g, doc.record_type, g.serializable_junk)}
    }
    if g.chance(0.2):
        body["errors"] = graphql_errors(g)
    return {"type": "data", "id": str(doc_index + 1), "payload": body}


def frame_text(g: Gen, doc_index: int) -> str:
    roll = g.between(0, 9)
    if roll <= 4:
        return dumps(data_frame(g, doc_index))
    if roll <= 6:
        return dumps(g.mutate(data_frame(g, doc_index), g.serializable_junk))
    if roll == 7:
        return g.damage(dumps(data_frame(g, doc_index)))
    if roll == 8:
        return g.pick(CONTROL_FRAMES)
    return g.pick((g.text(), g.deep_text(), dumps(g.serializable_junk())))


Case = tuple[str, Any]


def generate(g: Gen) -> Case:
    if g.chance(0.5):
        kind = g.pick(KINDS)
        return "payload", (kind, payload(g, kind))
    frames = []
    for _ in range(g.between(1, 4)):
        doc_index = g.between(0, len(SUBSCRIPTIONS) - 1)
        frames.append((doc_index, frame_text(g, doc_index)))
    return "frames", frames


# -- the promise --------------------------------------------------------------------------------------------


def _payload_id(payload: Any) -> str | None:
    raw = payload.get("id") if isinstance(payload, dict) else None
    return raw if isinstance(raw, str) and raw else None


def check_record_error(e: RecordError, kind: str, record_id: str | None) -> None:
    for name in ("record_type", "field", "reason"):
        value = getattr(e, name)
        expect(isinstance(value, str) and bool(value), f"RecordError.{name} is empty: {e!r}")
    expect(e.record_type == kind, f"RecordError names {e.record_type}, the payload was a {kind}")
    if record_id is not None:
        expect(
            e.record_id == record_id, f"RecordError names id {e.record_id!r}, the payload had {record_id!r}"
        )
        expect(record_id in str(e), f"the message does not name the id {record_id!r}: {e}")


def check_usable(record: Record, kind: str, record_id: str | None) -> None:
    expect(type(record).__name__ == kind, f"parsed a {kind} payload into a {type(record).__name__}")
    expect(record.id == record_id, f"record id {record.id!r}, payload id {record_id!r}")
    for name, value in record:
        if isinstance(value, float):
            expect(math.isfinite(value), f"{kind} {record.id}: accepted a non-finite {name} = {value!r}")
    expect(
        PARSERS[kind](record.to_wire()) == record, f"{kind} {record.id} does not re-parse from its wire form"
    )
    if isinstance(record, Position):
        try:
            ids = trigger_action_ids(record)
        except RecordError as e:
            check_record_error(e, "Position", record.id)
            expect(e.field == "triggerActionIds", f"a trigger id problem names field {e.field!r}")
        else:
            expect(all(isinstance(i, str) and i for i in ids), f"trigger ids {ids!r}")


def check_payload(case: tuple[str, Any]) -> Outcome:
    kind, payload = case
    try:
        record = PARSERS[kind](payload)
    except RecordError as e:
        check_record_error(e, kind, _payload_id(payload))
        return "rejected"
    check_usable(record, kind, _payload_id(payload))
    return "accepted"


_TRANSPORT_ERRORS = (TransportProtocolError, TransportServerError, TransportQueryError)
_APPSYNC = AppSyncConfig(graphql_url="http://127.0.0.1:9/graphql")


def _transport() -> _Transport:
    return _Transport(
        "ws://127.0.0.1:9/graphql",
        host="127.0.0.1:9",
        token="t",
        keep_alive_timeout_s=None,
        connect_timeout_s=1,
    )


async def _frames(frames: list[tuple[int, str]]) -> Outcome:
    transport = _transport()
    # only ``sub`` is read on the frame path; nothing here ever signs in
    client = CloudClient(_APPSYNC, cast(CognitoAuth, SimpleNamespace(sub=SUB)), dedupe_capacity=8)
    live = cast(RealtimeSession, object())  # not held for a catch-up: events are delivered at once
    outcome: Outcome = "accepted"
    try:
        for doc_index, text in frames:
            try:
                _, _, result = transport._parse_answer(text)
            except _TRANSPORT_ERRORS as e:
                expect(bool(str(e)), "a transport error without a message")
                outcome = "rejected"
                continue
            if result is None:
                continue  # a control frame (ka, start_ack, ...)
            doc = SUBSCRIPTIONS[doc_index]
            before = client.stats.delivered + client.stats.duplicates + client.stats.stale
            before += client.stats.foreign + client.stats.bad
            client._on_frame(live, doc, result)
            after = client.stats.delivered + client.stats.duplicates + client.stats.stale
            after += client.stats.foreign + client.stats.bad
            expect(after == before + 1, f"a frame was counted {after - before} times")
            emitted = []
            while not client._queue.empty():
                emitted.append(client._queue.get_nowait())
            expect(len(emitted) <= 1, f"one frame gave {len(emitted)} events")
            payload = result.data.get(doc.field) if isinstance(result.data, dict) else None
            for event in emitted:
                if isinstance(event, BadRecord):
                    check_record_error(event.error, doc.record_type, _payload_id(payload))
                    outcome = "rejected"
                else:
                    expect(isinstance(event, RecordEvent), f"unexpected event {event!r}")
                    record = cast(RecordEvent, event).record
                    expect(record.user_id == SUB, "another user's record was delivered")
                    check_usable(record, doc.record_type, _payload_id(payload))
    finally:
        await client.close()
    return outcome


def check_frames(frames: list[tuple[int, str]]) -> Outcome:
    with capture_logs():  # a bad record is logged at warning: keep 10,000 of them off the console
        return asyncio.run(_frames(frames))


def check(case: Case) -> Outcome:
    what, body = case
    return check_payload(body) if what == "payload" else check_frames(body)


TARGET: Target[Case] = Target("appsync", generate, check)
