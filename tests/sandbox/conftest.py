"""One sandbox per test module (start-up is ~0.3 s once moto is imported); tests create their own records."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from hedge_agent.sandbox import Sandbox


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(ka_interval_s=0.2) as sb:
        yield sb
