"""Tokens and passwords never reach a log line or an exception message, even with every library at DEBUG."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from structlog.testing import capture_logs

from hedge_agent.cloud import CloudClient, CognitoAuth
from hedge_agent.engine.events import CaughtUp, RecordEvent
from hedge_agent.errors import AuthError

from .conftest import Collector, appsync_config, cognito_config, create_action

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIBRARIES = ("gql", "websockets", "aiohttp", "botocore", "urllib3")
SANDBOX_LOGGERS = (
    "hedge_agent.sandbox",
    "moto",
    "werkzeug",
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
)


async def test_no_token_or_password_appears_in_logs_or_errors(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    for name in LIBRARIES:  # whatever an earlier logging setup did: the loudest level
        caplog.set_level(logging.DEBUG, logger=name)
    secrets: set[str] = set()
    errors: list[str] = []
    password = sandbox.info.user("alice").password
    secrets.add(password)

    # the sandbox's own sign-ins go through botocore too: make the test's writes as the admin, signed in
    # before the capture starts
    await sandbox.graphql("carol", "query { listActions(limit: 1) { items { id } } }")
    with capture_logs() as events:
        auth = CognitoAuth(cognito_config(sandbox, "alice"))
        await auth.sign_in_with_password(password)
        token = await auth.id_token()
        assert auth.refresh_token is not None
        secrets |= {token, auth.refresh_token}
        secrets.add(
            base64.b64encode(json.dumps({"host": "x", "Authorization": token}).encode()).decode()[20:60]
        )
        collector = Collector(CloudClient(appsync_config(sandbox), auth))
        await collector.wait_for(lambda e: isinstance(e, CaughtUp))
        action = await create_action(sandbox, "carol", owner="alice")
        await collector.wait_for(lambda e: isinstance(e, RecordEvent) and e.record.id == action["id"])
        await collector.client.claim_action(action["id"])
        await auth.force_refresh()
        secrets.add(await auth.id_token())
        await collector.client.recycle()
        await collector.wait_for(lambda e: isinstance(e, CaughtUp) and e.generation == 2)
        await collector.close()

        with pytest.raises(AuthError) as bad_user:
            await CognitoAuth(cognito_config(sandbox, "mallory")).sign_in_with_password(password)
        errors.append(str(bad_user.value))
        sandbox.revoke_refresh_tokens("alice")
        with pytest.raises(AuthError) as revoked:
            await auth.force_refresh()
        errors.append(str(revoked.value))
        errors.append(repr(auth))

    # the sandbox's own logs (moto, its servers) are test infrastructure, not the agent
    agent_side = [r for r in caplog.records if not r.name.startswith(SANDBOX_LOGGERS)]
    logged = "\n".join(r.getMessage() for r in agent_side) + "\n".join(repr(e) for e in events)
    assert ">>>" in caplog.text, "gql's frame log was not captured: the check below would prove nothing"
    assert any(e.get("event") == "cognito.signed_in" for e in events)
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in text for text in errors)
