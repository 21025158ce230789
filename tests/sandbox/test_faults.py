"""The fault hooks tests use to shake the agent: dropped sockets, silent keep-alive, expired and
revoked tokens, failed and slow mutations, a restart."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest
from websockets.exceptions import ConnectionClosed

from hedge_agent.sandbox import Sandbox

from .documents import (
    ACTION_FIELDS,
    GET_ACTION,
    UPDATE_ACTION,
    create_account,
    create_action,
    create_position,
    data,
    error_types,
)
from .wire import RealtimeClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

ON_UPDATE_ACTION = f"subscription {{ onUpdateAction {{ {ACTION_FIELDS} }} }}"


async def _action(sandbox: Sandbox) -> dict:
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    return await create_action(sandbox, "alice", account["id"], position["id"])


async def _status_of(sandbox: Sandbox, token: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            sandbox.info.graphql_url,
            json={"query": "query { listUsers { items { id } } }"},
            headers={"Authorization": token},
        ) as response:
            return response.status


async def test_drop_sockets_cuts_every_realtime_socket_and_clients_can_come_back(sandbox: Sandbox) -> None:
    clients = [await RealtimeClient.open(sandbox.info, sandbox.id_token(name)) for name in ("alice", "bob")]
    assert await sandbox.drop_sockets() == 2
    for client in clients:
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv(2.0)
        assert closed.value.rcvd is None  # no close frame: the connection just died
    assert sandbox.stats.sockets_open == 0
    again = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    assert (await again.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
    await again.close()


async def test_stop_keepalive_silences_ka_until_resumed(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    await client.recv(1.0, skip_ka=False)  # ka flows (every 0.2 s here)
    sandbox.stop_keepalive()
    try:
        await asyncio.sleep(0.25)  # let a ka already in flight arrive
        while True:
            try:
                await client.recv(0.05, skip_ka=False)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            await client.recv(0.8, skip_ka=False)
    finally:
        sandbox.resume_keepalive()
    assert (await client.recv(1.0, skip_ka=False))["type"] == "ka"
    await client.close()


async def test_expire_tokens_refuses_every_token_issued_so_far(sandbox: Sandbox) -> None:
    old = sandbox.id_token("alice")
    client = await RealtimeClient.open(sandbox.info, old)
    assert (await client.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
    assert await _status_of(sandbox, old) == 200
    sandbox.expire_tokens()
    assert await _status_of(sandbox, old) == 401
    ended = await client.expect("error")
    assert ended["id"] == "1" and ended["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
    refused = await RealtimeClient.open(sandbox.info, old, init=False)
    await refused.send({"type": "connection_init"})
    assert (await refused.recv())["type"] == "connection_error"
    fresh = sandbox.id_token("alice")
    assert fresh != old and await _status_of(sandbox, fresh) == 200
    await client.close()


async def test_fail_next_mutations_fails_exactly_n_and_writes_and_publishes_nothing(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    watcher = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    assert (await watcher.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
    sandbox.fail_next_mutations(2, "DynamoDB:ProvisionedThroughputExceededException", "slow down")
    claim = {"input": {"id": action["id"], "status": "EXECUTING"}, "condition": {"status": {"eq": "PENDING"}}}
    for _ in range(2):
        body = await sandbox.graphql("alice", UPDATE_ACTION, claim)
        assert body["data"] == {"updateAction": None}
        assert body["errors"][0]["errorType"] == "DynamoDB:ProvisionedThroughputExceededException"
        assert body["errors"][0]["message"] == "slow down"
    await watcher.silent_for(0.2)
    assert (
        data(await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]}), "getAction")["status"]
        == "PENDING"
    )
    assert data(await sandbox.graphql("alice", UPDATE_ACTION, claim), "updateAction")["status"] == "EXECUTING"
    assert (await watcher.expect("data"))["payload"]["data"]["onUpdateAction"]["status"] == "EXECUTING"
    await watcher.close()


async def test_delay_next_mutations_slows_the_response(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    sandbox.delay_next_mutations(1, 0.4)
    started = time.perf_counter()
    await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}})
    assert time.perf_counter() - started >= 0.4
    started = time.perf_counter()
    await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTED"}})
    assert time.perf_counter() - started < 0.4


async def test_a_delay_after_commit_leaves_a_timed_out_client_not_knowing_it_succeeded(
    sandbox: Sandbox,
) -> None:
    action = await _action(sandbox)
    watcher = await RealtimeClient.open(sandbox.info, sandbox.id_token("carol"))
    assert (await watcher.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
    sandbox.delay_next_mutations(1, 1.0, after_commit=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}}),
            0.3,
        )
    assert (await watcher.expect("data"))["payload"]["data"]["onUpdateAction"]["status"] == "EXECUTING"
    assert (
        data(await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]}), "getAction")["status"]
        == "EXECUTING"
    )
    await watcher.close()


async def test_restart_comes_back_on_the_same_port_with_the_same_state(sandbox: Sandbox) -> None:
    action = await _action(sandbox)
    url = sandbox.info.graphql_url
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    await sandbox.restart()
    with pytest.raises(ConnectionClosed):
        await client.recv(2.0)
    assert sandbox.info.graphql_url == url
    assert data(await sandbox.graphql("alice", GET_ACTION, {"id": action["id"]}), "getAction") == action
    again = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    assert (await again.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
    await again.close()


async def test_short_lived_tokens_expire_on_http_and_end_their_subscriptions() -> None:
    async with Sandbox(id_token_ttl_s=2, ka_interval_s=0.5) as sandbox:
        token = sandbox.id_token("alice")
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 2
        client = await RealtimeClient.open(sandbox.info, token)
        assert (await client.start("1", ON_UPDATE_ACTION))["type"] == "start_ack"
        ended = await client.expect("error", timeout=4.0)
        assert ended["id"] == "1"
        assert ended["payload"]["errors"][0] == {
            "errorType": "UnauthorizedException",
            "message": "Token has expired.",
        }
        assert await _status_of(sandbox, token) == 401
        body = await sandbox.graphql("alice", "query { listUsers { items { id } } }")  # signs in again
        assert error_types(body) == []
        await client.close()


async def test_while_restarting_with_downtime_connections_are_refused(sandbox: Sandbox) -> None:
    token = sandbox.id_token("alice")
    restarting = asyncio.create_task(sandbox.restart(down_s=0.5))
    await asyncio.sleep(0.2)
    with pytest.raises(aiohttp.ClientConnectorError):
        await _status_of(sandbox, token)
    await restarting
    assert await _status_of(sandbox, token) == 200
