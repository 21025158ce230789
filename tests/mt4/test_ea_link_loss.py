"""Data the agent sent before its FIN (or reset) is valid data (PROTOCOL §7, "link loss"): the EA handles every
complete frame of an authenticated link already received before it treats the link as failed, stores the
results, and answers them on the next link; partial frames and anything before the challenge is passed are
not handled, and nothing executes twice.

Before, an agent SIGKILLed right after writing an order (tests/scenarios/test_crash.py) left the order in the
EA's receive buffer, and the EA dropped it together with the link: the agent, which had marked the order
sent, found nothing and failed the action 60 s later.

The bridge here is written by hand on raw TCP (tests/mt4/rawbridge.py) so that the order and the end of the
link go out in one write, as the kernel of a killed agent delivers them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import TOKEN, Rig
from .rawbridge import RawBridge, RawLink, server_frame, welcome_frame

MAGIC = 424242


def order(rid: str, volume: float = 0.1) -> dict[str, Any]:
    return {"type": "order", "id": rid, "op": "open", "symbol": "EURUSD", "side": "BUY", "volume": volume, "deviation": 20, "magic": MAGIC, "comment": f"ha:{rid}"}  # fmt: skip


def frame(obj: dict[str, Any]) -> bytes:
    return server_frame(json.dumps(obj))


async def ask(link: RawLink, query: dict[str, Any]) -> dict[str, Any]:
    link.writer.write(frame(query))
    while True:
        answer = await link.recv_json("trades")
        if answer["id"] == query["id"]:
            return answer


async def wait(event: asyncio.Event, bridge: RawBridge, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        await event.wait()
    assert not bridge.failures, bridge.failures


@pytest.mark.parametrize("ending", ["fin", "reset"])
@pytest.mark.parametrize("with_welcome", [False, True], ids=["after-welcome", "welcome-in-same-write"])
async def test_an_order_that_arrives_with_the_agents_fin_is_executed_and_found_on_the_next_link(
    rig: Rig, ending: str, with_welcome: bool
):
    """The agent writes one order and dies in the same instant. The EA executes it before it reconnects;
    on the next link a lookup finds the trade and the stored result, and the same order sent again is
    answered from the store (dup), never placed twice."""
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    async def script(link: RawLink, i: int) -> None:
        await link.authenticate()
        if i == 0:
            if with_welcome:  # the EA is still in its handshake (auth sent) when all of it arrives
                link.write_and_vanish(welcome_frame() + frame(order("o-1")), reset=ending == "reset")
                return
            link.writer.write(welcome_frame())
            await link.recv_json("account")  # the EA is in its loop
            link.write_and_vanish(frame(order("o-1")), reset=ending == "reset")
            return
        link.writer.write(welcome_frame("second"))
        seen["trades"] = await ask(link, {"type": "query", "id": "q-1", "req": "o-1", "magic": MAGIC})
        link.writer.write(frame(order("o-1")))
        seen["ack"] = await link.recv_json("ack")
        seen["result"] = await link.recv_json("result")
        done.set()
        await link.hold()  # until the EA stops

    async with RawBridge(TOKEN, script).running() as bridge:
        ea = rig.ea(bridge.port)
        await ea.start()
        await wait(done, bridge)
        await ea.stop()

    (placed,) = rig.broker.order_log
    assert placed.request_id == "o-1" and placed.executed and placed.magic == MAGIC
    stored = seen["trades"]["stored"]
    assert stored["status"] == "done" and stored["ticket"] == placed.position, seen["trades"]
    (trade,) = seen["trades"]["trades"]
    assert trade["ticket"] == placed.position and trade["magic"] == MAGIC and trade["comment"] == "ha:o-1"
    assert seen["ack"] == {"type": "ack", "id": "o-1", "dup": True}
    assert seen["result"]["status"] == "done" and seen["result"]["ticket"] == placed.position
    assert ea.store["o-1"].status == "done"
    assert ea.connections == 2


async def test_every_complete_frame_before_the_fin_is_handled_in_order_and_a_partial_one_is_discarded(
    rig: Rig,
):
    """Three orders and a query in one write, the last order cut in half by the FIN. The EA's answers to the
    first go into a socket already dead (its sends fail): it still executes the second, answers nothing more
    and does not trip over the query; the half order is never executed or stored."""
    seen: dict[str, Any] = {}
    done = asyncio.Event()

    async def script(link: RawLink, i: int) -> None:
        await link.authenticate()
        link.writer.write(welcome_frame(f"s{i}"))
        if i == 0:
            await link.recv_json("account")
            query = frame({"type": "query", "id": "q-0", "req": "a", "magic": MAGIC})
            cut = frame(order("c", 0.3))
            link.write_and_vanish(frame(order("a")) + frame(order("b", 0.2)) + query + cut[: len(cut) // 2])
            return
        for rid in ("a", "b", "c"):
            seen[rid] = await ask(link, {"type": "query", "id": f"q-{rid}", "req": rid})
        done.set()
        await link.hold()

    async with RawBridge(TOKEN, script).running() as bridge:
        ea = rig.ea(bridge.port)
        await ea.start()
        await wait(done, bridge)
        await ea.stop()

    assert [(e.request_id, e.volume, e.executed) for e in rig.broker.order_log] == [("a", 0.1, True), ("b", 0.2, True)]  # fmt: skip
    assert seen["a"]["stored"]["status"] == "done" and seen["b"]["stored"]["status"] == "done"
    assert seen["c"].get("stored") is None  # never seen: the bridge may send it again
    assert "c" not in ea.store


async def no_challenge(link: RawLink) -> None:
    """Skips the challenge: a welcome and an order right after the hello, and gone."""
    await link.upgrade()
    await link.recv_json("hello")
    link.write_and_vanish(welcome_frame() + frame(order("evil")))


async def made_up_proof(link: RawLink) -> None:
    """Does not hold the token: a made-up proof, a welcome and an order in one write, and gone."""
    await link.upgrade()
    await link.recv_json("hello")
    bad = {"type": "challenge", "v": 2, "nonce": "b" * 64, "proof": "0" * 64}
    link.write_and_vanish(frame(bad) + welcome_frame() + frame(order("evil")))


@pytest.mark.parametrize("impostor", [no_challenge, made_up_proof], ids=["no-challenge", "made-up-proof"])
async def test_frames_of_a_link_that_never_passed_the_challenge_are_not_handled_even_before_a_fin(
    rig: Rig, impostor: Any
):
    third = asyncio.Event()

    async def script(link: RawLink, i: int) -> None:
        if i >= 2:
            third.set()  # the EA has finished with the first two links: it connects only after a failure
            return
        await impostor(link)

    async with RawBridge(TOKEN, script).running() as bridge:
        ea = rig.ea(bridge.port)
        await ea.start()
        await wait(third, bridge)
        await ea.stop()
    assert rig.broker.order_log == [] and not ea.store and ea.connections == 0
