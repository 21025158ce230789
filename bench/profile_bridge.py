"""Where the bridge's own round trip goes (agent side): cProfile over ``open_position`` against the EA
stand-in that answers at once (``bench_bridge``'s ``bridge_only``), beside a bare websockets echo, plus
micro-timings of the codec's parts, and the floor: the same EA stand-in answering a "bridge" that does
nothing but write a ready order frame and wait for the result frame (no parse, no bookkeeping), interleaved with
the echo and the real ``open_position`` as in ``bench_bridge``. A profiling tool, not a bench.

Run: ``python -m bench.profile_bridge [n]``.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import broadcast

from bench.bench_bridge import (
    CANNED_ACK,
    CANNED_RESULT,
    SYMBOLS,
    TOKEN,
    WS,
    finish,
    order_frame,
    quiet,
    spawn,
)
from bench.common import percentile
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind, intent_id, order_tag
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.codec import Order, encode, parse_from_ea
from hedge_agent.terminals.mt4.server import EaConnection


def micro() -> list[str]:
    tag = order_tag(intent_id("p1", IntentKind.OPEN))
    fields: dict[str, Any] = {
        "id": "0123456789abcdef", "op": "open", "symbol": "EURUSD", "side": "BUY", "volume": 0.1,
        "deviation": 20, "magic": tag.magic, "comment": tag.comment,
    }  # fmt: skip
    order = Order(**fields)
    parts: dict[str, Callable[[], object]] = {
        "Order(...) (validated model)": lambda: Order(**fields),
        "encode(order)": lambda: encode(order),
        "parse_from_ea(ack)": lambda: parse_from_ea(CANNED_ACK),
        "parse_from_ea(result)": lambda: parse_from_ea(CANNED_RESULT),
    }
    loop = asyncio.new_event_loop()
    parts["loop.create_future()"] = loop.create_future
    out = []
    for name, fn in parts.items():
        n = 20_000
        t = min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6
        out.append(f"| {name} | {t:.2f} us |")
    loop.close()
    return out


async def cpu_per_op(
    ws: Any, bare: Mt4BridgeTerminal, payload: str, raw: str, tag: Any, n: int
) -> dict[str, float]:
    """This process's CPU time per round trip: what the agent side itself spends, apart from waiting."""
    out: dict[str, float] = {}

    async def echo() -> None:
        await ws.send(payload)
        await ws.recv()

    async def raw_pair() -> None:
        await ws.send(raw)
        await ws.recv()
        await ws.recv()

    async def bridge() -> None:
        await bare.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag)

    for name, op in (("echo", echo), ("raw ack+result", raw_pair), ("bridge open_position", bridge)):
        c0 = time.process_time()
        for _ in range(n):
            await op()
        out[name] = (time.process_time() - c0) / n * 1e6
    return out


async def floor(ws: Any, bare: Mt4BridgeTerminal, payload: str, tag: Any, n: int) -> list[str]:
    """p50 round trips, interleaved as in ``bench_bridge``: the echo, ``open_position``, and the floor (the
    stand-in's own cost over the echo's: its ``json.loads`` of the order, two frames, a client's masking)."""
    link = bare._link
    assert link is not None and isinstance(link.ws, EaConnection)
    conn, real = link.ws, link.ws.on_text
    frame, loop = order_frame(tag), asyncio.get_running_loop()
    waiting: list[asyncio.Future[None]] = []

    def on_result(raw: str) -> bool:
        if raw.startswith('{"type":"result"'):
            waiting.pop().set_result(None)
        return True

    async def echo() -> None:
        await ws.send(payload)
        await ws.recv()

    async def bridge() -> None:
        await bare.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag)

    async def least() -> None:
        waiting.append(loop.create_future())
        conn.on_text = on_result
        broadcast((conn,), frame)
        await waiting[-1]
        conn.on_text = real

    rtts: dict[str, list[float]] = {"echo": [], "bridge open_position": [], "floor (write, wait)": []}
    names = dict(zip((echo, bridge, least), rtts, strict=True))
    for i in range(n):
        for op in (echo, bridge, echo, least):  # each right after an echo (the other child): both as cold
            t0 = time.perf_counter()
            await op()
            if i >= n // 10:
                rtts[names[op]].append((time.perf_counter() - t0) * 1e6)
    e = percentile(rtts["echo"], 50)
    return [
        f"  {k}: p50 {percentile(v, 50):.1f} us, {percentile(v, 50) / e:.2f} x echo" for k, v in rtts.items()
    ]


async def run(n: int) -> str:
    quiet()
    bare = Mt4BridgeTerminal("bench-canned", 0, TOKEN, SYMBOLS, order_timeout_s=5)
    await bare.connect()
    canned_proc, _ = await spawn("--child-canned", str(bare.port))
    echo_proc, echo_port = await spawn("--child-echo")
    while not bare.health().ok:
        await asyncio.sleep(0.01)
    tag = order_tag(intent_id("p1", IntentKind.OPEN))
    payload = "x" * len(order_frame(tag))
    prof = cProfile.Profile()
    bridge, echo = [], []
    async with connect(f"ws://127.0.0.1:{echo_port}", proxy=None, **WS) as ws:  # type: ignore[arg-type]
        for i in range(n):
            t0 = time.perf_counter()
            await ws.send(payload)
            await ws.recv()
            echo.append((time.perf_counter() - t0) * 1e3)
            if i >= n // 10:
                prof.enable()
            t0 = time.perf_counter()
            await bare.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag)
            bridge.append((time.perf_counter() - t0) * 1e3)
            prof.disable()
        cpu = await cpu_per_op(ws, bare, payload, order_frame(tag), tag, n)
        least = await floor(ws, bare, payload, tag, n)
    for proc in (echo_proc, canned_proc):
        await finish(proc)
    await bare.shutdown()
    s = io.StringIO()
    stats = pstats.Stats(prof, stream=s)
    stats.sort_stats("tottime").print_stats(30)
    groups: dict[str, float] = {}
    for (file, _line, fn), row in stats.stats.items():  # type: ignore[attr-defined]
        tt = row[2]
        if file == "~":
            key = "builtin " + (
                "epoll wait"
                if "poll" in fn
                else "socket send"
                if "send" in fn
                else "validate/serialize (pydantic-core)"
                if "validate" in fn or "to_json" in fn
                else "other C calls"
            )
        elif "hedge_agent/terminals/mt4/codec" in file:
            key = "hedge_agent mt4 codec"
        elif "hedge_agent" in file:
            key = "hedge_agent (terminal.py, server.py, ...)"
        elif "websockets" in file:
            key = "websockets"
        elif "asyncio" in file or "selectors" in file:
            key = "asyncio loop"
        else:
            key = "other python"
        groups[key] = groups.get(key, 0.0) + tt
    per_op = n - n // 10
    grouped = [
        f"  {k}: {v / per_op * 1e6:.1f} us/order" for k, v in sorted(groups.items(), key=lambda kv: -kv[1])
    ]
    head = [
        f"bridge_only p50 {percentile(bridge, 50):.3f} ms, echo p50 {percentile(echo, 50):.3f} ms, "
        f"ratio {percentile(bridge, 50) / percentile(echo, 50):.2f}",
        "",
        "agent-side CPU per round trip (user+sys of this process, no profiler):",
        *(f"  {k}: {v:.1f} us" for k, v in cpu.items()),
        "",
        "round trips interleaved as in bench_bridge (the floor: the least a bridge can do with this stand-in):",
        *least,
        "",
        "| codec part | cost |",
        "|---|---|",
        *micro(),
    ]
    head += ["", "cProfile own time per order, grouped (the profiler inflates Python calls):", *grouped]
    return "\n".join(head) + "\n\ncProfile of open_position (agent side, by own time):\n" + s.getvalue()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000
    print(asyncio.run(run(n)))


if __name__ == "__main__":
    main()
