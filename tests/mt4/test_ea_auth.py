"""Point 9: mutual authentication. The EA proves the token to the bridge and the bridge to the EA (HMAC of
fresh nonces); neither sends the token. A program listening on the bridge port without the token learns
nothing usable from the EA and can order nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from hedge_agent.terminals.mt4.codec import BRIDGE_ROLE, EA_ROLE, new_nonce, proof
from hedge_agent.terminals.mt4.emulator import EaEmulator

from .conftest import LOGIN, TOKEN, Rig, until

Script = Callable[[ServerConnection, dict[str, Any], list[str]], Awaitable[None]]


class FakeBridge:
    """A WebSocket server on 127.0.0.1 that records every frame it receives and follows ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[str] = []
        self.port = 0

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            raw = await ws.recv()
            self.received.append(str(raw))
            await self.script(ws, json.loads(raw), self.received)
            async for more in ws:
                self.received.append(str(more))
        except Exception:  # the EA closing on us is the point of these tests
            pass


@pytest.fixture
async def fake() -> AsyncIterator[Callable[[Script], Awaitable[FakeBridge]]]:
    servers = []

    async def make(script: Script) -> FakeBridge:
        fb = FakeBridge(script)
        server = await serve(fb._handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        servers.append(server)
        fb.port = int(next(iter(server.sockets)).getsockname()[1])
        return fb

    yield make
    for s in servers:
        s.close()
        await s.wait_closed()


def order_frame(i: int) -> str:
    return json.dumps({"type": "order", "id": f"evil-{i}", "op": "open", "symbol": "EURUSD", "side": "BUY", "volume": 1.0, "deviation": 1000, "magic": 1, "comment": "x"})  # fmt: skip


async def impostor(ws: ServerConnection, hello: dict[str, Any], _rx: list[str]) -> None:
    """Never read the token: makes up a proof, then tries to order anyway."""
    await ws.send(json.dumps({"type": "challenge", "v": 2, "nonce": new_nonce(), "proof": new_nonce()}))
    for i in range(3):
        await ws.send(json.dumps({"type": "welcome", "v": 2, "session": "s", "heartbeat_s": 1, "dead_after_s": 5, "max_frame": 1 << 20}))  # fmt: skip
        await ws.send(order_frame(i))


async def skipper(ws: ServerConnection, hello: dict[str, Any], _rx: list[str]) -> None:
    """Skips the challenge: welcome and orders at once."""
    await ws.send(json.dumps({"type": "welcome", "v": 2, "session": "s", "heartbeat_s": 1, "dead_after_s": 5, "max_frame": 1 << 20}))  # fmt: skip
    await ws.send(order_frame(0))


async def reflector(ws: ServerConnection, hello: dict[str, Any], _rx: list[str]) -> None:
    """Echoes the EA's own nonce back, hoping the EA accepts a proof computed over its own data."""
    await ws.send(json.dumps({"type": "challenge", "v": 2, "nonce": hello["nonce"], "proof": hello["nonce"]}))


@pytest.mark.parametrize(
    "script", [impostor, skipper, reflector], ids=["made-up-proof", "no-challenge", "reflect"]
)
async def test_an_impostor_server_gets_nothing_usable_and_can_order_nothing(
    rig: Rig, fake: Callable[[Script], Awaitable[FakeBridge]], script: Script
):
    fb = await fake(script)
    ea = rig.ea(fb.port)
    await ea.start()
    await until(lambda: ea.attempts >= 3, within=5.0)
    await ea.stop()
    assert rig.broker.order_log == [] and not ea.store and ea.connections == 0
    everything = "\n".join(fb.received)
    assert TOKEN not in everything
    for frame in fb.received:
        obj = json.loads(frame)
        # only a hello: the version and a random nonce; no login, server, company, session or proof
        assert set(obj) == {"type", "v", "nonce"} and obj["type"] == "hello", obj
    assert str(LOGIN) not in everything and "SimBroker" not in everything
    assert len({json.loads(f)["nonce"] for f in fb.received}) == len(fb.received)  # fresh every time


async def test_the_ea_says_in_the_experts_tab_that_the_server_failed_its_challenge(
    rig: Rig, fake: Callable[[Script], Awaitable[FakeBridge]]
):
    fb = await fake(impostor)
    ea = rig.ea(fb.port)
    await ea.start()
    await until(lambda: ea.refused_servers >= 1)
    assert any("failed the challenge" in line for line in ea.experts_log)


async def test_a_server_that_holds_the_token_passes_and_learns_the_ea_proof_only_for_its_nonces(
    rig: Rig, fake: Callable[[Script], Awaitable[FakeBridge]]
):
    """The honest exchange, seen from the server: the EA's proof binds both fresh nonces."""
    nonces: dict[str, str] = {}

    async def honest(ws: ServerConnection, hello: dict[str, Any], rx: list[str]) -> None:
        b = new_nonce()
        nonces.update(a=hello["nonce"], b=b)
        await ws.send(json.dumps({"type": "challenge", "v": 2, "nonce": b, "proof": proof(TOKEN, BRIDGE_ROLE, hello["nonce"], b)}))  # fmt: skip
        auth = json.loads(await ws.recv())
        rx.append(json.dumps(auth))
        await ws.send(json.dumps({"type": "welcome", "v": 2, "session": "s1", "heartbeat_s": 1, "dead_after_s": 5, "max_frame": 1 << 20}))  # fmt: skip
        await asyncio.sleep(0.2)

    fb = await fake(honest)
    ea = rig.ea(fb.port)
    await ea.start()
    await ea.wait_welcomed()
    auth = json.loads(fb.received[1])
    assert auth["type"] == "auth" and auth["proof"] == proof(TOKEN, EA_ROLE, nonces["a"], nonces["b"])
    assert TOKEN not in "".join(fb.received)


async def test_an_ea_with_another_token_is_refused_by_the_real_bridge_and_never_welcomed(rig: Rig):
    t = await rig.bridge()
    intruder = EaEmulator(
        f"ws://127.0.0.1:{t.port}", "x" * 43, rig.broker, login=LOGIN, server="S", timer_ms=5
    )
    rig.eas.append(intruder)
    await intruder.start()
    await until(lambda: intruder.last_close is not None)
    # the bridge proves the real token first, so the intruder's own check fails and it goes no further
    assert intruder.connections == 0 and t.stats().welcomed == 0
    assert intruder.refused_servers >= 1
