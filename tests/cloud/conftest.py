"""Fixtures for the cloud tests: a sandbox backend on 127.0.0.1 (real sockets) and helpers around it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from hedge_agent.cloud import CloudClient, CognitoAuth
from hedge_agent.cloud.retry import Backoff
from hedge_agent.config import AppSyncConfig, CognitoConfig
from hedge_agent.engine.events import CloudEvent, RecordEvent
from hedge_agent.sandbox import Sandbox

POSITION_FIELDS = (
    "id userId accountId executionType status symbol volume entryPrice entryTime exitPrice exitTime exitReason "
    "trailWidth triggerActionIds mtTicket memo createdAt updatedAt"
)
ACTION_FIELDS = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"
CREATE_POSITION = f"""mutation CreatePosition($input: CreatePositionInput!) {{
  createPosition(input: $input) {{ {POSITION_FIELDS} }} }}"""
CREATE_ACTION = f"""mutation CreateAction($input: CreateActionInput!) {{
  createAction(input: $input) {{ {ACTION_FIELDS} }} }}"""
UPDATE_POSITION = f"""mutation UpdatePosition($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) {{
  updatePosition(input: $input, condition: $condition) {{ {POSITION_FIELDS} }} }}"""
UPDATE_ACTION = f"""mutation UpdateAction($input: UpdateActionInput!) {{
  updateAction(input: $input) {{ {ACTION_FIELDS} }} }}"""
CREATE_ACCOUNT = """mutation CreateAccount($input: CreateAccountInput!) {
  createAccount(input: $input) { id userId brokerType accountNumber serverName displayName balance credit equity
    isActive lastUpdated createdAt updatedAt } }"""

#: quick, deterministic reconnects for tests
FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.5, jitter=0.0)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox() -> AsyncIterator[Sandbox]:
    """One sandbox for the cloud tests (they run on the session's loop: ``pytestmark`` in each module).
    Tests create their own records and look only at those; a test that needs other sandbox settings
    starts its own."""
    async with Sandbox() as sb:
        yield sb


def cognito_config(sb: Sandbox, username: str) -> CognitoConfig:
    info = sb.info
    return CognitoConfig(
        region=info.region,
        user_pool_id=info.user_pool_id,
        client_id=info.client_id,
        username=username,
        endpoint_url=info.cognito_endpoint,
    )


def appsync_config(sb: Sandbox) -> AppSyncConfig:
    return AppSyncConfig(graphql_url=sb.info.graphql_url, realtime_url=sb.info.realtime_url)


async def signed_in(sb: Sandbox, username: str) -> CognitoAuth:
    auth = CognitoAuth(cognito_config(sb, username))
    await auth.sign_in_with_password(sb.info.user(username).password)
    return auth


def data(body: dict[str, Any], field: str) -> dict[str, Any]:
    assert not body.get("errors"), body
    result: dict[str, Any] = body["data"][field]
    return result


async def create_action(sb: Sandbox, as_user: str, owner: str | None = None, **fields: Any) -> dict[str, Any]:
    sub = sb.info.user(owner or as_user).sub
    body = {"userId": sub, "accountId": "acc-1", "positionId": "pos-1", "type": "ENTRY", "status": "PENDING"}
    return data(await sb.graphql(as_user, CREATE_ACTION, {"input": {**body, **fields}}), "createAction")


async def create_position(
    sb: Sandbox, as_user: str, owner: str | None = None, **fields: Any
) -> dict[str, Any]:
    sub = sb.info.user(owner or as_user).sub
    body = {
        "userId": sub,
        "accountId": "acc-1",
        "executionType": "ENTRY",
        "status": "PENDING",
        "symbol": "USDJPY",
        "volume": 0.1,
        "trailWidth": 0.0,
        "triggerActionIds": "[]",
    }
    return data(await sb.graphql(as_user, CREATE_POSITION, {"input": {**body, **fields}}), "createPosition")


async def set_position_status(sb: Sandbox, as_user: str, position_id: str, status: str) -> dict[str, Any]:
    body = await sb.graphql(as_user, UPDATE_POSITION, {"input": {"id": position_id, "status": status}})
    return data(body, "updatePosition")


async def set_action_status(sb: Sandbox, as_user: str, action_id: str, status: str) -> dict[str, Any]:
    body = await sb.graphql(as_user, UPDATE_ACTION, {"input": {"id": action_id, "status": status}})
    return data(body, "updateAction")


class Collector:
    """Iterates ``client.events()`` in a task and keeps everything it saw."""

    def __init__(self, client: CloudClient) -> None:
        self.client = client
        self.events: list[CloudEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="test.collector")

    async def _run(self) -> None:
        async for event in self.client.events():
            self.events.append(event)
            self._changed.set()

    async def wait_for(self, predicate: Callable[[CloudEvent], bool], timeout: float = 5.0) -> CloudEvent:
        """The first event (seen so far or arriving within ``timeout``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {timeout} s; saw: {self.events!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def records(self, record_id: str) -> list[RecordEvent]:
        return [e for e in self.events if isinstance(e, RecordEvent) and e.record.id == record_id]

    async def close(self) -> None:
        await self.client.close()
        await asyncio.wait_for(self._task, 5)


@pytest_asyncio.fixture(loop_scope="session")
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """``await make_client(sb, "alice", **client_options) -> Collector`` (closed at teardown)."""
    made: list[Collector] = []

    async def make(sb: Sandbox, username: str, **options: Any) -> Collector:
        auth = await signed_in(sb, username)
        options.setdefault("link_backoff", FAST)
        collector = Collector(CloudClient(appsync_config(sb), auth, **options))
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()
