"""Operation documents as the agent and the admin UI send them (full field sets), and record makers."""

from __future__ import annotations

import itertools
from typing import Any

from hedge_agent.sandbox import Sandbox

POSITION_FIELDS = (
    "id userId accountId executionType status symbol volume entryPrice entryTime exitPrice exitTime "
    "exitReason trailWidth triggerActionIds mtTicket memo createdAt updatedAt"
)
ACTION_FIELDS = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"
ACCOUNT_FIELDS = (
    "id userId brokerType accountNumber serverName displayName balance credit equity isActive lastUpdated "
    "createdAt updatedAt"
)

CREATE_ACCOUNT = (
    f"mutation($input: CreateAccountInput!) {{ createAccount(input: $input) {{ {ACCOUNT_FIELDS} }} }}"
)
CREATE_POSITION = (
    f"mutation($input: CreatePositionInput!) {{ createPosition(input: $input) {{ {POSITION_FIELDS} }} }}"
)
CREATE_ACTION = (
    f"mutation($input: CreateActionInput!) {{ createAction(input: $input) {{ {ACTION_FIELDS} }} }}"
)
UPDATE_POSITION = (
    "mutation($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) "
    f"{{ updatePosition(input: $input, condition: $condition) {{ {POSITION_FIELDS} }} }}"
)
UPDATE_ACTION = (
    "mutation($input: UpdateActionInput!, $condition: ModelActionConditionInput) "
    f"{{ updateAction(input: $input, condition: $condition) {{ {ACTION_FIELDS} }} }}"
)
GET_POSITION = f"query($id: ID!) {{ getPosition(id: $id) {{ {POSITION_FIELDS} }} }}"
GET_ACTION = f"query($id: ID!) {{ getAction(id: $id) {{ {ACTION_FIELDS} }} }}"
ACTIONS_BY_USER_AND_STATUS = (
    "query($userId: ID!, $status: ModelStringKeyConditionInput, $filter: ModelActionFilterInput, "
    "$limit: Int, $nextToken: String) { getActionsByUserAndStatus(userId: $userId, status: $status, "
    f"filter: $filter, limit: $limit, nextToken: $nextToken) {{ items {{ {ACTION_FIELDS} }} nextToken }} }}"
)
POSITIONS_BY_USER_AND_STATUS = (
    "query($userId: ID!, $k: ModelPositionByUserIdAndStatusCompositeKeyConditionInput, "
    "$filter: ModelPositionFilterInput, $sortDirection: ModelSortDirection, $limit: Int, $nextToken: String) "
    "{ getPositionsByUserAndStatus(userId: $userId, statusUpdatedAt: $k, filter: $filter, "
    "sortDirection: $sortDirection, limit: $limit, nextToken: $nextToken) "
    f"{{ items {{ {POSITION_FIELDS} }} nextToken }} }}"
)

_serial = itertools.count(1)


def data(response: dict[str, Any], field: str) -> Any:
    assert not response.get("errors"), response
    return response["data"][field]


def error_types(response: dict[str, Any]) -> list[str | None]:
    return [error.get("errorType") for error in response.get("errors") or []]


async def create_account(sb: Sandbox, username: str, *, user_id: str | None = None) -> dict[str, Any]:
    number = next(_serial)
    response = await sb.graphql(
        username,
        CREATE_ACCOUNT,
        {
            "input": {
                "userId": user_id or sb.info.user(username).sub,
                "brokerType": "MT5",
                "accountNumber": f"{10000 + number}",
                "serverName": "Broker-Live01",
                "displayName": f"Account {number}",
                "balance": 10000.0,
                "credit": 0.0,
                "equity": 10000.0,
                "isActive": True,
                "lastUpdated": "2025-01-01T00:00:00.000Z",
            }
        },
    )
    return dict(data(response, "createAccount"))


async def create_position(
    sb: Sandbox, username: str, account_id: str, *, user_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    payload = {
        "userId": user_id or sb.info.user(username).sub,
        "accountId": account_id,
        "executionType": "ENTRY",
        "status": "PENDING",
        "symbol": "USDJPY",
        "volume": 0.1,
        "trailWidth": 0.0,
        "triggerActionIds": "[]",
        **fields,
    }
    return dict(data(await sb.graphql(username, CREATE_POSITION, {"input": payload}), "createPosition"))


async def create_action(
    sb: Sandbox,
    username: str,
    account_id: str,
    position_id: str,
    *,
    user_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    payload = {
        "userId": user_id or sb.info.user(username).sub,
        "accountId": account_id,
        "positionId": position_id,
        "type": "ENTRY",
        "status": "PENDING",
        **fields,
    }
    return dict(data(await sb.graphql(username, CREATE_ACTION, {"input": payload}), "createAction"))
