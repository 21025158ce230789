"""The realtime WebSocket protocol, frame by frame, and gql's AppSync transport against it unmodified."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

import pytest
from gql import Client, gql
from gql.transport.appsync_auth import AppSyncJWTAuthentication
from gql.transport.appsync_websockets import AppSyncWebsocketsTransport
from gql.transport.exceptions import TransportQueryError, TransportServerError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hedge_agent.sandbox import Sandbox

from .documents import ACTION_FIELDS, UPDATE_ACTION, create_account, create_action, create_position
from .wire import RealtimeClient, realtime_url

pytestmark = pytest.mark.asyncio(loop_scope="module")

ON_UPDATE_ACTION = (
    "subscription($filter: ModelSubscriptionActionFilterInput) "
    f"{{ onUpdateAction(filter: $filter) {{ {ACTION_FIELDS} }} }}"
)


async def test_handshake_is_acked_with_the_connection_timeout_then_ka_follows(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"), init=False)
    assert client.ws.subprotocol == "graphql-ws"
    await client.send({"type": "connection_init"})
    ack = await client.recv()
    assert ack == {"type": "connection_ack", "payload": {"connectionTimeoutMs": 300_000}}
    assert (await client.recv(2.0, skip_ka=False))["type"] == "ka"
    assert (await client.recv(2.0, skip_ka=False))["type"] == "ka"
    await client.close()


async def test_a_socket_without_the_graphql_ws_subprotocol_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(realtime_url(sandbox.info, sandbox.id_token("alice")), open_timeout=5)
    assert refused.value.response.status_code == 400


@pytest.mark.parametrize("token", ["not-a-jwt", "", "Bearer x.y.z"])
async def test_a_bad_token_gets_connection_error_then_close(sandbox: Sandbox, token: str) -> None:
    client = await RealtimeClient.open(sandbox.info, token, init=False)
    await client.send({"type": "connection_init"})
    frame = await client.recv()
    assert frame["type"] == "connection_error"
    assert frame["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
    with pytest.raises(ConnectionClosed):
        await client.recv(2.0)


async def test_a_header_that_is_not_base64_json_gets_connection_error(sandbox: Sandbox) -> None:
    url = f"{sandbox.info.realtime_url}?header=%%%&payload=e30="
    ws = await connect(url, subprotocols=["graphql-ws"], open_timeout=5)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init"}))
    frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert frame["type"] == "connection_error"
    await ws.close()


async def test_start_is_acked_and_stop_is_completed(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    assert await client.start("7", ON_UPDATE_ACTION) == {"id": "7", "type": "start_ack"}
    await client.send({"id": "7", "type": "stop"})
    assert await client.expect("complete") == {"id": "7", "type": "complete"}
    await client.close()


async def test_start_checks_the_token_in_its_own_extensions(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    frame = await client.start("1", ON_UPDATE_ACTION, token="garbage")
    assert frame["type"] == "error" and frame["id"] == "1"
    assert frame["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
    # the connection lives on: a good start still works
    assert (await client.start("2", ON_UPDATE_ACTION))["type"] == "start_ack"
    await client.close()


async def test_an_invalid_subscription_gets_an_error_frame_with_its_id(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    frame = await client.start("1", "subscription { onUpdateAction { nope } }")
    assert frame["type"] == "error" and frame["id"] == "1"
    assert "nope" in frame["payload"]["errors"][0]["message"]
    query = await client.start("2", "query { listActions { items { id } } }")
    assert query["type"] == "error" and query["payload"]["errors"][0]["errorType"] == "UnsupportedOperation"
    await client.close()


@pytest.mark.parametrize(
    "frame",
    [{"type": "start", "payload": {}}, {"type": "subscribe", "id": "1"}, "not json"],
    ids=["start-without-id", "unknown-type", "not-json"],
)
async def test_an_error_without_id_closes_the_connection(sandbox: Sandbox, frame: object) -> None:
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    await client.ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    error = await client.expect("error")
    assert "id" not in error
    with pytest.raises(ConnectionClosed):
        await client.recv(2.0)


async def test_start_without_connection_init_is_served(sandbox: Sandbox) -> None:
    # AWS's realtime client guide marks connection_init optional: the handshake header authenticates
    alice = sandbox.info.user("alice")
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"), init=False)
    only_it = {"filter": {"userId": {"eq": alice.sub}, "id": {"eq": action["id"]}}}
    assert await client.start("1", ON_UPDATE_ACTION, only_it) == {"id": "1", "type": "start_ack"}
    await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}})
    frame = await client.expect("data")
    assert frame["id"] == "1" and frame["payload"]["data"]["onUpdateAction"]["status"] == "EXECUTING"
    assert (await client.recv(2.0, skip_ka=False))["type"] == "ka"  # kept alive as after an ack
    await client.close()


async def test_start_without_connection_init_and_a_bad_header_gets_connection_error(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, "garbage", init=False)
    frame = await client.start("1", ON_UPDATE_ACTION)
    assert frame["type"] == "connection_error"
    assert frame["payload"]["errors"][0]["errorType"] == "UnauthorizedException"
    with pytest.raises(ConnectionClosed):
        await client.recv(2.0)


@pytest.mark.parametrize("token_kind", ["id", "access"])
async def test_the_header_subprotocol_form_authenticates_as_amplify_sends_it(
    sandbox: Sandbox, token_kind: str
) -> None:
    tokens = sandbox.tokens("alice")
    token = tokens.id_token if token_kind == "id" else tokens.access_token
    client = await RealtimeClient.open(sandbox.info, token, init=False, header_in_subprotocol=True)
    assert client.ws.subprotocol == "graphql-ws"  # the server picks graphql-ws, never the header entry
    await client.send({"type": "connection_init"})
    assert (await client.expect("connection_ack"))["payload"]["connectionTimeoutMs"] == 300_000
    assert (await client.start("1", ON_UPDATE_ACTION)) == {"id": "1", "type": "start_ack"}
    await client.close()


async def test_a_bad_token_in_the_header_subprotocol_gets_connection_error(sandbox: Sandbox) -> None:
    client = await RealtimeClient.open(sandbox.info, "not-a-jwt", init=False, header_in_subprotocol=True)
    await client.send({"type": "connection_init"})
    frame = await client.recv()
    assert frame["type"] == "connection_error"
    assert frame["payload"]["errors"][0]["errorType"] == "UnauthorizedException"


async def test_an_access_token_subscribes_and_receives_over_the_query_form(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    access = sandbox.tokens("alice").access_token
    client = await RealtimeClient.open(sandbox.info, access)
    only_it = {"filter": {"userId": {"eq": alice.sub}, "id": {"eq": action["id"]}}}
    assert (await client.start("a", ON_UPDATE_ACTION, only_it, token=access))["type"] == "start_ack"
    await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}})
    assert (await client.expect("data"))["payload"]["data"]["onUpdateAction"]["id"] == action["id"]
    await client.close()


async def test_several_subscriptions_share_one_connection(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    client = await RealtimeClient.open(sandbox.info, sandbox.id_token("alice"))
    only_mine = {"filter": {"userId": {"eq": alice.sub}, "id": {"eq": action["id"]}}}
    assert (await client.start("a", ON_UPDATE_ACTION, only_mine))["type"] == "start_ack"
    assert (await client.start("b", ON_UPDATE_ACTION, only_mine))["type"] == "start_ack"
    await sandbox.graphql("alice", UPDATE_ACTION, {"input": {"id": action["id"], "status": "EXECUTING"}})
    frames = [await client.expect("data"), await client.expect("data")]
    assert sorted(frame["id"] for frame in frames) == ["a", "b"]
    assert all(frame["payload"]["data"]["onUpdateAction"]["status"] == "EXECUTING" for frame in frames)
    await client.close()


async def test_gql_appsync_transport_subscribes_unmodified(sandbox: Sandbox) -> None:
    alice = sandbox.info.user("alice")
    account = await create_account(sandbox, "alice")
    position = await create_position(sandbox, "alice", account["id"])
    action = await create_action(sandbox, "alice", account["id"], position["id"])
    host = urlparse(sandbox.info.graphql_url).netloc
    transport = AppSyncWebsocketsTransport(
        url=sandbox.info.realtime_url,
        auth=AppSyncJWTAuthentication(host=host, jwt=sandbox.id_token("alice")),
        keep_alive_timeout=5,
    )
    received: list[dict[str, object]] = []

    async def listen() -> None:
        async with Client(transport=transport) as session:
            request = gql(ON_UPDATE_ACTION)
            request.variable_values = {"filter": {"userId": {"eq": alice.sub}, "id": {"eq": action["id"]}}}
            async for result in session.subscribe(request):
                received.append(result["onUpdateAction"])
                return

    listener = asyncio.create_task(listen())
    for _ in range(100):  # until the subscription is registered
        if sandbox.stats.subscriptions_active:
            break
        await asyncio.sleep(0.02)
    update = {
        "input": {"id": action["id"], "status": "EXECUTING"},
        "condition": {"status": {"eq": "PENDING"}},
    }
    await sandbox.graphql("alice", UPDATE_ACTION, update)
    await asyncio.wait_for(listener, 5)
    assert received[0]["id"] == action["id"] and received[0]["status"] == "EXECUTING"


async def test_gql_raises_transport_server_error_on_a_bad_token(sandbox: Sandbox) -> None:
    host = urlparse(sandbox.info.graphql_url).netloc
    transport = AppSyncWebsocketsTransport(
        url=sandbox.info.realtime_url, auth=AppSyncJWTAuthentication(host=host, jwt="bad")
    )
    with pytest.raises(TransportServerError):
        async with Client(transport=transport) as session:
            async for _ in session.subscribe(gql(ON_UPDATE_ACTION)):
                break


async def test_gql_raises_transport_query_error_when_a_subscription_is_refused(sandbox: Sandbox) -> None:
    host = urlparse(sandbox.info.graphql_url).netloc
    transport = AppSyncWebsocketsTransport(
        url=sandbox.info.realtime_url, auth=AppSyncJWTAuthentication(host=host, jwt=sandbox.id_token("bob"))
    )
    owner_form = f"subscription($u: String) {{ onUpdateAction(userId: $u) {{ {ACTION_FIELDS} }} }}"
    with pytest.raises(TransportQueryError) as refused:
        async with Client(transport=transport) as session:
            request = gql(owner_form)
            request.variable_values = {"u": sandbox.info.user("alice").sub}
            async for _ in session.subscribe(request):
                break
    assert refused.value.errors is not None
    assert refused.value.errors[0]["errors"][0]["errorType"] == "Unauthorized"
