"""What HedgeBridge.mq4 really does, through the emulator that now runs its loop (one timer task: one read of
the socket per round, frames handled in order, a long OrderSend blocking the round), and what the bridge
does about it: issue 13 points 2, 3, 7 and 8."""

from __future__ import annotations

import asyncio
import itertools
import json

import structlog

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind, OrderTag, intent_id, order_tag
from hedge_agent.terminals.base import Connection, Filled, Rejected, Unknown
from hedge_agent.terminals.mt4.codec import parse_from_ea
from hedge_agent.terminals.mt4.server import BAD_FRAME_LOG_EVERY, BAD_FRAME_LOG_FIRST

from .conftest import Rig, until


def tag(record: str, kind: IntentKind = IntentKind.OPEN) -> OrderTag:
    return order_tag(intent_id(record, kind))


async def test_an_order_send_longer_than_the_dead_peer_time_keeps_the_link_and_answers_queued_queries(
    rig: Rig,
):
    """Point 2. The EA is inside OrderSend for 1 s (dead_after_s is 0.5 s) while the bridge sends heartbeats
    and a positions request. Before, the EA judged the agent dead right after the order (it had read the
    socket once, before the order) and dropped the link with the request unread."""
    t, ea = await rig.linked(order_timeout_s=3.0, query_timeout_s=3.0)
    assert t._server.dead_after_s == 0.5
    ea.order_send_s = 1.0
    order = asyncio.create_task(t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("slow")))
    await until(lambda: any(e.status == "pending" for e in ea.store.values()))  # inside OrderSend
    positions = asyncio.create_task(t.positions())  # queued in the EA's socket behind the order
    res = await order
    assert isinstance(res, Filled), res
    (pos,) = await positions
    assert pos.ticket == res.ticket
    assert ea.connections == 1 and ea.last_close is None and t.stats().welcomed == 1
    assert t.health().ok


async def test_after_the_bridge_gives_up_on_an_acked_order_a_hung_ea_is_dropped_and_a_restarted_one_admitted(
    rig: Rig,
):
    """Point 3. Before, a link with an acked, unanswered order stayed exempt from the dead-peer rule for
    90 s: health said CONNECTED, new orders went into the dead socket, a restarted EA was refused busy."""
    t, hung = await rig.linked()
    hung.order_send_s = 60.0  # the terminal hangs inside OrderSend
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("hang"))
    assert isinstance(res, Unknown), res
    await until(lambda: t.health().connection is Connection.DISCONNECTED, within=1.0)
    assert not t.health().ok
    restarted = rig.ea(t.port, store=hung.store)  # same de-dup store: the same EA, restarted
    await restarted.start()
    await restarted.wait_welcomed(within=1.0)
    assert restarted.last_close is None  # never refused "busy"
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("after"))
    assert isinstance(res, Filled), res  # went to the restarted EA, not into the hung socket
    assert t.health().ok


async def test_while_an_order_is_in_the_ea_a_second_ea_is_refused_busy(rig: Rig):
    """Busy (PROTOCOL §3/§4) holds while the bridge still waits for the order; it ends when the link does."""
    t, ea = await rig.linked(order_timeout_s=3.0, query_timeout_s=3.0)
    ea.order_send_s = 0.8
    order = asyncio.create_task(t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("busy")))
    await until(lambda: any(e.status == "pending" for e in ea.store.values()))
    second = rig.ea(t.port)
    await second.start()
    await until(lambda: second.last_close is not None)
    assert second.last_close is not None and second.last_close[0] == 4006
    assert isinstance(await order, Filled)
    await second.stop()


async def test_a_flood_of_malformed_frames_yields_the_event_loop_and_logging_is_sampled(rig: Rig):
    """Point 8. 20,000 bad frames written at once: before, the bridge read every buffered frame without
    yielding (370-630 ms stalls). A sentinel task records how far the count moved between its turns."""
    t, ea = await rig.linked()
    n = 20_000
    frame = b"\x81\x88\x00\x00\x00\x00not json"  # FIN+text, masked (key 0), 8 bytes
    samples: list[int] = []

    async def sentinel() -> None:
        while True:
            samples.append(t._server.bad_frames)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(sentinel())
    with structlog.testing.capture_logs() as logs:
        assert ea._ws is not None
        ea._ws.transport.write(frame * n)
        await until(lambda: t._server.bad_frames >= n, within=20.0)
    watcher.cancel()
    steps = [b - a for a, b in itertools.pairwise(samples)]
    assert max(steps) <= 8, f"the loop was starved: {max(steps)} frames between two turns"
    logged = [e for e in logs if e["event"] == "bridge.bad_frame"]
    assert len(logged) == BAD_FRAME_LOG_FIRST + n // BAD_FRAME_LOG_EVERY
    assert logged[-1]["count"] == n
    assert ea.connections == 1 and t.health().connection is Connection.CONNECTED


async def test_an_order_whose_side_is_not_exactly_buy_or_sell_is_refused_and_nothing_is_placed(rig: Rig):
    """Point 7. The EA used to open a SELL for any side but "BUY". Sent by hand (the bridge's codec never
    builds such an order): the EA answers error with the id as ref, no ack, no store entry, no trade."""
    t, ea = await rig.linked()
    assert t._link is not None
    for i, side in enumerate(["buy", "Buy", "LONG", "", None, 1]):
        frame: dict[str, object] = {"type": "order", "id": f"bad-side-{i}", "op": "open", "symbol": "EURUSD"}
        frame.update(side=side, volume=0.1, deviation=20, magic=7, comment="x")
        before = len(ea.errors)
        await t._link.ws.send(json.dumps(frame))
        await until(lambda i=i: ea.handled.count("order") > i)  # type: ignore[misc]
        assert len(ea.errors) == before  # it is the EA that complains, to the bridge
    assert rig.broker.order_log == [] and not ea.store


async def test_an_order_the_ea_refuses_is_a_permanent_rejection_for_the_caller(rig: Rig):
    """The EA's error with ``ref`` = the order id resolves that order at once (not after the timeouts)."""
    t, _ea = await rig.linked(order_timeout_s=5.0, query_timeout_s=5.0)
    rig.broker.trade_allowed = True
    # a close of ticket 0 passes the codec (ticket >= 0) but not the EA's check
    res = await asyncio.wait_for(t.close_position("0", 0.1, tag("zero", IntentKind.CLOSE)), 2.0)
    assert isinstance(res, Rejected) and not res.retryable and "ticket" in res.reason, res
    assert rig.broker.order_log == []


async def test_a_text_frame_that_is_not_utf8_closes_the_link_with_1007_and_the_ea_comes_back(rig: Rig):
    """PROTOCOL §1 (RFC 6455 §8.1), done by the bridge's WebSocket library before the frame is read."""
    t, ea = await rig.linked()
    assert ea._ws is not None
    ea._ws.transport.write(b"\x81\x82\x00\x00\x00\x00\xc3\x28")  # FIN+text, masked (key 0), invalid UTF-8
    await until(lambda: ea.connections >= 2)
    assert ea.last_close is not None and ea.last_close[0] == 1007
    assert t.health().connection is Connection.CONNECTED


async def test_a_crossed_quote_is_dropped_by_the_bridge(rig: Rig):
    """PROTOCOL §4: ask below bid is skipped (no error), the next sane quote passes."""
    t, _ea = await rig.linked()
    await t.watch([Symbol.EURUSD])
    stream = t.quotes()
    assert t._link is not None
    t._on_frame(t._link, parse_from_ea('{"type":"ticks","q":[["EURUSD",1.2,1.1,1]]}'))
    t._on_frame(t._link, parse_from_ea('{"type":"ticks","q":[["EURUSD",1.1,1.2,2]]}'))
    while True:
        q = await asyncio.wait_for(anext(stream), 2.0)
        assert q.ask >= q.bid
        if (q.bid, q.ask) == (1.1, 1.2):
            break
