"""Sandbox speed: start-up, HTTP round trips, mutation -> subscriber latency, fan-out, throughput.

Everything runs on 127.0.0.1 through real sockets (aiohttp client, websockets subscriber).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import urlparse

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from bench.common import median, percentile, report
from hedge_agent.sandbox import Sandbox, SandboxInfo

ACTION_FIELDS = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"
CREATE_ACTION = (
    f"mutation($input: CreateActionInput!) {{ createAction(input: $input) {{ {ACTION_FIELDS} }} }}"
)
UPDATE_ACTION = (
    "mutation($input: UpdateActionInput!, $condition: ModelActionConditionInput) "
    f"{{ updateAction(input: $input, condition: $condition) {{ {ACTION_FIELDS} }} }}"
)
GET_ACTION = f"query($id: ID!) {{ getAction(id: $id) {{ {ACTION_FIELDS} }} }}"
ON_UPDATE_ACTION = (
    "subscription($f: ModelSubscriptionActionFilterInput) "
    f"{{ onUpdateAction(filter: $f) {{ {ACTION_FIELDS} }} }}"
)
STATUSES = ("PENDING", "EXECUTING")


class Poster:
    def __init__(self, session: aiohttp.ClientSession, info: SandboxInfo, token: str) -> None:
        self.session, self.info, self.token = session, info, token

    async def __call__(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with self.session.post(
            self.info.graphql_url,
            json={"query": query, "variables": variables},
            headers={"Authorization": self.token},
        ) as response:
            body: dict[str, Any] = await response.json()
            assert not body.get("errors"), body
            return body


async def subscriber(info: SandboxInfo, token: str, sub: str, count: int) -> ClientConnection:
    host = urlparse(info.graphql_url).netloc
    header = base64.b64encode(json.dumps({"host": host, "Authorization": token}).encode()).decode()
    ws = await connect(f"{info.realtime_url}?header={header}&payload=e30=", subprotocols=["graphql-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    data = json.dumps({"query": ON_UPDATE_ACTION, "variables": {"f": {"userId": {"eq": sub}}}})
    auth = {"host": host, "Authorization": token}
    for n in range(count):
        start = {
            "id": str(n),
            "type": "start",
            "payload": {"data": data, "extensions": {"authorization": auth}},
        }
        await ws.send(json.dumps(start))
        while json.loads(await ws.recv())["type"] != "start_ack":
            pass
    return ws


async def next_data(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "data":
            return dict(frame)


async def seed_action(post: Poster, sub: str) -> str:
    body = await post(
        CREATE_ACTION,
        {
            "input": {
                "userId": sub,
                "accountId": "acc",
                "positionId": "pos",
                "type": "ENTRY",
                "status": "PENDING",
            }
        },
    )
    return str(body["data"]["createAction"]["id"])


async def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    t0 = time.perf_counter()
    async with Sandbox():
        figures["start_first_s"] = time.perf_counter() - t0
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        async with Sandbox():
            starts.append(time.perf_counter() - t0)
    figures["start_warm_s"] = median(starts)

    async with Sandbox(ka_interval_s=30) as sb, aiohttp.ClientSession() as session:
        alice = sb.info.user("alice")
        post = Poster(session, sb.info, sb.id_token("alice"))
        action = await seed_action(post, alice.sub)

        samples = []
        for _ in range(500):
            t0 = time.perf_counter()
            await post(GET_ACTION, {"id": action})
            samples.append((time.perf_counter() - t0) * 1e3)
        figures["query_p50_ms"], figures["query_p99_ms"] = median(samples), percentile(samples, 99)

        ws = await subscriber(sb.info, sb.id_token("alice"), alice.sub, 1)
        round_trips, deliveries = [], []
        for n in range(500):
            status = STATUSES[(n + 1) % 2]
            t0 = time.perf_counter()
            waiting = asyncio.ensure_future(next_data(ws))
            await post(UPDATE_ACTION, {"input": {"id": action, "status": status}})
            round_trips.append((time.perf_counter() - t0) * 1e3)
            await waiting
            deliveries.append((time.perf_counter() - t0) * 1e3)
        figures["mutation_p50_ms"], figures["mutation_p99_ms"] = (
            median(round_trips),
            percentile(round_trips, 99),
        )
        figures["mutation_to_frame_p50_ms"] = median(deliveries)
        figures["mutation_to_frame_p99_ms"] = percentile(deliveries, 99)
        await ws.close()

        sockets = [await subscriber(sb.info, sb.id_token("carol"), alice.sub, 5) for _ in range(20)]
        fanout = []

        async def drain(ws: ClientConnection, frames: int) -> None:
            for _ in range(frames):
                await next_data(ws)

        for n in range(50):
            t0 = time.perf_counter()
            readers = [asyncio.ensure_future(drain(s, 5)) for s in sockets]  # 5 subscriptions per socket
            await post(UPDATE_ACTION, {"input": {"id": action, "status": STATUSES[n % 2]}})
            await asyncio.gather(*readers)
            fanout.append((time.perf_counter() - t0) * 1e3)
        figures["fanout_100_subs_p50_ms"] = median(fanout)
        for s in sockets:
            await s.close()

        ids = [await seed_action(post, alice.sub) for _ in range(8)]
        t0 = time.perf_counter()
        count = 0

        async def worker(action_id: str) -> None:
            nonlocal count
            while time.perf_counter() - t0 < 3.0:
                await post(UPDATE_ACTION, {"input": {"id": action_id, "status": STATUSES[count % 2]}})
                count += 1

        await asyncio.gather(*(worker(action_id) for action_id in ids))
        figures["mutations_per_s_8_clients"] = count / (time.perf_counter() - t0)
    return figures


def main() -> None:
    figures = asyncio.run(run())
    report(
        "sandbox",
        figures,
        {
            "start_warm_s": "< 2 s",
            "mutation_to_frame_p50_ms": "(agent budget: trail fire -> action on PC B p50 <= 30 ms)",
        },
    )


if __name__ == "__main__":
    main()
