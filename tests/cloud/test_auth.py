"""Cognito sign-in and token freshness against the sandbox's user pool (moto, over HTTP)."""

from __future__ import annotations

import asyncio
import time

import pytest

from hedge_agent.cloud import CognitoAuth, TokenStore, login, logout, resume
from hedge_agent.cloud.auth import decode_claims
from hedge_agent.cloud.token_store import entry_name
from hedge_agent.errors import AuthError
from hedge_agent.sandbox import Sandbox

from .conftest import cognito_config, signed_in
from .keyring_memory import MemoryKeyring

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_srp_sign_in_yields_an_id_token_for_the_users_sub(sandbox):
    auth = await signed_in(sandbox, "alice")
    token = await auth.id_token()
    claims = decode_claims(token)
    assert auth.sub == sandbox.info.user("alice").sub == claims["sub"]
    assert claims["token_use"] == "id"
    assert auth.refresh_token


async def test_admin_group_membership_is_read_from_the_token(sandbox):
    assert "ADMIN" in (await signed_in(sandbox, "carol")).groups
    assert (await signed_in(sandbox, "alice")).groups == ()


async def test_a_wrong_password_gets_a_clear_auth_error_that_does_not_repeat_it(sandbox):
    auth = CognitoAuth(cognito_config(sandbox, "alice"))
    with pytest.raises(AuthError, match="incorrect username or password") as info:
        await auth.sign_in_with_password("Not-Alices-Password-9")
    assert "Not-Alices-Password-9" not in str(info.value)
    assert not auth.signed_in


async def test_an_unknown_user_gets_a_clear_auth_error(sandbox):
    auth = CognitoAuth(cognito_config(sandbox, "mallory"))
    with pytest.raises(AuthError, match="incorrect username or password") as info:
        await auth.sign_in_with_password("Secret-Pass-123")
    assert "Secret-Pass-123" not in str(info.value)
    assert not auth.signed_in


async def test_a_wrong_app_client_is_reported_as_a_config_problem(sandbox):
    config = cognito_config(sandbox, "alice").model_copy(update={"client_id": "no-such-client"})
    with pytest.raises(AuthError, match="client"):
        await CognitoAuth(config).sign_in_with_password("whatever-1")


async def test_a_refresh_token_signs_the_user_in_again(sandbox):
    first = await signed_in(sandbox, "alice")
    second = CognitoAuth(cognito_config(sandbox, "alice"))
    assert first.refresh_token is not None
    await second.sign_in_with_refresh_token(first.refresh_token)
    assert second.sub == first.sub


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_id_token_is_refreshed_five_minutes_before_it_expires(sandbox):
    mono, wall = FakeClock(), FakeClock()
    auth = CognitoAuth(cognito_config(sandbox, "alice"), monotonic=mono, wall=wall)
    await auth.sign_in_with_password(sandbox.info.user("alice").password)
    first, deadline = await auth.id_token_with_deadline()
    claims = decode_claims(first)
    lifetime = claims["exp"] - claims["iat"]
    assert deadline == pytest.approx(mono.now + lifetime - 300)
    mono.now = wall.now = deadline - 1  # both clocks started at the same value
    assert await auth.id_token() == first  # still fresh
    mono.now += 1
    wall.now += 1
    second = await auth.id_token()
    assert second != first


async def test_a_token_is_refreshed_when_the_wall_clock_says_the_pc_slept(sandbox):
    mono, wall = FakeClock(), FakeClock()
    auth = CognitoAuth(cognito_config(sandbox, "alice"), monotonic=mono, wall=wall)
    await auth.sign_in_with_password(sandbox.info.user("alice").password)
    first = await auth.id_token()
    wall.now += 3_600  # suspended for an hour: the monotonic clock did not move
    assert await auth.id_token() != first


async def test_short_lived_tokens_are_refreshed_at_half_their_lifetime():
    async with Sandbox(id_token_ttl_s=2) as sb:
        auth = await signed_in(sb, "alice")
        _, deadline = await auth.id_token_with_deadline()
        assert deadline - time.monotonic() == pytest.approx(1.0, abs=0.3)


async def test_a_forced_refresh_on_the_same_stale_token_happens_once(sandbox):
    auth = await signed_in(sandbox, "alice")
    stale = await auth.id_token()
    await asyncio.gather(*(auth.force_refresh(stale=stale) for _ in range(5)))
    fresh = await auth.id_token()
    assert fresh != stale
    await auth.force_refresh(stale=stale)  # already replaced: nothing to do
    assert await auth.id_token() == fresh


async def test_a_revoked_refresh_token_says_to_log_in_again(sandbox):
    auth = await signed_in(sandbox, "alice")
    sandbox.revoke_refresh_tokens("alice")
    with pytest.raises(AuthError, match="hedge-agent login") as info:
        await auth.force_refresh()
    assert auth.refresh_token is not None and auth.refresh_token not in str(info.value)
    with pytest.raises(AuthError, match="no longer valid"):
        await CognitoAuth(cognito_config(sandbox, "alice")).sign_in_with_refresh_token(auth.refresh_token)


async def test_login_stores_the_sign_in_resume_uses_it_and_logout_removes_it(sandbox, tmp_path):
    config = cognito_config(sandbox, "alice")
    store = TokenStore(MemoryKeyring(), tmp_path)
    sub = await login(config, sandbox.info.user("alice").password, store)
    assert sub == sandbox.info.user("alice").sub
    assert store.load(entry_name(config))
    resumed = await resume(config, store)
    assert resumed.sub == sub
    assert logout(config, store) is True
    with pytest.raises(AuthError, match="hedge-agent login"):
        await resume(config, store)


async def test_an_empty_password_is_refused_before_any_request():
    config = cognito_config_offline()
    with pytest.raises(AuthError, match="empty password"):
        await CognitoAuth(config).sign_in_with_password("")


def cognito_config_offline():
    from hedge_agent.config import CognitoConfig

    return CognitoConfig(region="us-east-1", user_pool_id="us-east-1_abc", client_id="x", username="alice")


async def test_using_tokens_before_signing_in_is_a_clear_error():
    auth = CognitoAuth(cognito_config_offline())
    with pytest.raises(AuthError, match="hedge-agent login"):
        await auth.id_token()
    assert "signed_in=False" in repr(auth)


class _FakeCognito:
    """A Cognito endpoint on 127.0.0.1 answering every call with one error, in the documented form: the JSON
    body's ``__type`` (possibly namespaced ``...#Code``) or only the ``x-amzn-ErrorType`` header."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        import http.server
        import threading

        fake = self
        self.calls: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.calls.append(self.headers.get("X-Amz-Target") or "")
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _config_at(url: str):
    return cognito_config_offline().model_copy(update={"endpoint_url": url})


async def test_an_unreachable_cognito_is_a_retryable_error_naming_no_secret():
    import socket

    from hedge_agent.errors import RetryableError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(RetryableError, match="cannot reach Cognito") as info:
        await CognitoAuth(_config_at(url)).sign_in_with_password("Secret-Pass-123")
    assert "Secret-Pass-123" not in str(info.value)
    with pytest.raises(RetryableError, match="cannot reach Cognito"):
        await CognitoAuth(_config_at(url)).sign_in_with_refresh_token("some-refresh-token")


async def test_a_busy_cognito_is_tried_twice_then_a_retryable_error():
    from hedge_agent.errors import RetryableError

    fake = _FakeCognito(400, b'{"__type":"TooManyRequestsException","message":"Rate exceeded"}')
    try:
        with pytest.raises(RetryableError, match="TooManyRequestsException"):
            await CognitoAuth(_config_at(fake.url)).sign_in_with_refresh_token("some-refresh-token")
        assert fake.calls == ["AWSCognitoIdentityProviderService.InitiateAuth"] * 2
    finally:
        fake.close()


async def test_a_namespaced_error_type_or_the_header_alone_is_understood():
    namespaced = b'{"__type":"com.amazonaws.cognito.identity.idp.model#UserNotFoundException","message":"x"}'
    fake = _FakeCognito(400, namespaced)
    try:
        with pytest.raises(AuthError, match=r"incorrect username or password \(UserNotFoundException\)"):
            await CognitoAuth(_config_at(fake.url)).sign_in_with_password("Secret-Pass-123")
    finally:
        fake.close()
    fake = _FakeCognito(400, b"", {"x-amzn-ErrorType": "NotAuthorizedException:"})
    try:
        with pytest.raises(AuthError, match="no longer valid"):
            await CognitoAuth(_config_at(fake.url)).sign_in_with_refresh_token("some-refresh-token")
    finally:
        fake.close()


async def test_a_refresh_token_sign_in_and_its_errors_never_import_boto3():
    """The stored-sign-in path (every ``run`` after ``login``) needs neither pycognito nor boto3."""
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from hedge_agent.cloud import CognitoAuth\n"
        "from hedge_agent.config import CognitoConfig\n"
        "from hedge_agent.errors import RetryableError\n"
        "c = CognitoConfig(region='us-east-1', user_pool_id='us-east-1_abc', client_id='x', username='a',\n"
        "                  endpoint_url='http://127.0.0.1:9/')\n"
        "try:\n"
        "    asyncio.run(CognitoAuth(c).sign_in_with_refresh_token('t'))\n"
        "except RetryableError:\n"
        "    pass\n"
        # (gql's AppSync module imports botocore's bare package, which loads no service model)
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'pycognito')\n"
        "             or m in ('botocore.client', 'botocore.session', 'botocore.loaders')))\n"
    )
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
