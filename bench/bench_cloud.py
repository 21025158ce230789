"""Cloud link speed: a sandbox mutation -> the event out of ``CloudClient.events()``, against a bare client.

Both subscribers talk to the same in-process sandbox over real sockets (127.0.0.1), in the same run, in
alternating rounds (only one of them connected at a time, so neither is ever second in the server's
fan-out):

- ``event_latency_p50_ms`` / ``_p99_ms``: from the moment the sandbox hands the committed mutation to its
  subscription broker (timestamped by wrapping the broker's ``publish``; the server's side of the frame
  write is included) to the validated ``RecordEvent`` coming out of ``CloudClient.events()`` in the
  consumer (gql transport, listener queue, pydantic parse, dedupe, output queue included);
- ``bare_latency_p50_ms`` / ``_p99_ms``: the same path into a bare ``websockets`` client speaking the raw
  AppSync protocol (one ``onCreateAction`` subscription; the frame is JSON-decoded, not validated);
- ``ratio_vs_bare_client``: the quotient of the p50s (target <= 1.5), ``ratio_vs_bare_client_p99`` of p99s;
- ``in_client_p50_ms`` / ``_p99_ms``: the client's own share: from the frame's arrival stamp (taken as gql's
  receive loop parses it) to the event out of ``events()``;
- ``post_to_event_p50_ms``: the same, timed from right before the mutation's HTTP POST (includes the
  sandbox's HTTP handling, auth check and resolver);
- ``reconnect_catch_up_ms``: drop the socket with 200 active records on the server -> ``CaughtUp`` out
  (backoff set to 0 for this figure: the time is the reconnect, resubscribe and paginated catch-up).

Run: ``.venv/bin/python -m bench.bench_cloud``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import structlog
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from bench.common import percentile, report
from hedge_agent.cloud import CloudClient, CognitoAuth
from hedge_agent.cloud.retry import Backoff
from hedge_agent.config import AppSyncConfig, CognitoConfig
from hedge_agent.engine.events import CaughtUp, RecordEvent
from hedge_agent.sandbox import Sandbox

ROUNDS = 4
PER_ROUND = 150
WARMUP = 20
ACTIVE_RECORDS = 200
ACTION_FIELDS = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"
CREATE_ACTION = (
    f"mutation($input: CreateActionInput!) {{ createAction(input: $input) {{ {ACTION_FIELDS} }} }}"
)
ON_CREATE_ACTION = f"subscription($f: ModelSubscriptionActionFilterInput) {{ onCreateAction(filter: $f) {{ {ACTION_FIELDS} }} }}"


def quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING), cache_logger_on_first_use=True
    )


class PublishClock:
    """Timestamps each record as the sandbox publishes it (wraps its broker's ``publish``)."""

    def __init__(self, sb: Sandbox) -> None:
        self.at: dict[str, float] = {}
        broker = getattr(sb, "_broker", None)  # the sandbox has no public hook for this (yet)
        if broker is None:
            raise SystemExit("the sandbox's broker is not reachable: cannot timestamp publishes")
        original: Callable[[str, Any], int] = broker.publish

        def publish(field: str, payload: Any) -> int:
            self.at[str(payload.get("id"))] = time.monotonic()
            return original(field, payload)

        broker.publish = publish


async def mutate(sb: Sandbox, sub: str, status: str = "EXECUTED") -> str:
    """Create an action (EXECUTED by default: not an active record, so catch-ups stay small)."""
    body = await sb.graphql(
        "alice",
        CREATE_ACTION,
        {
            "input": {
                "userId": sub,
                "accountId": "acc-b",
                "positionId": "pos-b",
                "type": "ENTRY",
                "status": status,
            }
        },
    )
    return str(body["data"]["createAction"]["id"])


async def run_cloud_round(
    sb: Sandbox, clock: PublishClock, auth: CognitoAuth, n: int, in_client: list[float]
) -> tuple[list[float], list[float]]:
    client = CloudClient(
        AppSyncConfig(graphql_url=sb.info.graphql_url, realtime_url=sb.info.realtime_url), auth
    )
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}
    ready = asyncio.get_running_loop().create_future()

    async def consume() -> None:
        async for event in client.events():
            if isinstance(event, CaughtUp) and not ready.done():
                ready.set_result(None)
            elif isinstance(event, RecordEvent) and event.source == "create":
                arrived[event.record.id] = now = time.monotonic()
                in_client.append((now - event.received_at) * 1000)
                fut = waiters.get(event.record.id)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    task = asyncio.create_task(consume())
    await ready
    from_publish, from_post = await measure(sb, clock, auth.sub, n, arrived, waiters)
    await client.close()
    await task
    return from_publish, from_post


async def run_bare_round(
    sb: Sandbox, clock: PublishClock, sub: str, n: int
) -> tuple[list[float], list[float]]:
    info = sb.info
    token = await asyncio.to_thread(sb.id_token, "alice")
    host = urlparse(info.graphql_url).netloc
    header = base64.b64encode(json.dumps({"host": host, "Authorization": token}).encode()).decode()
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}
    async with connect(
        f"{info.realtime_url}?header={header}&payload=e30=", subprotocols=[Subprotocol("graphql-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        while json.loads(await ws.recv())["type"] != "connection_ack":
            pass
        data = json.dumps({"query": ON_CREATE_ACTION, "variables": {"f": {"userId": {"eq": sub}}}})
        auth_ext = {"authorization": {"host": host, "Authorization": token}}
        await ws.send(
            json.dumps({"id": "1", "type": "start", "payload": {"data": data, "extensions": auth_ext}})
        )
        while json.loads(await ws.recv())["type"] != "start_ack":
            pass

        async def receive() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "data":
                    record = frame["payload"]["data"]["onCreateAction"]
                    arrived[record["id"]] = time.monotonic()
                    fut = waiters.get(record["id"])
                    if fut is not None and not fut.done():
                        fut.set_result(None)

        task = asyncio.create_task(receive())
        result = await measure(sb, clock, sub, n, arrived, waiters)
        task.cancel()
    return result


async def measure(
    sb: Sandbox,
    clock: PublishClock,
    sub: str,
    n: int,
    arrived: dict[str, float],
    waiters: dict[str, asyncio.Future[None]],
) -> tuple[list[float], list[float]]:
    from_publish: list[float] = []
    from_post: list[float] = []
    loop = asyncio.get_running_loop()
    for i in range(n + WARMUP):
        # the record id is only known from the answer; the event may have come first: match by id
        posted = time.monotonic()
        record_id = await mutate(sb, sub)
        if record_id not in arrived:
            fut = waiters.setdefault(record_id, loop.create_future())
            await asyncio.wait_for(fut, 5)
        if i >= WARMUP:
            from_publish.append((arrived[record_id] - clock.at[record_id]) * 1000)
            from_post.append((arrived[record_id] - posted) * 1000)
    return from_publish, from_post


async def reconnect_catch_up(sb: Sandbox, auth: CognitoAuth) -> float:
    for _ in range(ACTIVE_RECORDS):
        await mutate(sb, auth.sub, "PENDING")
    immediate = Backoff(initial_s=0.0, factor=1.0, max_s=0.0, jitter=0.0)
    client = CloudClient(
        AppSyncConfig(graphql_url=sb.info.graphql_url, realtime_url=sb.info.realtime_url),
        auth,
        link_backoff=immediate,
    )
    generations: asyncio.Queue[float] = asyncio.Queue()

    async def consume() -> None:
        async for event in client.events():
            if isinstance(event, CaughtUp):
                generations.put_nowait(time.monotonic())

    task = asyncio.create_task(consume())
    await generations.get()
    started = time.monotonic()
    await sb.drop_sockets()
    done = await asyncio.wait_for(generations.get(), 10)
    await client.close()
    await task
    return (done - started) * 1000


async def main() -> None:
    quiet()
    async with Sandbox() as sb:
        clock = PublishClock(sb)
        info = sb.info
        user = info.user("alice")
        auth = CognitoAuth(
            CognitoConfig(
                region=info.region,
                user_pool_id=info.user_pool_id,
                client_id=info.client_id,
                username="alice",
                endpoint_url=info.cognito_endpoint,
            )
        )
        await auth.sign_in_with_password(user.password)
        cloud_pub: list[float] = []
        cloud_post: list[float] = []
        bare_pub: list[float] = []
        bare_post: list[float] = []
        in_client: list[float] = []  # frame parsed by the transport -> event out of events()
        for _ in range(ROUNDS):
            p, q = await run_cloud_round(sb, clock, auth, PER_ROUND, in_client)
            cloud_pub += p
            cloud_post += q
            p, q = await run_bare_round(sb, clock, auth.sub, PER_ROUND)
            bare_pub += p
            bare_post += q
        catch_up_ms = await reconnect_catch_up(sb, auth)

    figures = {
        "event_latency_p50_ms": percentile(cloud_pub, 50),
        "event_latency_p99_ms": percentile(cloud_pub, 99),
        "bare_latency_p50_ms": percentile(bare_pub, 50),
        "bare_latency_p99_ms": percentile(bare_pub, 99),
        "ratio_vs_bare_client": percentile(cloud_pub, 50) / percentile(bare_pub, 50),
        "ratio_vs_bare_client_p99": percentile(cloud_pub, 99) / percentile(bare_pub, 99),
        "in_client_p50_ms": percentile(in_client, 50),
        "in_client_p99_ms": percentile(in_client, 99),
        "post_to_event_p50_ms": percentile(cloud_post, 50),
        "bare_post_to_event_p50_ms": percentile(bare_post, 50),
        "reconnect_catch_up_ms": catch_up_ms,
        "samples": float(len(cloud_pub)),
    }
    report(
        "cloud",
        figures,
        {
            "event_latency_p99_ms": "target <= 5",
            "ratio_vs_bare_client": "target <= 1.5",
            "reconnect_catch_up_ms": f"{ACTIVE_RECORDS} active records",
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
