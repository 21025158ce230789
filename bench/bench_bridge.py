"""MT4 bridge speed: an order's round trip against a bare websockets echo, and tick throughput.

The EA side runs in a child process, as the real EA runs in the terminal's process; the agent side runs
here. Every pair uses the same loopback, the same websockets settings and the same child/parent split, and
the round trips are interleaved in one run so that load from elsewhere on the machine hits all alike:

- ``echo``: a frame of the order frame's size, echoed back by a bare websockets server;
- ``raw``: the same order frame answered with the EA's two canned frames (ack, result) by a bare server:
  the cost of the protocol's message shape alone;
- ``bridge_only``: ``Mt4BridgeTerminal.open_position`` against an EA stand-in that answers at once with
  canned frames: the bridge's own round trip (what the echo server is to websockets, this EA is to it);
- ``order``: ``open_position`` / ``close_position`` against the EA emulator trading on a SimBroker: end to
  end, with a real fill, the de-dup store and the account snapshot on the EA side, the emulator's timer at
  the EA's default ``TimerMs`` = 20 ms (the EA reads frames only in OnTimer: that is the floor of a real
  order's round trip, two orders of magnitude above the bridge's own code).

``ticks_per_s``: ticks sent by one EA connection and taken from ``quotes()`` by a consumer, with the EA's
usual frame of 4 changed symbols; ``ticks_per_s_1_per_frame`` with one tick per frame.

Run: ``.venv/bin/python -m bench.bench_bridge``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench import shim
from bench.common import percentile, report, scaled
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import IntentKind, OrderTag, intent_id, order_tag
from hedge_agent.terminals.base import Filled
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.codec import Order, encode
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.simulated import SimAccountConfig, SimBroker, default_symbols

TOKEN = "bench-" + "x" * 40
ORDERS = scaled(1_000, 5)  # open + close pairs against the emulator (and as many of each other kind)
WARM_UP = scaled(100, 2)
TICK_FRAMES = scaled(15_000, 200)
SYMBOLS = SymbolTable(broker_names={Symbol.USDJPY: "USDJPY.raw"})
BROKER_NAMES = ["USDJPY.raw", "EURUSD", "EURGBP", "XAUUSD"]
WS = {"compression": None, "ping_interval": None, "max_size": 1 << 20}
RID = "0123456789abcdef"
CANNED_ACK = '{"type":"ack","id":"' + RID + '","dup":false}'
CANNED_ACCOUNT = {
    "type": "account", "login": 5000001, "balance": 1e9, "credit": 0.0, "equity": 1e9, "margin": 108.51,
    "margin_level": 9.2e8, "currency": "USD", "trade_allowed": True, "connected": True,
}  # fmt: skip
CANNED_RESULT = json.dumps(
    {
        "type": "result", "id": RID, "status": "done", "ticket": 100000001, "price": 1.08512, "volume": 0.1,
        "time": 1.7e9, "code": 0, "reason": "", "account": CANNED_ACCOUNT,
    },
    separators=(",", ":"),
)  # fmt: skip


def quiet() -> None:
    """Production logs each order at INFO to a file; a console renderer here would time the terminal."""
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING), cache_logger_on_first_use=True
    )


# -- child processes -----------------------------------------------------------------------------------


async def until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def child_echo() -> None:
    """Echoes every frame, except that an order frame gets the two canned EA frames back."""

    async def echo(ws: ServerConnection) -> None:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith('{"type":"order"'):
                await ws.send(CANNED_ACK)
                await ws.send(CANNED_RESULT)
            else:
                await ws.send(msg)

    async with serve(echo, "127.0.0.1", 0, **WS) as server:  # type: ignore[arg-type]
        print(next(iter(server.sockets)).getsockname()[1], flush=True)
        await until_stdin_closes()


async def child_canned(port: int) -> None:
    """An EA stand-in that answers every order at once (its request id in the canned frames)."""
    async with connect(f"ws://127.0.0.1:{port}", proxy=None, **WS) as ws:  # type: ignore[arg-type]
        await shim.ea_handshake(ws, TOKEN)  # v1 or v2, as this tree's codec speaks
        await ws.send(json.dumps(CANNED_ACCOUNT, separators=(",", ":")))
        answering = asyncio.create_task(answer_orders(ws))
        await until_stdin_closes()
        answering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await answering


async def answer_orders(ws: ClientConnection) -> None:
    """Until the link ends: the bridge closing it (shutdown, or "dead peer" as this stand-in sends no
    heartbeats) is the normal end here, not an error."""
    ack, result = CANNED_ACK.split(RID), CANNED_RESULT.split(RID)
    with contextlib.suppress(ConnectionClosed):
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith('{"type":"order"'):
                rid = json.loads(msg)["id"]
                await ws.send(rid.join(ack))
                await ws.send(rid.join(result))


#: the EA's default ``TimerMs`` (ea/HedgeBridge.mq4): the EA handles frames only in OnTimer, so every real
#: order waits 0..TimerMs ms for its next timer; ``order_rtt`` includes that floor, as a user sees it
EA_TIMER_MS = 20


async def child_ea(port: int) -> None:
    broker = SimBroker(
        symbols=default_symbols({"USDJPY": "USDJPY.raw"}), account_config=SimAccountConfig(balance=1e9)
    )
    ea = EaEmulator(
        f"ws://127.0.0.1:{port}", TOKEN, broker, login=5_000_001, server="bench", timer_ms=EA_TIMER_MS
    )
    await ea.start()
    await until_stdin_closes()
    await ea.stop()


async def child_ticks(port: int, per_frame: int) -> None:
    """Connects like the EA, then sends tick frames as fast as the socket takes them."""
    broker = SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}))
    ea = EaEmulator(f"ws://127.0.0.1:{port}", TOKEN, broker, login=5_000_001, server="bench")
    ws = await ea.connect_bridge()
    await asyncio.wait_for(ws.recv(), 5)  # the bridge's watch: start
    frames = []
    for i in range(TICK_FRAMES):
        bid = 1.0 + i * 1e-5
        q = [[BROKER_NAMES[(i * per_frame + k) % 4], bid, bid + 2e-5, i] for k in range(per_frame)]
        frames.append(json.dumps({"type": "ticks", "q": q}, separators=(",", ":")))
    for f in frames:
        await ws.send(f)
    await until_stdin_closes()
    with contextlib.suppress(ConnectionClosed):  # the bridge may have dropped the silent blaster by now
        await ws.close()


# -- parent --------------------------------------------------------------------------------------------


async def spawn(*args: str) -> tuple[asyncio.subprocess.Process, int | None]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_bridge",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    port = None
    if args[0] == "--child-echo":
        assert proc.stdout is not None
        port = int((await proc.stdout.readline()).decode())
    return proc, port


async def finish(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()


def order_frame(tag: OrderTag) -> str:
    order = Order(
        id=RID,
        op="open",
        symbol="EURUSD",
        side="BUY",
        volume=0.1,
        deviation=20,
        magic=tag.magic,
        comment=tag.comment,
    )
    return encode(order)


async def round_trips() -> dict[str, list[float]]:
    full = Mt4BridgeTerminal("bench", 0, TOKEN, SYMBOLS, order_timeout_s=5)
    bare = Mt4BridgeTerminal("bench-canned", 0, TOKEN, SYMBOLS, order_timeout_s=5)
    await full.connect()
    await bare.connect()
    ea_proc, _ = await spawn("--child-ea", str(full.port))
    canned_proc, _ = await spawn("--child-canned", str(bare.port))
    echo_proc, echo_port = await spawn("--child-echo")
    while not (full.health().ok and bare.health().ok):
        await asyncio.sleep(0.01)
    tags = [
        [order_tag(intent_id(f"p{i}", k)) for k in (IntentKind.OPEN, IntentKind.CLOSE)]
        for i in range(ORDERS + WARM_UP)
    ]
    raw_order = order_frame(tags[0][0])
    payload = "x" * len(raw_order)
    rtts: dict[str, list[float]] = {"echo": [], "raw": [], "bridge_only": [], "order": []}

    def took(kind: str, t0: float, i: int) -> None:
        if i >= WARM_UP:
            rtts[kind].append((time.perf_counter() - t0) * 1e3)

    async with connect(f"ws://127.0.0.1:{echo_port}", proxy=None, **WS) as ws:  # type: ignore[arg-type]
        for i in range(ORDERS + WARM_UP):
            for _ in range(2):  # two of each per open + close pair
                t0 = time.perf_counter()
                await ws.send(payload)
                await ws.recv()
                took("echo", t0, i)
                t0 = time.perf_counter()
                await ws.send(raw_order)
                await ws.recv()
                await ws.recv()
                took("raw", t0, i)
                t0 = time.perf_counter()
                canned = await bare.open_position(Symbol.EURUSD, Side.BUY, 0.1, tags[i][0])
                took("bridge_only", t0, i)
                assert isinstance(canned, Filled), canned
            t0 = time.perf_counter()
            opened = await full.open_position(Symbol.EURUSD, Side.BUY, 0.1, tags[i][0])
            took("order", t0, i)
            assert isinstance(opened, Filled), opened
            t0 = time.perf_counter()
            closed = await full.close_position(opened.ticket, 0.1, tags[i][1])
            took("order", t0, i)
            assert isinstance(closed, Filled), closed
    for proc in (echo_proc, canned_proc, ea_proc):
        await finish(proc)
    await full.shutdown()
    await bare.shutdown()
    return rtts


async def tick_rate(per_frame: int) -> tuple[float, int]:
    """Ticks per second from the first quote the consumer takes to the last; every tick changes a price."""
    t = Mt4BridgeTerminal("bench", 0, TOKEN, SYMBOLS)
    await t.connect()
    quotes = t.quotes()
    proc, _ = await spawn("--child-ticks", str(t.port), str(per_frame))
    while t.health().detail.startswith("waiting"):
        await asyncio.sleep(0.001)
    total = TICK_FRAMES * per_frame
    await t.watch(list(Symbol))
    got, t0 = 0, 0.0
    async for _q in quotes:
        if got == 0:
            t0 = time.perf_counter()
        got += 1
        if got + t.stats().conflated_quotes >= total:
            break
    elapsed = time.perf_counter() - t0
    conflated = t.stats().conflated_quotes
    await finish(proc)
    await t.shutdown()
    return total / elapsed, conflated


async def run() -> None:
    quiet()
    rtts = await round_trips()
    ticks4, conflated4 = await tick_rate(4)
    ticks1, conflated1 = await tick_rate(1)
    p50 = {k: percentile(v, 50) for k, v in rtts.items()}
    figures = {
        "order_rtt_p50_ms": p50["order"],
        "order_rtt_p99_ms": percentile(rtts["order"], 99),
        "echo_rtt_p50_ms": p50["echo"],
        "ratio_vs_bare_ws_echo": p50["order"] / p50["echo"],
        "bridge_only_rtt_p50_ms": p50["bridge_only"],
        "bridge_only_ratio_vs_echo": p50["bridge_only"] / p50["echo"],
        "raw_ack_result_ratio_vs_echo": p50["raw"] / p50["echo"],
        "ticks_per_s": ticks4,
        "ticks_per_s_1_per_frame": ticks1,
        "ticks_conflated": float(conflated4 + conflated1),
    }
    report(
        "bridge",
        figures,
        {
            "ratio_vs_bare_ws_echo": "target <= 1.5 (EA emulator + SimBroker fill included)",
            "bridge_only_ratio_vs_echo": "the bridge alone, EA answering at once",
            "ticks_per_s": "target >= 5,000",
        },
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child-echo", action="store_true")
    p.add_argument("--child-canned", type=int)
    p.add_argument("--child-ea", type=int)
    p.add_argument("--child-ticks", type=int, nargs=2)
    a = p.parse_args()
    if a.child_echo:
        asyncio.run(child_echo())
    elif a.child_canned:
        asyncio.run(child_canned(a.child_canned))
    elif a.child_ea:
        quiet()
        asyncio.run(child_ea(a.child_ea))
    elif a.child_ticks:
        quiet()
        asyncio.run(child_ticks(*a.child_ticks))
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
