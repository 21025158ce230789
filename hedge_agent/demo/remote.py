"""The sandbox in its own process, as the real cloud would be: the agents' event loop is not shared with
the backend's, so latencies are measured honestly. Talks to it only over its public endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import aiohttp

from hedge_agent.cloud.auth import CognitoAuth
from hedge_agent.config import CognitoConfig
from hedge_agent.sandbox import SandboxInfo


class SandboxProcess:
    """``python -m hedge_agent.sandbox --print-json`` as a child process; ``graphql`` plays any user."""

    def __init__(self, *extra_args: str) -> None:
        self._args = extra_args
        self._proc: asyncio.subprocess.Process | None = None
        self.info: SandboxInfo
        self._auth: dict[str, CognitoAuth] = {}
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> SandboxInfo:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hedge_agent.sandbox", "--print-json", *self._args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the sandbox process exited before printing its endpoints")
        self.info = SandboxInfo.from_json(json.loads(line))
        self._http = aiohttp.ClientSession()
        return self.info

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    async def _token(self, username: str) -> str:
        auth = self._auth.get(username)
        if auth is None:
            info = self.info
            auth = CognitoAuth(
                CognitoConfig(
                    region=info.region,
                    user_pool_id=info.user_pool_id,
                    client_id=info.client_id,
                    username=username,
                    endpoint_url=info.cognito_endpoint,
                )
            )
            await auth.sign_in_with_password(info.user(username).password)
            self._auth[username] = auth
        return await auth.id_token()

    async def graphql(
        self, username: str, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        assert self._http is not None
        headers = {"Authorization": await self._token(username), "Content-Type": "application/json"}
        body = {"query": query, "variables": variables or {}}
        async with self._http.post(self.info.graphql_url, json=body, headers=headers) as resp:
            result: dict[str, Any] = await resp.json(content_type=None)
            return result
