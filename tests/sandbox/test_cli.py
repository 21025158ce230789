"""``python -m hedge_agent.sandbox --print-json`` as a separate process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp

from hedge_agent.sandbox import SandboxInfo


async def test_print_json_prints_the_info_first_and_sigterm_stops_it_cleanly() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent.sandbox", "--print-json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        info = SandboxInfo.from_json(json.loads(first))
        assert sorted(json.loads(first)) == sorted(
            [
                "graphql_url",
                "realtime_url",
                "region",
                "cognito_endpoint",
                "user_pool_id",
                "client_id",
                "users",
            ]
        )
        assert {user.username for user in info.users} == {"alice", "bob", "carol"}
        assert info.user("carol").groups == ("ADMIN",)
        assert info.graphql_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            async with session.post(
                info.graphql_url, json={"query": "{ listUsers { items { id } } }"}
            ) as response:
                assert response.status == 401  # it serves, and wants a token
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_no_user_rows_serves_users_without_user_records() -> None:
    from hedge_agent.demo.remote import SandboxProcess

    async with SandboxProcess("--no-user-rows") as sb:
        alice = sb.info.user("alice")
        query = "query($id: ID!) { getUser(id: $id) { id } }"
        assert await sb.graphql("alice", query, {"id": alice.sub}) == {"data": {"getUser": None}}
        update = "mutation($i: UpdateUserInput!) { updateUser(input: $i) { id pcStatus } }"
        body = await sb.graphql("alice", update, {"i": {"id": alice.sub, "pcStatus": "ONLINE"}})
        assert [e["errorType"] for e in body["errors"]] == ["Unauthorized"]  # as AWS: no record, no owner
