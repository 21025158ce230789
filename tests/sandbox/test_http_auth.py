"""JWT checks over HTTP, and the owner + ADMIN rules of CONTRACT.md (tables and 'Error shapes')."""

from __future__ import annotations

import aiohttp
import pytest

from hedge_agent.sandbox import Sandbox

from .documents import (
    ACTION_FIELDS,
    ACTIONS_BY_USER_AND_STATUS,
    GET_ACTION,
    GET_POSITION,
    UPDATE_ACTION,
    create_account,
    create_action,
    create_position,
    data,
    error_types,
)
from .tokens import an_hour_ago, forge, stranger_key

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIST_ACTIONS = f"query {{ listActions(limit: 1000) {{ items {{ {ACTION_FIELDS} }} nextToken }} }}"


async def post(sandbox: Sandbox, authorization: str | None, query: str = LIST_ACTIONS) -> tuple[int, dict]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with aiohttp.ClientSession() as session:
        async with session.post(sandbox.info.graphql_url, json={"query": query}, headers=headers) as response:
            return response.status, await response.json()


def forged(sandbox: Sandbox, case: str) -> str | None:
    token = sandbox.id_token("alice")
    return {
        "missing": None,
        "garbage": "garbage",
        "bearer": f"Bearer {token}",
        "bad signature": forge(token, key=stranger_key()),
        "expired": forge(token, iat=an_hour_ago() - 60, exp=an_hour_ago()),
        "wrong issuer": forge(token, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"),
        "wrong audience": forge(token, aud="another-client"),
        "unknown token use": forge(token, token_use="refresh"),
        "access token of another client": forge(
            sandbox.tokens("alice").access_token, client_id="another-client"
        ),
        "access token without client_id": forge(token, token_use="access"),
    }[case]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "garbage",
        "bearer",
        "bad signature",
        "expired",
        "wrong issuer",
        "wrong audience",
        "unknown token use",
        "access token of another client",
        "access token without client_id",
    ],
)
async def test_bad_credentials_get_401_unauthorized_exception(sandbox: Sandbox, case: str) -> None:
    status, body = await post(sandbox, forged(sandbox, case))
    assert status == 401
    assert body["errors"][0]["errorType"] == "UnauthorizedException"
    assert body["errors"][0]["message"]


@pytest.mark.parametrize(("user", "sees_it"), [("alice", True), ("bob", False), ("carol", True)])
async def test_an_access_token_is_accepted_like_the_id_token(
    sandbox: Sandbox, user: str, sees_it: bool
) -> None:
    # AppSync's AMAZON_COGNITO_USER_POOLS mode takes both; the Amplify v6 client sends the access token.
    # Its sub and cognito:groups are the caller: alice owns the action, carol is ADMIN, bob sees nothing.
    _, _, action = await _alices_records(sandbox)
    status, body = await post(sandbox, sandbox.tokens(user).access_token)
    assert status == 200, body
    assert (action["id"] in {item["id"] for item in body["data"]["listActions"]["items"]}) is sees_it


async def test_an_access_token_is_refused_once_expired_by_the_sandbox(sandbox: Sandbox) -> None:
    token = sandbox.tokens("alice").access_token
    assert (await post(sandbox, token))[0] == 200
    sandbox.expire_tokens()
    status, body = await post(sandbox, token)
    assert status == 401 and body["errors"][0]["message"] == "Token has expired."


async def test_an_expired_token_says_so(sandbox: Sandbox) -> None:
    _, body = await post(sandbox, forged(sandbox, "expired"))
    assert body["errors"][0]["message"] == "Token has expired."


async def test_a_token_re_signed_by_moto_with_its_claims_intact_is_accepted(sandbox: Sandbox) -> None:
    # the forging helper itself produces valid tokens when nothing is changed: the 401s above are earned
    status, _ = await post(sandbox, forge(sandbox.id_token("alice")))
    assert status == 200


async def test_a_malformed_body_gets_400(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            sandbox.info.graphql_url, data=b"{nope", headers={"Authorization": sandbox.id_token("alice")}
        ) as response:
            assert response.status == 400
            assert (await response.json())["errors"][0]["errorType"] == "BadRequestException"


async def test_validation_errors_have_no_error_type_and_null_data(sandbox: Sandbox) -> None:
    body = await sandbox.graphql("alice", "query { getActionsByUserAndStatus { items { id } } }")
    assert body["data"] is None
    message = body["errors"][0]["message"]
    assert "userId" in message and "required" in message
    assert "errorType" not in body["errors"][0]


async def test_an_enum_where_the_key_condition_wants_a_string_is_a_validation_error(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    query = f'query {{ getActionsByUserAndStatus(userId: "{alice.sub}", status: {{eq: EXECUTING}}) {{ items {{ id }} }} }}'
    body = await sandbox.graphql("alice", query)
    assert body["data"] is None and body["errors"]


# -- owner + ADMIN ---------------------------------------------------------------------------------


async def _alices_records(sandbox: Sandbox) -> tuple[dict, dict, dict]:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    return account, position, action


@pytest.mark.parametrize(("reader", "allowed"), [("alice", True), ("bob", False), ("carol", True)])
async def test_get_is_for_the_owner_and_admin_only(sandbox: Sandbox, reader: str, allowed: bool) -> None:
    _, position, action = await _alices_records(sandbox)
    for query, field, record in ((GET_POSITION, "getPosition", position), (GET_ACTION, "getAction", action)):
        body = await sandbox.graphql(reader, query, {"id": record["id"]})
        if allowed:
            assert data(body, field)["id"] == record["id"]
        else:
            assert body["data"] == {field: None}
            error = body["errors"][0]
            assert error["errorType"] == "Unauthorized" and error["path"] == [field]


async def test_get_of_a_missing_record_is_null_without_error(sandbox: Sandbox) -> None:
    assert await sandbox.graphql("alice", GET_ACTION, {"id": "no-such-id"}) == {"data": {"getAction": None}}


@pytest.mark.parametrize(("writer", "allowed"), [("alice", True), ("bob", False), ("carol", True)])
async def test_update_is_for_the_owner_and_admin_only(sandbox: Sandbox, writer: str, allowed: bool) -> None:
    _, _, action = await _alices_records(sandbox)
    body = await sandbox.graphql(
        writer, UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}}
    )
    if allowed:
        assert data(body, "updateAction")["status"] == "EXECUTING"
    else:
        assert body["data"] == {"updateAction": None} and error_types(body) == ["Unauthorized"]
        assert (
            data(await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]}), "getAction")["status"]
            == "PENDING"
        )


async def test_list_filters_to_the_callers_records_and_admin_sees_all(sandbox: Sandbox) -> None:
    _, _, action = await _alices_records(sandbox)
    alices = [
        item["id"] for item in data(await sandbox.graphql("alice", LIST_ACTIONS), "listActions")["items"]
    ]
    bobs = data(await sandbox.graphql("bob", LIST_ACTIONS), "listActions")["items"]
    carols = [
        item["id"] for item in data(await sandbox.graphql("carol", LIST_ACTIONS), "listActions")["items"]
    ]
    assert action["id"] in alices and action["id"] in carols
    assert all(item["userId"] == sandbox.info.user("bob").sub for item in bobs)


@pytest.mark.parametrize(("reader", "allowed"), [("alice", True), ("bob", False), ("carol", True)])
async def test_an_owner_keyed_index_query_for_another_user_is_an_error(
    sandbox: Sandbox, reader: str, allowed: bool
) -> None:
    await _alices_records(sandbox)
    variables = {"userId": sandbox.info.user("alice").sub, "status": {"eq": "PENDING"}}
    body = await sandbox.graphql(reader, ACTIONS_BY_USER_AND_STATUS, variables)
    if allowed:
        assert data(body, "getActionsByUserAndStatus")["items"]
    else:
        assert error_types(body) == ["Unauthorized"]
        assert body["data"] == {"getActionsByUserAndStatus": None}


async def test_a_non_owner_keyed_index_query_just_filters(sandbox: Sandbox) -> None:
    account, _, action = await _alices_records(sandbox)
    query = "query($a: ID!) { getActionsByAccount(accountId: $a) { items { id } nextToken } }"
    assert (
        data(await sandbox.graphql("bob", query, {"a": account["id"]}), "getActionsByAccount")["items"] == []
    )
    mine = data(await sandbox.graphql("alice", query, {"a": account["id"]}), "getActionsByAccount")["items"]
    assert mine == [{"id": action["id"]}]


@pytest.mark.parametrize(("creator", "allowed"), [("alice", True), ("bob", False), ("carol", True)])
async def test_creating_for_another_user_is_unauthorized_unless_admin(
    sandbox: Sandbox, creator: str, allowed: bool
) -> None:
    alice = sandbox.info.user("alice")
    if allowed:
        account = await create_account(sandbox, creator, user_id=alice.sub)
        assert account["userId"] == alice.sub
    else:
        with pytest.raises(AssertionError, match="Unauthorized"):
            await create_account(sandbox, creator, user_id=alice.sub)


async def test_an_owner_can_hand_a_record_to_another_user(sandbox: Sandbox) -> None:
    _, _, action = await _alices_records(sandbox)
    bob = sandbox.info.user("bob")
    body = await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "userId": bob.sub}})
    assert data(body, "updateAction")["userId"] == bob.sub
    assert (
        data(await sandbox.graphql("bob", GET_ACTION, {"id": action["id"]}), "getAction")["id"]
        == action["id"]
    )
    assert error_types(await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]})) == ["Unauthorized"]


async def test_create_user_fills_id_with_the_callers_sub(sandbox: Sandbox) -> None:
    # alice already has a User record (seeded), so creating hers again fails the implicit condition
    mutation = (
        "mutation($input: CreateUserInput!) { createUser(input: $input) { id email role pcStatus isActive } }"
    )
    user = {"email": "alice@example.com", "role": "CLIENT", "pcStatus": "ONLINE", "isActive": True}
    body = await sandbox.graphql("alice", mutation, {"input": user})
    assert error_types(body) == ["DynamoDB:ConditionalCheckFailedException"]
    seeded = await sandbox.graphql(
        "alice",
        "query($id: ID!) { getUser(id: $id) { id email role pcStatus } }",
        {"id": sandbox.info.user("alice").sub},
    )
    assert data(seeded, "getUser") == {
        "id": sandbox.info.user("alice").sub,
        "email": "alice@example.com",
        "role": "CLIENT",
        "pcStatus": "OFFLINE",
    }
