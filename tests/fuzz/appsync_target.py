"""Fuzz target: AppSync payloads and subscription frames -> domain records.

Two kinds of case:
- a payload handed straight to ``parse_position`` / ``parse_action`` / ``parse_account`` / ``parse_user``
  (and, for a position, ``trigger_action_ids``);
- one to four realtime frames as text, through the realtime transport's frame decoder and the client's
  frame handler (``CloudClient._on_frame``: ownership filter, parse, de-duplication, BadRecord), with no
  socket: the client's own parsing and bookkeeping is what is under test, not gql's socket loop.

Promise checked: a record, or a RecordError whose record_type/field/reason are non-empty strings and whose
message names the payload's id; a frame the transport cannot read is a gql transport error (which the link
turns into a reconnect); a record that is accepted is usable (finite numbers, re-parses from its own wire
form, trigger ids are a tuple of ids). Nothing else escapes.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from gql.transport.exceptions import TransportProtocolError, TransportQueryError, TransportServerError
from hypothesis import strategies as st
from structlog.testing import capture_logs

from hedge_agent.cloud.auth import CognitoAuth
from hedge_agent.cloud.client import CloudClient
from hedge_agent.cloud.documents import SUBSCRIPTIONS
from hedge_agent.cloud.events import BadRecord, RecordEvent
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
    Record,
    parse_account,
    parse_action,
    parse_position,
    parse_user,
    trigger_action_ids,
)
from hedge_agent.errors import RecordError

from .common import (
    ANY_TEXT,
    DEEP_TEXT,
    JSONISH,
    JUNK,
    SERIALIZABLE_JUNK,
    Outcome,
    Target,
    dumps,
    expect,
    mutated,
    text_edits,
)

SUB = "user-sub-1"
PARSERS = {"Position": parse_position, "Action": parse_action, "Account": parse_account, "User": parse_user}

# -- valid payloads -----------------------------------------------------------------------------------------

IDS = st.one_of(st.sampled_from(["p1", "p2", "a1", "a2"]), st.uuids().map(str), st.text(min_size=1, max_size=20))
#: a small pool, so that a sequence of frames revisits the same record with different versions
TIMES = st.one_of(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ),
    st.sampled_from(["2025-01-01T00:00:00.000Z", "2025-01-01T00:00:01.000Z", "2025-01-01T09:00:00+09:00"]),
)
MAYBE_TIME = st.none() | TIMES
PRICE = st.floats(min_value=1e-6, max_value=1e6)
OWNER = st.sampled_from([SUB, SUB, SUB, "someone-else"])


def _enum(e: type[Any]) -> st.SearchStrategy[str]:
    return st.sampled_from([m.value for m in e])


def _trigger_ids() -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.just(""),
        st.lists(IDS, max_size=4).map(dumps),
        JSONISH.map(dumps),
        st.integers(1, 200_000).map(lambda d: "[" * d),
    )


POSITION = st.fixed_dictionaries(
    {
        "id": IDS,
        "userId": OWNER,
        "accountId": IDS,
        "executionType": _enum(ExecutionType),
        "status": _enum(PositionStatus),
        "symbol": _enum(Symbol),
        "volume": st.floats(min_value=0.01, max_value=100),
        "entryPrice": st.none() | PRICE,
        "entryTime": MAYBE_TIME,
        "exitPrice": st.none() | PRICE,
        "exitTime": MAYBE_TIME,
        "exitReason": st.none() | st.text(max_size=20),
        "trailWidth": st.floats(min_value=0, max_value=500),
        "triggerActionIds": _trigger_ids(),
        "mtTicket": st.none() | st.integers(1, 10**9).map(str),
        "memo": st.none() | st.text(max_size=20),
        "createdAt": MAYBE_TIME,
        "updatedAt": MAYBE_TIME,
        "__typename": st.just("Position"),
    }
)
ACTION = st.fixed_dictionaries(
    {
        "id": IDS,
        "userId": OWNER,
        "accountId": IDS,
        "positionId": IDS,
        "triggerPositionId": st.none() | st.just("") | IDS,
        "type": _enum(ActionType),
        "status": _enum(ActionStatus),
        "createdAt": MAYBE_TIME,
        "updatedAt": MAYBE_TIME,
        "__typename": st.just("Action"),
    }
)
ACCOUNT = st.fixed_dictionaries(
    {
        "id": IDS,
        "userId": OWNER,
        "brokerType": st.sampled_from(["MT4", "MT5"]),
        "accountNumber": st.integers(1, 10**8).map(str),
        "serverName": st.text(max_size=20),
        "displayName": st.text(max_size=20),
        "balance": st.floats(-1e9, 1e9),
        "credit": st.floats(0, 1e9),
        "equity": st.floats(-1e9, 1e9),
        "isActive": st.booleans(),
        "lastUpdated": TIMES,
        "createdAt": MAYBE_TIME,
        "updatedAt": MAYBE_TIME,
    }
)
USER = st.fixed_dictionaries(
    {
        "id": IDS,
        "email": st.emails(),
        "name": st.none() | st.text(max_size=20),
        "role": _enum(UserRole),
        "pcStatus": _enum(PCStatus),
        "isActive": st.booleans(),
        "createdAt": MAYBE_TIME,
        "updatedAt": MAYBE_TIME,
    }
)
VALID = {"Position": POSITION, "Action": ACTION, "Account": ACCOUNT, "User": USER}


def payloads(kind: str, junk: st.SearchStrategy[Any] = JUNK) -> st.SearchStrategy[Any]:
    """Valid, nearly valid (the bulk), and anything at all."""
    valid = VALID[kind]
    nearly = valid.flatmap(lambda v: mutated(v, junk))
    return st.one_of(valid, nearly, nearly, JSONISH, junk)


PAYLOAD_CASES = st.sampled_from(sorted(VALID)).flatmap(lambda k: st.tuples(st.just(k), payloads(k)))


# -- frames -------------------------------------------------------------------------------------------------

GRAPHQL_ERRORS = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {"message": ANY_TEXT, "errorType": st.none() | ANY_TEXT},
            optional={"path": st.lists(st.one_of(ANY_TEXT, st.integers(), JSONISH), max_size=4)},
        ),
        max_size=3,
    ),
    JSONISH,
)


@st.composite
def data_frame(draw: st.DrawFn, doc_index: int) -> dict[str, Any]:
    doc = SUBSCRIPTIONS[doc_index]
    payload = draw(payloads(doc.record_type, SERIALIZABLE_JUNK) | st.none())
    body: dict[str, Any] = {"data": {doc.field: payload}}
    if draw(st.integers(0, 4)) == 0:
        body["errors"] = draw(GRAPHQL_ERRORS)
    return {"type": "data", "id": str(doc_index + 1), "payload": body}


CONTROL_FRAMES = st.sampled_from(
    [
        '{"type":"ka"}',
        '{"type":"start_ack","id":"1"}',
        '{"type":"start_ack","id":"x"}',
        '{"type":"connection_ack","payload":{"connectionTimeoutMs":300000}}',
        '{"type":"complete","id":"1"}',
        '{"type":"error","id":"1","payload":{"errors":[{"errorType":"Unauthorized"}]}}',
        '{"type":"error","payload":{"errors":[]}}',
        '{"type":"connection_error","payload":{"errors":[]}}',
    ]
)


@st.composite
def frame_text(draw: st.DrawFn, doc_index: int) -> str:
    frame = draw(data_frame(doc_index))
    how = draw(st.integers(0, 9))
    if how <= 4:
        return dumps(frame)
    if how <= 6:
        return dumps(draw(mutated(frame, SERIALIZABLE_JUNK)))
    if how == 7:
        return draw(text_edits(dumps(frame)))
    if how == 8:
        return draw(CONTROL_FRAMES)
    return draw(st.one_of(ANY_TEXT, DEEP_TEXT, SERIALIZABLE_JUNK.map(dumps)))


FRAME_CASES = st.lists(
    st.integers(0, len(SUBSCRIPTIONS) - 1).flatmap(lambda i: st.tuples(st.just(i), frame_text(i))),
    min_size=1,
    max_size=4,
)

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
        expect(e.record_id == record_id, f"RecordError names id {e.record_id!r}, the payload had {record_id!r}")
        expect(record_id in str(e), f"the message does not name the id {record_id!r}: {e}")


def check_usable(record: Record, kind: str, record_id: str | None) -> None:
    expect(type(record).__name__ == kind, f"parsed a {kind} payload into a {type(record).__name__}")
    expect(record.id == record_id, f"record id {record.id!r}, payload id {record_id!r}")
    for name, value in record:
        if isinstance(value, float):
            expect(math.isfinite(value), f"{kind} {record.id}: accepted a non-finite {name} = {value!r}")
    expect(PARSERS[kind](record.to_wire()) == record, f"{kind} {record.id} does not re-parse from its wire form")
    if kind == "Position":
        try:
            ids = trigger_action_ids(cast(Any, record))
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
        "ws://127.0.0.1:9/graphql", host="127.0.0.1:9", token="t", keep_alive_timeout_s=None, connect_timeout_s=1
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


Case = tuple[str, Any]


def check(case: Case) -> Outcome:
    what, body = case
    return check_payload(body) if what == "payload" else check_frames(body)


TARGET: Target[Case] = Target(
    "appsync",
    st.one_of(
        PAYLOAD_CASES.map(lambda c: ("payload", c)),
        FRAME_CASES.map(lambda c: ("frames", c)),
    ),
    check,
)
