"""Who gets which event, and what it carries (CONTRACT.md: the subscription table and Surprise 1)."""

from __future__ import annotations

from typing import Any

import pytest

from hedge_agent.sandbox import Sandbox

from .documents import (
    ACTION_FIELDS,
    POSITION_FIELDS,
    UPDATE_ACTION,
    UPDATE_POSITION,
    create_account,
    create_action,
    create_position,
    data,
    error_types,
)
from .wire import RealtimeClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIELDS = {
    "onUpdatePosition": POSITION_FIELDS,
    "onUpdateAction": ACTION_FIELDS,
    "onCreateAction": ACTION_FIELDS,
}
FILTER_TYPES = {
    "onUpdatePosition": "ModelSubscriptionPositionFilterInput",
    "onUpdateAction": "ModelSubscriptionActionFilterInput",
    "onCreateAction": "ModelSubscriptionActionFilterInput",
}
QUIET_S = 0.3


def subscription(field: str, form: str, selection: str | None = None) -> str:
    selection = selection or FIELDS[field]
    if form == "filter":
        return f"subscription($f: {FILTER_TYPES[field]}) {{ {field}(filter: $f) {{ {selection} }} }}"
    if form == "owner":
        return f"subscription($u: String) {{ {field}(userId: $u) {{ {selection} }} }}"
    return f"subscription {{ {field} {{ {selection} }} }}"


def variables(form: str, owner_sub: str) -> dict[str, Any]:
    if form == "filter":
        return {"f": {"userId": {"eq": owner_sub}}}
    if form == "owner":
        return {"u": owner_sub}
    return {}


async def trigger(sb: Sandbox, field: str, owner: str) -> str:
    """Make the event ``field`` subscribes to, on a record of ``owner``; returns the record id."""
    account = await create_account(sb, owner)
    position = await create_position(sb, owner, account["id"])
    if field == "onCreateAction":
        return str((await create_action(sb, owner, account["id"], position["id"]))["id"])
    if field == "onUpdateAction":
        action = await create_action(sb, owner, account["id"], position["id"])
        update = {
            "input": {"id": action["id"], "status": "EXECUTING"},
            "condition": {"status": {"eq": "PENDING"}},
        }
        data(await sb.graphql(owner, UPDATE_ACTION, update), "updateAction")
        return str(action["id"])
    update = {
        "input": {"id": position["id"], "status": "OPENING"},
        "condition": {"status": {"eq": "PENDING"}},
    }
    data(await sb.graphql(owner, UPDATE_POSITION, update), "updatePosition")
    return str(position["id"])


TABLE = [
    # (form, subscriber, outcome for an event on alice's record)
    ("filter", "alice", "delivered"),
    ("filter", "bob", "nothing"),
    ("filter", "carol", "delivered"),
    ("owner", "alice", "delivered"),
    ("owner", "bob", "rejected"),
    ("owner", "carol", "delivered"),
    ("none", "alice", "delivered"),
    ("none", "bob", "nothing"),
    ("none", "carol", "delivered"),
]


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize(("form", "subscriber", "outcome"), TABLE)
async def test_the_contract_table_of_subscription_forms_holds(
    sandbox: Sandbox, field: str, form: str, subscriber: str, outcome: str
) -> None:
    alice = sandbox.info.user("alice")
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token(subscriber))
    started = await client.start("1", subscription(field, form), variables(form, alice.sub))
    if outcome == "rejected":
        assert started["type"] == "error" and started["id"] == "1"
        assert started["payload"]["errors"][0]["errorType"] == "Unauthorized"
        assert started["payload"]["data"] == {field: None}
        await client.close()
        return
    assert started == {"id": "1", "type": "start_ack"}
    record_id = await trigger(sandbox, field, "alice")
    if outcome == "nothing":
        await client.silent_for(QUIET_S)
    else:
        frame = await client.expect("data")
        assert frame["id"] == "1"
        assert "errors" not in frame["payload"]
        event = frame["payload"]["data"][field]
        assert event["id"] == record_id and event["userId"] == alice.sub
    await client.close()


async def test_a_user_without_arguments_gets_only_his_own_events(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("bob"))
    assert (await client.start("1", subscription("onCreateAction", "none")))["type"] == "start_ack"
    await trigger(sandbox, "onCreateAction", "alice")
    own = await trigger(sandbox, "onCreateAction", "bob")
    frame = await client.expect("data")
    assert frame["payload"]["data"]["onCreateAction"]["id"] == own
    await client.close()


async def test_extra_filter_conditions_are_anded_with_the_owner_filter(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    executing = {"f": {"userId": {"eq": alice.sub}, "status": {"eq": "EXECUTING"}}}
    pending = {"f": {"userId": {"eq": alice.sub}, "status": {"in": ["PENDING", "FAILED"]}}}
    either = {"f": {"or": [{"status": {"eq": "EXECUTED"}}, {"status": {"eq": "EXECUTING"}}]}}
    assert (await client.start("exec", subscription("onUpdateAction", "filter"), executing))[
        "type"
    ] == "start_ack"
    assert (await client.start("pend", subscription("onUpdateAction", "filter"), pending))[
        "type"
    ] == "start_ack"
    assert (await client.start("or", subscription("onUpdateAction", "filter"), either))["type"] == "start_ack"
    await trigger(sandbox, "onUpdateAction", "alice")
    ids = {(await client.expect("data"))["id"], (await client.expect("data"))["id"]}
    assert ids == {"exec", "or"}
    await client.silent_for(QUIET_S)
    await client.close()


# -- Surprise 1: the payload is only what the mutation selected --------------------------------------

THIN_UPDATE = "mutation($input: UpdatePositionInput!) { updatePosition(input: $input) { id status } }"


async def _position(sb: Sandbox) -> dict[str, Any]:
    account = await create_account(sb, "alice")
    return await create_position(sb, "alice", account["id"], memo="seed")


async def test_fields_the_mutation_did_not_select_arrive_as_null(sandbox: Sandbox) -> None:
    position = await _position(sandbox)
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    started = await client.start("1", "subscription { onUpdatePosition { id status memo } }")
    assert started["type"] == "start_ack"
    data(
        await sandbox.graphql("alice", THIN_UPDATE, {"input": {"id": position["id"], "status": "OPENING"}}),
        "updatePosition",
    )
    frame = await client.expect("data")
    assert frame["payload"] == {
        "data": {"onUpdatePosition": {"id": position["id"], "status": "OPENING", "memo": None}}
    }
    await client.close()


async def test_a_non_null_field_the_mutation_did_not_select_makes_a_data_frame_with_errors(
    sandbox: Sandbox,
) -> None:
    position = await _position(sandbox)
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    started = await client.start("1", subscription("onUpdatePosition", "none"))
    assert started["type"] == "start_ack"
    data(
        await sandbox.graphql("alice", THIN_UPDATE, {"input": {"id": position["id"], "status": "OPENING"}}),
        "updatePosition",
    )
    frame = await client.expect("data")
    assert frame["payload"]["data"] == {"onUpdatePosition": None}
    error = frame["payload"]["errors"][0]
    assert error["message"] == "Cannot return null for non-nullable field Position.userId."
    assert error["path"] == ["onUpdatePosition", "userId"]
    await client.close()


@pytest.mark.parametrize("form", ["filter", "owner", "none"])
async def test_a_mutation_not_selecting_user_id_reaches_no_owner_filtered_subscriber(
    sandbox: Sandbox, form: str
) -> None:
    alice = sandbox.info.user("alice")
    position = await _position(sandbox)
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    started = await client.start(
        "1", subscription("onUpdatePosition", form, "id status"), variables(form, alice.sub)
    )
    assert started["type"] == "start_ack"
    admin = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    assert (await admin.start("1", "subscription { onUpdatePosition { id status } }"))["type"] == "start_ack"
    data(
        await sandbox.graphql("alice", THIN_UPDATE, {"input": {"id": position["id"], "status": "OPENING"}}),
        "updatePosition",
    )
    # the ADMIN's unfiltered subscription proves the event was published
    assert (await admin.expect("data"))["payload"]["data"]["onUpdatePosition"]["id"] == position["id"]
    await client.silent_for(QUIET_S)
    await client.close()
    await admin.close()


async def test_a_filter_on_status_needs_status_in_the_mutation_selection(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    position = await _position(sandbox)
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    flt = {"f": {"userId": {"eq": alice.sub}, "status": {"eq": "OPENING"}}}
    assert (await client.start("1", subscription("onUpdatePosition", "filter"), flt))["type"] == "start_ack"
    no_status = "mutation($input: UpdatePositionInput!) { updatePosition(input: $input) { id userId } }"
    data(
        await sandbox.graphql("alice", no_status, {"input": {"id": position["id"], "status": "OPENING"}}),
        "updatePosition",
    )
    await client.silent_for(QUIET_S)
    await client.close()


# -- failed mutations publish nothing -----------------------------------------------------------------


async def test_failed_mutations_publish_nothing(sandbox: Sandbox) -> None:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    assert (await client.start("a", subscription("onUpdateAction", "none")))["type"] == "start_ack"
    assert (await client.start("p", subscription("onUpdatePosition", "none")))["type"] == "start_ack"
    lost_claim = {
        "input": {"id": action["id"], "status": "EXECUTING"},
        "condition": {"status": {"eq": "EXECUTED"}},
    }
    assert error_types(await sandbox.graphql("alice", UPDATE_ACTION, lost_claim)) == [
        "DynamoDB:ConditionalCheckFailedException"
    ]
    not_hers = {"input": {"id": action["id"], "status": "EXECUTING"}}
    assert error_types(await sandbox.graphql("bob", UPDATE_ACTION, not_hers)) == ["Unauthorized"]
    no_status = {"input": {"id": position["id"], "memo": "x"}}
    assert error_types(await sandbox.graphql("alice", UPDATE_POSITION, no_status)) == [None]
    published = sandbox.stats.events_published
    await client.silent_for(QUIET_S)
    assert sandbox.stats.events_published == published
    await client.close()


async def test_a_mutation_selection_through_a_fragment_is_what_subscribers_get(sandbox: Sandbox) -> None:
    position = await _position(sandbox)
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    assert (await client.start("1", subscription("onUpdatePosition", "none", "id userId status memo")))[
        "type"
    ] == "start_ack"
    mutation = (
        "mutation($input: UpdatePositionInput!) { updatePosition(input: $input) { ...Core } } "
        "fragment Core on Position { id userId ... on Position { status } }"
    )
    data(
        await sandbox.graphql("alice", mutation, {"input": {"id": position["id"], "status": "OPENING"}}),
        "updatePosition",
    )
    event = (await client.expect("data"))["payload"]["data"]["onUpdatePosition"]
    assert event == {
        "id": position["id"],
        "userId": sandbox.info.user("alice").sub,
        "status": "OPENING",
        "memo": None,
    }
    await client.close()
