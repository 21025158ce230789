"""Plays the admin UI over the sandbox's GraphQL endpoint (real HTTP, the documents that worked)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

POSITION_FIELDS = (
    "id userId accountId executionType status symbol volume entryPrice entryTime exitPrice exitTime "
    "exitReason trailWidth triggerActionIds mtTicket memo createdAt updatedAt"
)
ACTION_FIELDS = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"
ACCOUNT_FIELDS = (
    "id userId brokerType accountNumber serverName displayName balance credit equity isActive lastUpdated "
    "createdAt updatedAt"
)

GraphQL = Callable[[str, str, dict[str, Any] | None], Awaitable[dict[str, Any]]]


class AdminError(RuntimeError):
    pass


class AdminUI:
    """What a user does in the web UI, as ``username`` (the owner, or an ADMIN acting for them)."""

    def __init__(self, graphql: GraphQL, username: str) -> None:
        self._graphql = graphql
        self.username = username

    async def _run(self, query: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        response = await self._graphql(self.username, query, variables)
        if response.get("errors"):
            raise AdminError(f"{field}: {response['errors']}")
        data = response["data"][field]
        if data is None:
            raise AdminError(f"{field}: no data")
        result: dict[str, Any] = data
        return result

    async def create_user(self, email: str, name: str) -> dict[str, Any]:
        q = "mutation($input: CreateUserInput!) { createUser(input: $input) { id email name role pcStatus isActive } }"
        return await self._run(
            q, {"input": {"email": email, "name": name, "role": "CLIENT", "pcStatus": "OFFLINE", "isActive": True}},
            "createUser",
        )  # fmt: skip

    async def create_account(
        self, user_id: str, number: str, broker: str, name: str, balance: float
    ) -> dict[str, Any]:
        q = f"mutation($input: CreateAccountInput!) {{ createAccount(input: $input) {{ {ACCOUNT_FIELDS} }} }}"
        return await self._run(
            q,
            {"input": {"userId": user_id, "brokerType": broker, "accountNumber": number, "serverName": "Sim-Server",
                       "displayName": name, "balance": balance, "credit": 0.0, "equity": balance, "isActive": True,
                       "lastUpdated": "2026-01-01T00:00:00.000Z"}},
            "createAccount",
        )  # fmt: skip

    async def create_position(
        self, user_id: str, account_id: str, execution_type: str, symbol: str, volume: float,
        trail_width: float = 0.0, trigger_action_ids: list[str] | None = None, memo: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        q = f"mutation($input: CreatePositionInput!) {{ createPosition(input: $input) {{ {POSITION_FIELDS} }} }}"
        return await self._run(
            q,
            {"input": {"userId": user_id, "accountId": account_id, "executionType": execution_type,
                       "status": "PENDING", "symbol": symbol, "volume": volume, "trailWidth": trail_width,
                       "triggerActionIds": json.dumps(trigger_action_ids or []), "memo": memo}},
            "createPosition",
        )  # fmt: skip

    async def set_triggers(self, position_id: str, status: str, action_ids: list[str]) -> dict[str, Any]:
        q = (
            "mutation($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) "
            f"{{ updatePosition(input: $input, condition: $condition) {{ {POSITION_FIELDS} }} }}"
        )
        return await self._run(
            q,
            {"input": {"id": position_id, "status": status, "triggerActionIds": json.dumps(action_ids)},
             "condition": {"status": {"eq": status}}},
            "updatePosition",
        )  # fmt: skip

    async def create_action(
        self,
        user_id: str,
        account_id: str,
        position_id: str,
        type_: str,
        trigger_position_id: str | None = None,
    ) -> dict[str, Any]:
        q = f"mutation($input: CreateActionInput!) {{ createAction(input: $input) {{ {ACTION_FIELDS} }} }}"
        payload: dict[str, Any] = {
            "userId": user_id, "accountId": account_id, "positionId": position_id, "type": type_, "status": "PENDING",
        }  # fmt: skip
        if trigger_position_id:
            payload["triggerPositionId"] = trigger_position_id
        return await self._run(q, {"input": payload}, "createAction")

    async def set_position_status(self, position_id: str, expected: str, status: str) -> dict[str, Any]:
        q = (
            "mutation($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) "
            f"{{ updatePosition(input: $input, condition: $condition) {{ {POSITION_FIELDS} }} }}"
        )
        return await self._run(
            q, {"input": {"id": position_id, "status": status}, "condition": {"status": {"eq": expected}}},
            "updatePosition",
        )  # fmt: skip

    async def claim_action(self, action_id: str) -> dict[str, Any]:
        q = (
            "mutation($input: UpdateActionInput!, $condition: ModelActionConditionInput) "
            f"{{ updateAction(input: $input, condition: $condition) {{ {ACTION_FIELDS} }} }}"
        )
        return await self._run(
            q, {"input": {"id": action_id, "status": "EXECUTING"}, "condition": {"status": {"eq": "PENDING"}}},
            "updateAction",
        )  # fmt: skip

    async def position(self, position_id: str) -> dict[str, Any]:
        q = f"query($id: ID!) {{ getPosition(id: $id) {{ {POSITION_FIELDS} }} }}"
        return await self._run(q, {"id": position_id}, "getPosition")

    async def action(self, action_id: str) -> dict[str, Any]:
        q = f"query($id: ID!) {{ getAction(id: $id) {{ {ACTION_FIELDS} }} }}"
        return await self._run(q, {"id": action_id}, "getAction")

    async def _all(self, field: str, fields: str, user_id: str) -> list[dict[str, Any]]:
        q = (
            f"query($u: ID!, $n: String) {{ {field}(userId: $u, limit: 1000, nextToken: $n) "
            f"{{ items {{ {fields} }} nextToken }} }}"
        )
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self._run(q, {"u": user_id, "n": token}, field)
            items.extend(page["items"])
            token = page.get("nextToken")
            if not token:
                return items

    async def positions_of(self, user_id: str) -> list[dict[str, Any]]:
        """Every position of the user, as the UI's list page loads it."""
        return await self._all("getPositionsByUser", POSITION_FIELDS, user_id)

    async def actions_of(self, user_id: str) -> list[dict[str, Any]]:
        return await self._all("getActionsByUser", ACTION_FIELDS, user_id)

    async def user(self, user_id: str) -> dict[str, Any]:
        q = "query($id: ID!) { getUser(id: $id) { id email role pcStatus isActive } }"
        return await self._run(q, {"id": user_id}, "getUser")

    async def account(self, account_id: str) -> dict[str, Any]:
        q = f"query($id: ID!) {{ getAccount(id: $id) {{ {ACCOUNT_FIELDS} }} }}"
        return await self._run(q, {"id": account_id}, "getAccount")
