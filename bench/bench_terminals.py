"""Terminal round trips: the simulated terminal in-process, and an MT5 worker process over the fake
MetaTrader5 package (tests/fakes) - the cost of the process boundary, pipe threads and the event loop.

    .venv/bin/python -m bench.bench_terminals
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from bench.common import percentile, report
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.tags import IntentKind, intent_id, order_tag
from hedge_agent.terminals.base import Filled, Terminal
from hedge_agent.terminals.mt5 import Mt5Terminal
from hedge_agent.terminals.simulated import SimAccountConfig, SimBroker, SimulatedTerminal

FAKES = str(Path(__file__).resolve().parents[1] / "tests" / "fakes")
LOGIN = 5_000_001


async def order_rtts(terminal: Terminal, n: int, prefix: str) -> list[float]:
    """Milliseconds per open_position, each with its own tag (closing every 50 to keep the book small)."""
    samples = []
    for i in range(n):
        tag = order_tag(intent_id(f"{prefix}{i}", IntentKind.OPEN))
        t0 = time.perf_counter()
        res = await terminal.open_position(Symbol.EURUSD, Side.BUY if i % 2 else Side.SELL, 0.01, tag)
        samples.append((time.perf_counter() - t0) * 1000)
        assert isinstance(res, Filled), res
        if i % 50 == 49:
            for p in await terminal.positions():
                await terminal.close_position(
                    p.ticket, p.volume, order_tag(intent_id(p.ticket, IntentKind.CLOSE))
                )
    return samples


def mt5(fake: dict[str, object], **kwargs: object) -> Mt5Terminal:
    scenario = {"login": LOGIN, "balance": 1_000_000.0} | fake
    return Mt5Terminal(
        "bench-mt5",
        login=LOGIN,
        server=None,
        extra_sys_path=[FAKES],
        worker_env={"HEDGE_FAKE_MT5_SCENARIO": json.dumps(scenario)},
        **kwargs,  # type: ignore[arg-type]
    )


async def quotes_per_second(seconds: float) -> tuple[float, float]:
    """Quotes the agent receives per second from a worker whose market moves on every poll, 4 symbols."""
    terminal = mt5({"ticks_per_second": 10_000, "seed": 1}, poll_interval=0.0)
    await terminal.connect()
    stream = terminal.quotes()
    await terminal.watch(list(Symbol))
    await asyncio.wait_for(anext(stream), 10)
    consumed = 0
    published0 = terminal._channel.published
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        await asyncio.wait_for(anext(stream), 5)
        consumed += 1
    published = terminal._channel.published - published0
    await terminal.shutdown()
    return published / elapsed, consumed / elapsed


async def main() -> None:
    broker = SimBroker(account_config=SimAccountConfig(balance=1e7))
    sim = SimulatedTerminal("bench-sim", broker, tick_interval=None)
    await sim.connect()
    await order_rtts(sim, 200, "warm")
    sim_rtt = await order_rtts(sim, 5_000, "sim")
    await sim.shutdown()

    worker = mt5({}, poll_interval=0.01)
    t0 = time.perf_counter()
    await worker.connect()
    start_s = time.perf_counter() - t0
    await order_rtts(worker, 50, "warm")
    mt5_rtt = await order_rtts(worker, 1_000, "mt5")
    await worker.shutdown()

    published, consumed = await quotes_per_second(5.0)

    report(
        "terminals",
        {
            "sim_order_rtt_p50_ms": percentile(sim_rtt, 50),
            "sim_order_rtt_p99_ms": percentile(sim_rtt, 99),
            "mt5_worker_order_rtt_p50_ms": percentile(mt5_rtt, 50),
            "mt5_worker_order_rtt_p99_ms": percentile(mt5_rtt, 99),
            "mt5_worker_start_s": start_s,
            "mt5_worker_quotes_per_s": published,
            "mt5_worker_quotes_consumed_per_s": consumed,
        },
        {
            "sim_order_rtt_p50_ms": "target <= 1",
            "mt5_worker_order_rtt_p50_ms": "target <= 5 (over the fake MetaTrader5)",
            "mt5_worker_quotes_per_s": "report (4 symbols, every poll a new price)",
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
