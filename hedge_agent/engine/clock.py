"""The engine's clocks. Engine code never reads ``time.monotonic()``/``time.time()`` itself: every part takes
its clock injected, and the default is the running event loop's own clock, so a loop with virtual time (the
deterministic simulator) drives every deadline, grace period and latency sample."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
WallClock = Callable[[], datetime]


def loop_clock() -> float:
    """Monotonic seconds of the running loop (``loop.time()``); only valid on the loop thread."""
    return asyncio.get_running_loop().time()


def utc_now() -> datetime:
    """Default wall clock (``datetime.now(UTC)``) for the few places that compare against cloud times."""
    return datetime.now(UTC)
