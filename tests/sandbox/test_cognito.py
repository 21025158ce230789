"""The local user pool as a real client sees it: pycognito's SRP sign-in, refresh, revocation, tokens."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from pycognito import Cognito

from hedge_agent.sandbox import Sandbox, SandboxInfo

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """InitiateAuth and RespondToAuthChallenge are unsigned: a client needs no AWS credentials."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def pycognito_client(info: SandboxInfo, username: str) -> Cognito:
    """The recipe for a local pool: endpoint_url for boto3, the AWS-form issuer, the pool's JWKS."""
    cognito = Cognito(
        info.user_pool_id,
        info.client_id,
        user_pool_region=info.region,
        username=username,
        boto3_client_kwargs={"endpoint_url": info.cognito_endpoint},
    )
    cognito.pool_domain_url = None  # tokens name https://cognito-idp.<region>.amazonaws.com/<pool> as issuer
    with urllib.request.urlopen(
        f"{info.cognito_endpoint}/{info.user_pool_id}/.well-known/jwks.json", timeout=5
    ) as r:
        cognito.pool_jwk = json.load(r)
    return cognito


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_pycognito_signs_in_with_srp_and_appsync_accepts_its_id_token(
    sandbox: Sandbox, no_aws_credentials: None
) -> None:
    carol = sandbox.info.user("carol")

    def sign_in() -> Cognito:
        cognito = pycognito_client(sandbox.info, "carol")
        cognito.authenticate(carol.password)
        return cognito

    cognito = await asyncio.to_thread(sign_in)
    id_claims = claims(cognito.id_token)
    assert id_claims["sub"] == carol.sub and id_claims["cognito:groups"] == ["ADMIN"]
    assert (
        id_claims["iss"]
        == f"https://cognito-idp.{sandbox.info.region}.amazonaws.com/{sandbox.info.user_pool_id}"
    )
    assert cognito.refresh_token
    assert await _http_status(sandbox, cognito.id_token) == 200


async def test_pycognito_refreshes_until_the_refresh_tokens_are_revoked(
    sandbox: Sandbox, no_aws_credentials: None
) -> None:
    bob = sandbox.info.user("bob")
    cognito = pycognito_client(sandbox.info, "bob")
    await asyncio.to_thread(cognito.authenticate, bob.password)
    first = cognito.id_token
    await asyncio.sleep(1.05)  # a new iat, so a new token
    await asyncio.to_thread(cognito.renew_access_token)
    assert cognito.id_token != first and claims(cognito.id_token)["sub"] == bob.sub
    sandbox.revoke_refresh_tokens("bob")
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(cognito.renew_access_token)
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    # ID tokens already issued stay good until they expire, as on AWS
    assert await _http_status(sandbox, cognito.id_token) == 200


async def test_srp_with_a_wrong_password_is_refused(sandbox: Sandbox, no_aws_credentials: None) -> None:
    cognito = pycognito_client(sandbox.info, "alice")
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(cognito.authenticate, "Wrong-password-1!")
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert refused.value.response["Error"]["Message"] == "Incorrect username or password."


async def test_a_wrong_password_is_refused_by_user_password_auth(sandbox: Sandbox) -> None:
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(_password_auth, sandbox.info, "alice", "wrong-password")
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


def _password_auth(info: SandboxInfo, username: str, password: str) -> dict[str, Any]:
    client = boto3.session.Session().client(
        "cognito-idp",
        endpoint_url=info.cognito_endpoint,
        region_name=info.region,
        config=Config(signature_version=UNSIGNED),
    )
    return dict(
        client.initiate_auth(
            ClientId=info.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    )


async def test_id_tokens_name_the_user_the_groups_and_expire_after_the_ttl(sandbox: Sandbox) -> None:
    token = claims(sandbox.id_token("alice"))
    assert token["token_use"] == "id" and token["aud"] == sandbox.info.client_id
    assert token["cognito:username"] == "alice" and "cognito:groups" not in token
    assert token["exp"] - token["iat"] == 3600
    assert abs(token["iat"] - time.time()) < 5
    assert claims(sandbox.id_token("carol"))["cognito:groups"] == ["ADMIN"]


async def test_a_file_backed_sandbox_keeps_its_pool_ids_and_records_across_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.db")
    async with Sandbox(db_path=db) as first:
        before = first.info
        mutation = "mutation($i: UpdateUserInput!) { updateUser(input: $i) { id pcStatus } }"
        update = {"i": {"id": before.user("alice").sub, "pcStatus": "ONLINE"}}
        assert (await first.graphql("alice", mutation, update))["data"]["updateUser"]["pcStatus"] == "ONLINE"
    async with Sandbox(db_path=db) as second:
        after = second.info
        assert (after.user_pool_id, after.client_id) == (before.user_pool_id, before.client_id)
        assert [user.sub for user in after.users] == [user.sub for user in before.users]
        query = "query($id: ID!) { getUser(id: $id) { pcStatus } }"
        body = await second.graphql("alice", query, {"id": after.user("alice").sub})
        assert body["data"]["getUser"]["pcStatus"] == "ONLINE"


async def _http_status(sandbox: Sandbox, token: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            sandbox.info.graphql_url,
            json={"query": "query { listUsers { items { id } } }"},
            headers={"Authorization": token},
        ) as response:
            return response.status
