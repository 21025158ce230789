"""MT4 bridge speed: an order's round trip against a bare websockets echo, and tick throughput.

The EA side (the EA emulator on a SimBroker, or the echo server) runs in a child process, as the real EA
runs in the terminal's process; the agent side (the bridge, or the echo client) runs here. Both pairs use
the same loopback, the same websockets settings and the same child/parent split, in the same run.

- ``order_rtt_p50_ms``: ``open_position`` / ``close_position`` on ``Mt4BridgeTerminal``, end to end (order
  frame out, the EA's ack + account + result frames back, the SimBroker fill in between);
- ``echo_rtt_p50_ms``: a frame of the order frame's size sent and echoed back;
- ``ratio_vs_bare_ws_echo``: their quotient (target <= 1.5);
- ``ticks_per_s``: ticks sent by one EA connection and delivered by ``quotes()`` (target >= 5,000), with
  the EA's usual frame of 4 changed symbols, and ``ticks_per_s_1_per_frame`` with one tick per frame.

Run: ``.venv/bin/python -m bench.bench_bridge``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time

import structlog
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench.common import percentile, report
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import IntentKind, intent_id, order_tag
from hedge_agent.terminals.base import Filled
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.codec import Order, encode
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.simulated import SimAccountConfig, SimBroker, default_symbols

TOKEN = "bench-" + "x" * 40
ORDERS = 1_000  # open + close pairs
TICK_FRAMES = 15_000
SYMBOLS = SymbolTable(broker_names={Symbol.USDJPY: "USDJPY.raw"})
BROKER_NAMES = ["USDJPY.raw", "EURUSD", "EURGBP", "XAUUSD"]
CANNED_ACK = '{"type":"ack","id":"0123456789abcdef","dup":false}'
CANNED_RESULT = json.dumps(
    {
        "type": "result", "id": "0123456789abcdef", "status": "done", "ticket": 100000001, "price": 1.08512,
        "volume": 0.1, "time": 1.7e9, "code": 0, "reason": "",
        "account": {"type": "account", "login": 5000001, "balance": 1e9, "credit": 0.0, "equity": 1e9,
                    "margin": 108.51, "margin_level": 9.2e8, "currency": "USD", "trade_allowed": True,
                    "connected": True},
    },
    separators=(",", ":"),
)  # fmt: skip
WS = {"compression": None, "ping_interval": None, "max_size": 1 << 20}


def quiet() -> None:
    """Production logs orders at INFO to a file; a console renderer here would measure the terminal."""
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING), cache_logger_on_first_use=True
    )


# -- child processes -----------------------------------------------------------------------------------


async def child_echo() -> None:
    """Echoes every frame; an order frame gets the EA's two canned answers instead (ack, result), with no
    parsing and no trading: the cost of the protocol's message shape alone."""

    async def echo(ws: ServerConnection) -> None:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith('{"type":"order"'):
                await ws.send(CANNED_ACK)
                await ws.send(CANNED_RESULT)
            else:
                await ws.send(msg)

    async with serve(echo, "127.0.0.1", 0, **WS) as server:  # type: ignore[arg-type]
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(
            None, sys.stdin.read
        )  # until the parent closes stdin


async def child_ea(port: int) -> None:
    broker = SimBroker(
        symbols=default_symbols({"USDJPY": "USDJPY.raw"}), account_config=SimAccountConfig(balance=1e9)
    )
    ea = EaEmulator(f"ws://127.0.0.1:{port}", TOKEN, broker, login=5_000_001, server="bench", timer_ms=50)
    await ea.start()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await ea.stop()


async def child_ticks(port: int, per_frame: int) -> None:
    """Connects like the EA, then sends tick frames as fast as the socket takes them."""
    broker = SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}))
    ea = EaEmulator(f"ws://127.0.0.1:{port}", TOKEN, broker, login=5_000_001, server="bench")
    ws = await ea.connect_bridge()
    await asyncio.wait_for(ws.recv(), 5)  # the bridge's watch: start
    frames = []
    for i in range(TICK_FRAMES):
        q = [
            [BROKER_NAMES[(i * per_frame + k) % 4], 1.0 + i * 1e-5, 1.0 + i * 1e-5 + 2e-5, i]
            for k in range(per_frame)
        ]
        frames.append(json.dumps({"type": "ticks", "q": q}, separators=(",", ":")))
    for f in frames:
        await ws.send(f)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
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


async def round_trips(size: int) -> tuple[list[float], list[float], list[float]]:
    """Echo, raw order-shaped and bridge order round trips, interleaved so that load from elsewhere on the
    machine hits all alike."""
    t = Mt4BridgeTerminal("bench", 0, TOKEN, SYMBOLS, order_timeout_s=5)
    await t.connect()
    ea_proc, _ = await spawn("--child-ea", str(t.port))
    echo_proc, echo_port = await spawn("--child-echo")
    while not t.health().ok:
        await asyncio.sleep(0.01)
    payload = "x" * size
    tag = order_tag(intent_id("raw", IntentKind.OPEN))
    raw_order = encode(
        Order(
            id="0123456789abcdef",
            op="open",
            symbol="EURUSD",
            side="BUY",
            volume=0.1,
            deviation=20,
            magic=tag.magic,
            comment=tag.comment,
        )
    )  # noqa: E501
    echoes: list[float] = []
    raws: list[float] = []
    orders: list[float] = []
    async with connect(f"ws://127.0.0.1:{echo_port}", proxy=None, **WS) as ws:  # type: ignore[arg-type]
        for i in range(ORDERS + 100):
            warm = i < 100
            for _ in range(2):
                t0 = time.perf_counter()
                await ws.send(payload)
                await ws.recv()
                if not warm:
                    echoes.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                await ws.send(raw_order)
                await ws.recv()
                await ws.recv()
                if not warm:
                    raws.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            opened = await t.open_position(
                Symbol.EURUSD, Side.BUY, 0.1, order_tag(intent_id(f"p{i}", IntentKind.OPEN))
            )
            t1 = time.perf_counter()
            assert isinstance(opened, Filled), opened
            closed = await t.close_position(
                opened.ticket, 0.1, order_tag(intent_id(f"p{i}", IntentKind.CLOSE))
            )
            t2 = time.perf_counter()
            assert isinstance(closed, Filled), closed
            if not warm:
                orders += [(t1 - t0) * 1e3, (t2 - t1) * 1e3]
    await finish(echo_proc)
    await finish(ea_proc)
    await t.shutdown()
    return echoes, raws, orders


async def tick_rate(per_frame: int) -> tuple[float, int]:
    t = Mt4BridgeTerminal("bench", 0, TOKEN, SYMBOLS)
    await t.connect()
    quotes = t.quotes()
    proc, _ = await spawn("--child-ticks", str(t.port), str(per_frame))
    while t._link is None:
        await asyncio.sleep(0.001)
    total = TICK_FRAMES * per_frame
    last_time = TICK_FRAMES - 1
    await t.watch(list(Symbol))
    got, t0 = 0, None
    async for q in quotes:
        if t0 is None:
            t0 = time.perf_counter()
        got += 1
        if q.bid == round(1.0 + last_time * 1e-5, 10) or got >= total:
            break
    elapsed = time.perf_counter() - (t0 or 0)
    stats = t.stats()
    await finish(proc)
    await t.shutdown()
    return total / elapsed, stats.conflated_quotes


def order_frame_size() -> int:
    tag = order_tag(intent_id("p1", IntentKind.OPEN))
    order = Order(
        id="0123456789abcdef",
        op="open",
        symbol="EURUSD",
        side="BUY",
        volume=0.1,
        deviation=20,
        magic=tag.magic,
        comment=tag.comment,
    )  # noqa: E501
    return len(encode(order))


async def run() -> None:
    quiet()
    size = order_frame_size()
    echoes, raws, orders = await round_trips(size)
    ticks4, conflated4 = await tick_rate(4)
    ticks1, conflated1 = await tick_rate(1)
    echo_p50 = percentile(echoes, 50)
    order_p50 = percentile(orders, 50)
    figures = {
        "order_rtt_p50_ms": order_p50,
        "order_rtt_p99_ms": percentile(orders, 99),
        "echo_rtt_p50_ms": echo_p50,
        "ratio_vs_bare_ws_echo": order_p50 / echo_p50,
        "raw_ack_result_rtt_p50_ms": percentile(raws, 50),
        "raw_ack_result_ratio_vs_echo": percentile(raws, 50) / echo_p50,
        "frame_bytes": float(size),
        "ticks_per_s": ticks4,
        "ticks_per_s_1_per_frame": ticks1,
        "ticks_conflated": float(conflated4 + conflated1),
    }
    report(
        "bridge",
        figures,
        {"ratio_vs_bare_ws_echo": "target <= 1.5", "ticks_per_s": "target >= 5,000"},
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child-echo", action="store_true")
    p.add_argument("--child-ea", type=int)
    p.add_argument("--child-ticks", type=int, nargs=2)
    a = p.parse_args()
    if a.child_echo:
        asyncio.run(child_echo())
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
