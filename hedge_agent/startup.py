"""Signing in at start without giving up on a network that is not up yet.

At Windows sign-in the Wi-Fi often connects seconds after the agent starts. A sign-in that fails because
Cognito cannot be reached (``RetryableError``) is retried with the project's one backoff
(:data:`hedge_agent.cloud.retry.LINK_BACKOFF`) while the agent shows "waiting for network"; only a refused
sign-in (wrong password, revoked or missing stored sign-in: ``AuthError``) ends the start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import structlog

from hedge_agent.cloud.retry import LINK_BACKOFF, Backoff
from hedge_agent.errors import RetryableError

log = structlog.get_logger(__name__)

T = TypeVar("T")

WAITING_FOR_NETWORK = "waiting for network"
SIGNING_IN = "signing in"


class Phase(Protocol):
    def __call__(self, phase: str, detail: str) -> None: ...


async def sign_in_patiently(
    attempt: Callable[[], Awaitable[T]],
    *,
    on_phase: Phase,
    stop: asyncio.Event,
    backoff: Backoff = LINK_BACKOFF,
) -> T | None:
    """Run ``attempt`` until it signs in (its result), raises a refusal (propagated), or ``stop`` is set
    (None). Each unreachable-network failure is logged once per state change and retried after a delay."""
    delays = backoff.delays()
    waiting = False
    on_phase(SIGNING_IN, "")
    while not stop.is_set():
        try:
            result = await attempt()
        except RetryableError as e:
            delay = next(delays)
            if not waiting:
                log.warning("signin.waiting_for_network", error=str(e), retry_in_s=round(delay, 1))
                waiting = True
            else:
                log.info("signin.retrying", error=str(e), retry_in_s=round(delay, 1))
            on_phase(WAITING_FOR_NETWORK, f"{e} (next try in {delay:.0f} s)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            continue
        if waiting:
            log.info("signin.network_back")
        return result
    return None
