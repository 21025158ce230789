"""The generated resolvers' data rules: conditional writes, the composite key rule, key conditions,
paging as DynamoDB pages, server-set timestamps (CONTRACT.md 'Surprises')."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hedge_agent.sandbox import Sandbox

from .documents import (
    ACTION_FIELDS,
    ACTIONS_BY_USER_AND_STATUS,
    CREATE_ACCOUNT,
    GET_ACTION,
    POSITIONS_BY_USER_AND_STATUS,
    UPDATE_ACTION,
    UPDATE_POSITION,
    create_account,
    create_action,
    create_position,
    data,
    error_types,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CLAIM = {"status": "EXECUTING"}
FROM_PENDING = {"status": {"eq": "PENDING"}}


async def _action(sandbox: Sandbox, **fields: Any) -> dict[str, Any]:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    return await create_action(sandbox, "alice", account["id"], position["id"], **fields)


async def test_a_conditional_claim_is_won_once_and_lost_once(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    claim = {"input": {"id": action["id"], **CLAIM}, "condition": FROM_PENDING}
    won = await sandbox.graphql("alice", UPDATE_ACTION, claim)
    assert data(won, "updateAction")["status"] == "EXECUTING"
    lost = await sandbox.graphql("alice", UPDATE_ACTION, claim)
    assert lost["data"] == {"updateAction": None}
    (error,) = lost["errors"]
    assert error["errorType"] == "DynamoDB:ConditionalCheckFailedException"
    assert error["message"] == "The conditional request failed"
    assert error["data"] is None and error["path"] == ["updateAction"]


async def test_concurrent_claims_have_exactly_one_winner(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    claim = {"input": {"id": action["id"], **CLAIM}, "condition": FROM_PENDING}
    results = await asyncio.gather(
        *(sandbox.graphql(user, UPDATE_ACTION, claim) for user in ("alice", "carol") * 4)
    )
    winners = [result for result in results if not result.get("errors")]
    assert len(winners) == 1
    assert all(
        error_types(r) == ["DynamoDB:ConditionalCheckFailedException"] for r in results if r not in winners
    )


async def test_the_inline_claim_document_with_enum_literals_works(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    claim = (
        f'mutation {{ updateAction(input: {{id: "{action["id"]}", status: EXECUTING}}, '
        f"condition: {{status: {{eq: PENDING}}}}) {{ {ACTION_FIELDS} }} }}"
    )
    assert data(await sandbox.graphql("alice", claim), "updateAction")["status"] == "EXECUTING"


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"and": [{"status": {"eq": "PENDING"}}, {"type": {"eq": "ENTRY"}}]}, True),
        ({"and": [{"status": {"eq": "PENDING"}}, {"type": {"eq": "CLOSE"}}]}, False),
        ({"or": [{"status": {"eq": "FAILED"}}, {"type": {"eq": "ENTRY"}}]}, True),
        ({"not": {"status": {"eq": "PENDING"}}}, False),
        ({"status": {"ne": "EXECUTED"}}, True),
        ({"triggerPositionId": {"attributeExists": False}}, True),
        ({"triggerPositionId": {"attributeExists": True}}, False),
        ({"triggerPositionId": {"ne": "x"}}, True),
        ({"positionId": {"beginsWith": "no-such-prefix"}}, False),
    ],
)
async def test_conditions_follow_dynamodb_semantics(sandbox: Sandbox, condition: dict, holds: bool) -> None:
    action = await _action(sandbox)
    body = await sandbox.graphql(
        "alice", UPDATE_ACTION, {"input": {"id": action["id"], **CLAIM}, "condition": condition}
    )
    assert error_types(body) == ([] if holds else ["DynamoDB:ConditionalCheckFailedException"])


@pytest.mark.parametrize("condition", [None, FROM_PENDING])
async def test_updating_a_missing_record_is_unauthorized_as_the_generated_owner_check_says(
    sandbox: Sandbox, condition: dict | None
) -> None:
    # the generated resolvers read the item for the owner check first: nobody owns a missing item
    body = await sandbox.graphql(
        "alice", UPDATE_ACTION, {"input": {"id": "no-such-action", **CLAIM}, "condition": condition}
    )
    assert error_types(body) == ["Unauthorized"]
    assert body["data"] == {"updateAction": None}


async def test_an_admin_updating_a_missing_record_fails_the_key_exists_condition(sandbox: Sandbox) -> None:
    body = await sandbox.graphql("carol", UPDATE_ACTION, {"input": {"id": "no-such-action", **CLAIM}})
    assert error_types(body) == ["DynamoDB:ConditionalCheckFailedException"]


async def test_create_with_an_existing_id_fails_its_condition(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    with pytest.raises(AssertionError, match="ConditionalCheckFailed"):
        await create_action(sandbox, "alice", action["accountId"], action["positionId"], id=action["id"])


async def test_every_position_update_must_include_status(sandbox: Sandbox) -> None:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    body = await sandbox.graphql("alice", UPDATE_POSITION, {"input": {"id": position["id"], "memo": "x"}})
    assert body["data"] == {"updatePosition": None}
    (error,) = body["errors"]
    assert error["errorType"] is None
    assert error["message"] == (
        "When updating any part of the composite sort key for @index 'byUserIdAndStatus', "
        "you must provide all fields for the key. Missing key: 'status'."
    )
    with_status = {
        "input": {"id": position["id"], "memo": "x", "status": "PENDING"},
        "condition": FROM_PENDING,
    }
    assert data(await sandbox.graphql("alice", UPDATE_POSITION, with_status), "updatePosition")["memo"] == "x"


async def test_the_server_sets_timestamps_and_a_client_updated_at_wins_on_position(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    assert action["createdAt"] == action["updatedAt"] and action["createdAt"].endswith("Z")
    await asyncio.sleep(0.01)
    updated = data(
        await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], **CLAIM}}),
        "updateAction",
    )
    assert updated["createdAt"] == action["createdAt"] and updated["updatedAt"] > action["updatedAt"]

    position = await create_position(
        sandbox, "alice", action["accountId"], updatedAt="2020-01-01T00:00:00.000Z"
    )
    assert position["updatedAt"] == "2020-01-01T00:00:00.000Z" and position["createdAt"] > "2024"
    chosen = {"input": {"id": position["id"], "status": "OPENING", "updatedAt": "2021-06-01T00:00:00.000Z"}}
    moved = data(await sandbox.graphql("alice", UPDATE_POSITION, chosen), "updatePosition")
    assert moved["updatedAt"] == "2021-06-01T00:00:00.000Z"
    stamped = data(
        await sandbox.graphql("alice", UPDATE_POSITION, {"input": {"id": position["id"], "status": "OPEN"}}),
        "updatePosition",
    )
    assert stamped["updatedAt"] > "2024"


async def test_an_aws_date_time_without_zone_is_a_validation_error(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    account = {
        "userId": alice.sub, "brokerType": "MT5", "accountNumber": "1", "serverName": "s", "displayName": "d",
        "balance": 1.0, "credit": 0.0, "equity": 1.0, "isActive": True, "lastUpdated": "2025-01-01T00:00:00",
    }  # fmt: skip
    body = await sandbox.graphql("alice", CREATE_ACCOUNT, {"input": account})
    assert body["data"] is None and "lastUpdated" in body["errors"][0]["message"]


# -- key conditions -----------------------------------------------------------------------------------


async def _positions_in_statuses(sandbox: Sandbox, *statuses: str) -> tuple[str, dict[str, str]]:
    account = await create_account(sandbox, "alice")
    ids = {}
    for status in statuses:
        ids[status] = (await create_position(sandbox, "alice", account["id"], status=status))["id"]
    return account["id"], ids


async def _by_status(sandbox: Sandbox, account_id: str, key: dict, **extra: Any) -> dict[str, Any]:
    variables = {
        "userId": sandbox.info.user("alice").sub,
        "k": key,
        "filter": {"accountId": {"eq": account_id}, **extra.pop("filter", {})},
        "limit": 1000,
        **extra,
    }
    return dict(
        data(
            await sandbox.graphql("alice", POSITIONS_BY_USER_AND_STATUS, variables),
            "getPositionsByUserAndStatus",
        )
    )


async def test_begins_with_open_also_matches_opening(sandbox: Sandbox) -> None:
    account_id, ids = await _positions_in_statuses(sandbox, "OPEN", "OPENING", "CLOSING")
    found = await _by_status(sandbox, account_id, {"beginsWith": {"status": "OPEN"}})
    assert {item["id"] for item in found["items"]} == {ids["OPEN"], ids["OPENING"]}
    exact = await _by_status(
        sandbox, account_id, {"beginsWith": {"status": "OPEN"}}, filter={"status": {"eq": "OPEN"}}
    )
    assert [item["id"] for item in exact["items"]] == [ids["OPEN"]]


async def test_eq_needs_the_whole_composite_key_and_between_bounds_it(sandbox: Sandbox) -> None:
    account_id, ids = await _positions_in_statuses(sandbox, "OPENING", "OPEN")
    assert (await _by_status(sandbox, account_id, {"eq": {"status": "OPENING"}}))["items"] == []
    opening = data(
        await sandbox.graphql("alice", f'query {{ getPosition(id: "{ids["OPENING"]}") {{ updatedAt }} }}'),
        "getPosition",
    )
    whole = {"eq": {"status": "OPENING", "updatedAt": opening["updatedAt"]}}
    assert [item["id"] for item in (await _by_status(sandbox, account_id, whole))["items"]] == [
        ids["OPENING"]
    ]
    bounds = {
        "between": [{"status": "OPENING", "updatedAt": "2000"}, {"status": "OPENING", "updatedAt": "3000"}]
    }
    assert [item["id"] for item in (await _by_status(sandbox, account_id, bounds))["items"]] == [
        ids["OPENING"]
    ]


async def test_the_sort_key_orders_results_and_desc_reverses_them(sandbox: Sandbox) -> None:
    account_id, _ = await _positions_in_statuses(sandbox, "PENDING", "CLOSED", "OPEN")
    ascending = [item["status"] for item in (await _by_status(sandbox, account_id, {}))["items"]]
    assert ascending == ["CLOSED", "OPEN", "PENDING"]
    descending = await _by_status(sandbox, account_id, {}, sortDirection="DESC")
    assert [item["status"] for item in descending["items"]] == ["PENDING", "OPEN", "CLOSED"]


@pytest.mark.parametrize(
    "key",
    [
        {"beginsWith": {"updatedAt": "2025"}},  # a later part of the composite key without the first
        {"eq": {"updatedAt": "2025-01-01T00:00:00.000Z"}},
        {"between": [{"updatedAt": "2000"}, {"status": "OPEN", "updatedAt": "3000"}]},
        {"ge": {"status": "OPEN"}, "le": {"status": "PENDING"}},  # two operators on one key
    ],
    ids=["beginsWith-without-status", "eq-without-status", "between-without-status", "two-operators"],
)
async def test_a_key_condition_dynamodb_cannot_express_is_an_error_not_an_empty_list(
    sandbox: Sandbox, key: dict
) -> None:
    account_id, _ = await _positions_in_statuses(sandbox, "OPEN")
    variables = {
        "userId": sandbox.info.user("alice").sub,
        "k": key,
        "filter": {"accountId": {"eq": account_id}},
    }
    body = await sandbox.graphql("alice", POSITIONS_BY_USER_AND_STATUS, variables)
    assert error_types(body) == ["InvalidArgumentsError"], body
    assert body["data"] == {"getPositionsByUserAndStatus": None}
    assert "statusUpdatedAt" in body["errors"][0]["message"]


async def test_two_operators_on_a_plain_sort_key_are_an_error(sandbox: Sandbox) -> None:
    variables = {"userId": sandbox.info.user("alice").sub, "status": {"ge": "EXECUTED", "le": "PENDING"}}
    body = await sandbox.graphql("alice", ACTIONS_BY_USER_AND_STATUS, variables)
    assert error_types(body) == ["InvalidArgumentsError"]


async def test_action_status_key_condition_takes_a_string(sandbox: Sandbox) -> None:
    action = await _action(sandbox, status="FAILED")
    variables = {"userId": sandbox.info.user("alice").sub, "status": {"eq": "FAILED"}, "limit": 1000}
    items = data(
        await sandbox.graphql("alice", ACTIONS_BY_USER_AND_STATUS, variables), "getActionsByUserAndStatus"
    )["items"]
    assert action["id"] in {item["id"] for item in items} and {item["status"] for item in items} == {"FAILED"}


async def test_trail_width_key_condition_with_a_status_filter(sandbox: Sandbox) -> None:
    account = await create_account(sandbox, "alice")
    trailed = await create_position(sandbox, "alice", account["id"], trailWidth=10.0, status="OPENING")
    await create_position(sandbox, "alice", account["id"], trailWidth=0.0, status="OPENING")
    await create_position(sandbox, "alice", account["id"], trailWidth=12.0, status="OPEN")
    query = (
        "query($u: ID!, $t: ModelFloatKeyConditionInput, $f: ModelPositionFilterInput) "
        "{ getPositionsByUserAndTrailWidth(userId: $u, trailWidth: $t, filter: $f, limit: 1000) { items { id } } }"
    )
    variables = {
        "u": sandbox.info.user("alice").sub,
        "t": {"gt": 0},
        "f": {"status": {"eq": "OPENING"}, "accountId": {"eq": account["id"]}},
    }
    items = data(await sandbox.graphql("alice", query, variables), "getPositionsByUserAndTrailWidth")["items"]
    assert items == [{"id": trailed["id"]}]


# -- paging -------------------------------------------------------------------------------------------

BY_ACCOUNT = (
    "query($a: ID!, $f: ModelActionFilterInput, $limit: Int, $next: String) "
    "{ getActionsByAccount(accountId: $a, filter: $f, limit: $limit, nextToken: $next) { items { id status } nextToken } }"
)


async def _actions_on_one_account(sandbox: Sandbox, statuses: list[str]) -> tuple[str, list[str]]:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    ids = [
        (await create_action(sandbox, "alice", account["id"], position["id"], status=s))["id"]
        for s in statuses
    ]
    return account["id"], ids


async def _pages(sandbox: Sandbox, account_id: str, limit: int, flt: dict | None = None) -> list[list[str]]:
    pages, token = [], None
    while True:
        variables = {"a": account_id, "limit": limit, "next": token, "f": flt}
        page = data(await sandbox.graphql("alice", BY_ACCOUNT, variables), "getActionsByAccount")
        pages.append([item["id"] for item in page["items"]])
        token = page["nextToken"]
        if token is None:
            return pages


async def test_next_token_walks_every_item_once(sandbox: Sandbox) -> None:
    # an index without a sort key promises no order (DynamoDB): every item once, pages of `limit`
    account_id, ids = await _actions_on_one_account(sandbox, ["PENDING"] * 5)
    pages = await _pages(sandbox, account_id, 2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted([i for page in pages for i in page]) == sorted(ids)


async def test_a_page_that_ends_at_the_limit_has_a_token_to_an_empty_page(sandbox: Sandbox) -> None:
    account_id, ids = await _actions_on_one_account(sandbox, ["PENDING"] * 4)
    pages = await _pages(sandbox, account_id, 2)
    assert [len(page) for page in pages] == [2, 2, 0]
    assert sorted([i for page in pages for i in page]) == sorted(ids)


async def test_limit_applies_before_the_filter(sandbox: Sandbox) -> None:
    account_id, ids = await _actions_on_one_account(sandbox, ["EXECUTED", "EXECUTED", "PENDING"])
    pages = await _pages(sandbox, account_id, 2, {"status": {"eq": "PENDING"}})
    # two reads of at most 2 items each, whatever their order; the filter leaves only the PENDING one
    assert len(pages) == 2 and [i for page in pages for i in page] == [ids[2]]


async def test_an_index_without_a_sort_key_does_not_return_insertion_order(sandbox: Sandbox) -> None:
    # DynamoDB promises no order there; the sandbox orders by the table key (id), so a client that
    # relied on insertion order fails here instead of on AWS
    account_id, ids = await _actions_on_one_account(sandbox, ["PENDING"] * 12)
    (page,) = await _pages(sandbox, account_id, 100)
    assert page == sorted(ids) and page != ids


async def test_items_with_equal_sort_keys_come_in_table_key_order_not_insertion_order(
    sandbox: Sandbox,
) -> None:
    account = await create_account(sandbox, "alice")
    at = "2025-01-01T00:00:00.000Z"
    created = [
        (await create_position(sandbox, "alice", account["id"], status="OPEN", updatedAt=at))["id"]
        for _ in range(8)
    ]
    found = await _by_status(sandbox, account["id"], {"eq": {"status": "OPEN", "updatedAt": at}})
    assert [item["id"] for item in found["items"]] == sorted(created) != created


# -- delete and connections ---------------------------------------------------------------------------


async def test_delete_returns_the_record_and_a_second_delete_is_unauthorized(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    delete = f"mutation($id: ID!) {{ deleteAction(input: {{id: $id}}) {{ {ACTION_FIELDS} }} }}"
    assert data(await sandbox.graphql("alice", delete, {"id": action["id"]}), "deleteAction") == action
    assert await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]}) == {"data": {"getAction": None}}
    # gone: the owner check of the generated resolvers finds nothing to own
    assert error_types(await sandbox.graphql("alice", delete, {"id": action["id"]})) == ["Unauthorized"]
    assert error_types(await sandbox.graphql("carol", delete, {"id": action["id"]})) == [
        "DynamoDB:ConditionalCheckFailedException"
    ]


async def test_a_user_record_lists_its_accounts_positions_and_actions(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    query = (
        "query($id: ID!) { getUser(id: $id) { id accounts(limit: 1000) { items { id } } "
        "positions(limit: 1000) { items { id } } actions(limit: 1000) { items { id } } } }"
    )
    user = data(await sandbox.graphql("alice", query, {"id": sandbox.info.user("alice").sub}), "getUser")
    assert {"id": action["accountId"]} in user["accounts"]["items"]
    assert {"id": action["positionId"]} in user["positions"]["items"]
    assert {"id": action["id"]} in user["actions"]["items"]
