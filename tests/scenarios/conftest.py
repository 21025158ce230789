from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hedge_agent.sandbox import Sandbox

from .harness import World


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """A fresh sandbox backend; agents started with ``world.start_agent`` are stopped at the end."""
    async with Sandbox() as sb:
        w = World(sb, tmp_path)
        try:
            yield w
        finally:
            await w.stop()


@pytest.fixture
async def world_without_user_rows(tmp_path: Path) -> AsyncIterator[World]:
    """As ``world``, on a sandbox started like ``--no-user-rows``: no User records, as on AWS before the
    admin UI (or a sign-up trigger) creates them."""
    async with Sandbox(user_rows=False) as sb:
        w = World(sb, tmp_path)
        try:
            yield w
        finally:
            await w.stop()
