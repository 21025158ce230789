"""The link under the faults AppSync really has: expiring tokens, missing keep-alives, revoked tokens."""

from __future__ import annotations

import asyncio
import time

import pytest

from hedge_agent.engine.events import CaughtUp, LinkState, RecordEvent
from hedge_agent.sandbox import Sandbox

from .conftest import create_action

pytestmark = pytest.mark.asyncio(loop_scope="session")


def state(name: str):
    return lambda e: isinstance(e, LinkState) and e.state == name


async def test_events_keep_flowing_while_short_lived_tokens_expire_under_the_subscription(make_client):
    async with Sandbox(id_token_ttl_s=2) as sb:
        alice = await make_client(sb, "alice")
        await alice.wait_for(lambda e: isinstance(e, CaughtUp))
        ids = []
        deadline = time.monotonic() + 5  # two and a half token lifetimes
        while time.monotonic() < deadline:
            ids.append((await create_action(sb, "alice"))["id"])
            await asyncio.sleep(0.25)
        for action_id in ids:
            await alice.wait_for(lambda e, i=action_id: isinstance(e, RecordEvent) and e.record.id == i)
        await asyncio.sleep(0.2)
        assert all(len(alice.records(i)) == 1 for i in ids), "each event exactly once"
        assert alice.client.stats.sessions >= 3  # the socket was replaced before each token expired
        # (with 1 h tokens the socket is replaced 5 minutes ahead; with 2 s tokens a loaded machine may not
        # finish the replacement within the last second, and the link reconnects instead: no event is lost)


async def test_the_keep_alive_timeout_comes_from_connection_ack_and_a_silent_server_is_dropped(make_client):
    async with Sandbox(ka_interval_s=0.1, connection_timeout_ms=800) as sb:
        alice = await make_client(sb, "alice")
        await alice.wait_for(lambda e: isinstance(e, CaughtUp))
        assert alice.client.session is not None
        assert alice.client.session.keep_alive_timeout_s == pytest.approx(0.8)
        sb.stop_keepalive()
        lost = await alice.wait_for(state("disconnected"), timeout=3)
        assert "keep-alive" in lost.detail
        sb.resume_keepalive()
        await alice.wait_for(lambda e: isinstance(e, CaughtUp) and e.generation >= 2, timeout=5)
        action = await create_action(sb, "alice")
        await alice.wait_for(lambda e: isinstance(e, RecordEvent) and e.record.id == action["id"])


async def test_tokens_refused_as_expired_are_refreshed_and_the_stream_resumes(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(lambda e: isinstance(e, CaughtUp))
    sandbox.expire_tokens()
    await alice.wait_for(lambda e: isinstance(e, CaughtUp) and e.generation >= 2, timeout=5)
    action = await create_action(sandbox, "alice")
    await alice.wait_for(lambda e: isinstance(e, RecordEvent) and e.record.id == action["id"])
    # and HTTP calls refresh on 401 by themselves
    sandbox.expire_tokens()
    assert (await alice.client.get_action(action["id"])) is not None


async def test_a_revoked_sign_in_shows_as_auth_failed_on_the_link(sandbox, make_client):
    bob = await make_client(sandbox, "bob")
    await bob.wait_for(lambda e: isinstance(e, CaughtUp))
    sandbox.revoke_refresh_tokens("bob")
    sandbox.expire_tokens()  # the socket's token is refused; the refresh that follows fails
    failed = await bob.wait_for(state("auth_failed"), timeout=5)
    assert "hedge-agent login" in failed.detail
