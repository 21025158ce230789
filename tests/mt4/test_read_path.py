"""The bridge's read path (server.EaConnection): an answer from the EA is handled right where websockets reads
it (in the protocol callback, no task: no hop through the link's reader task), ticks and bad frames go
through the reader, and frames are always handled in the order the EA sent them."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.asyncio.client import ClientConnection

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind, intent_id, order_tag
from hedge_agent.terminals.base import Filled
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.codec import FromEa
from hedge_agent.terminals.mt4.server import Link

from .conftest import LOGIN, Rig, until

Seen = list[tuple[str, bool]]  # (frame type, handled outside any task)


def account(balance: float) -> str:
    return json.dumps(
        {"type": "account", "login": LOGIN, "balance": balance, "credit": 0.0, "equity": balance,
         "margin": 0.0, "trade_allowed": True}
    )  # fmt: skip


def ticks(bid: float) -> str:
    return json.dumps({"type": "ticks", "q": [["EURUSD", bid, bid + 2e-5, 1]]})


async def raw_ea(rig: Rig) -> tuple[Mt4BridgeTerminal, ClientConnection, Seen]:
    """A bridge, an EA link driven by hand, and a record of every frame the bridge hands its terminal."""
    t = await rig.bridge()
    ws = await rig.ea(t.port).connect_bridge()
    await until(lambda: t._link is not None)
    seen: Seen = []
    server: Any = t._server
    handle = server._on_frame

    def record(link: Link, msg: FromEa) -> None:
        seen.append((msg.type, asyncio.current_task() is None))
        handle(link, msg)

    server._on_frame = record
    return t, ws, seen


async def answer_one_order(ws: ClientConnection) -> None:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "order":
            break
    rid = frame["id"]
    await ws.send(json.dumps({"type": "ack", "id": rid}))
    result = {
        "type": "result",
        "id": rid,
        "status": "done",
        "ticket": 7,
        "price": 1.1,
        "volume": 0.1,
        "time": 1.7e9,
    }
    await ws.send(json.dumps(result))


async def test_an_order_s_ack_and_result_are_handled_where_they_are_read(rig: Rig):
    t, ws, seen = await raw_ea(rig)
    answering = asyncio.create_task(answer_one_order(ws))
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, order_tag(intent_id("p1", IntentKind.OPEN)))
    await answering
    assert isinstance(res, Filled) and res.ticket == "7", res
    assert seen == [("ack", True), ("result", True)]
    await ws.close()


async def test_frames_are_handled_in_the_order_sent_whichever_path_each_takes(rig: Rig):
    """Ticks go through the reader task; an account frame right behind them waits its turn (handled before
    the ticks, a stale balance would win)."""
    t, ws, seen = await raw_ea(rig)
    sent = [ticks(1.1), account(1.0), ticks(1.2), account(2.0), "{not json", account(3.0)]
    for frame in sent:
        await ws.send(frame)
    await until(lambda: len(seen) == 5)  # the bad frame is answered with an error, not handed on
    assert [kind for kind, _ in seen] == ["ticks", "account", "ticks", "account", "account"]
    assert [outside for kind, outside in seen if kind == "ticks"] == [False, False]
    assert (await t.account_info()).balance == 3.0
    error = json.loads(await asyncio.wait_for(next_of(ws, "error"), 3))
    assert error["code"] == "bad_frame"
    await ws.send(account(4.0))  # nothing queued ahead any more: handled where it is read
    await until(lambda: len(seen) == 6)
    assert seen[-1] == ("account", True)
    await ws.close()


async def next_of(ws: ClientConnection, kind: str) -> str:
    while True:
        raw = await ws.recv()
        assert isinstance(raw, str)
        if json.loads(raw)["type"] == kind:
            return raw


async def test_the_link_is_a_plain_socket_as_the_ea_s_no_compression_and_no_nagle_delay(rig: Rig):
    """The real EA negotiates no extension (permessage-deflate would cost every frame on both sides) and the
    bridge's small frames must not wait for Nagle's algorithm."""
    t, ws, _ = await raw_ea(rig)
    link = t._link
    assert link is not None
    assert link.ws.protocol.extensions == []
    sock = link.ws.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    await ws.close()
