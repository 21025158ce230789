"""The 100 ms trailing cadence over 20 s: mean period, lateness, drift; idle, then with a busy event loop.

For contrast, a naive ``await asyncio.sleep(0.1)`` loop over the same time shows the drift that deadline
scheduling avoids, and a bare thread sleeping to its own deadlines during the idle run shows the floor the
machine's scheduler sets (on a loaded VM it, not the cadence, dominates p99). About 60 s in all.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import percentile, report
from hedge_agent.engine.cadence import Cadence, Tick

PERIOD = 0.1
SECONDS = 20.0


def bare_sleep_lateness(stop: threading.Event) -> list[float]:
    """The floor the OS sets: a plain thread sleeping to 100 ms deadlines (offset by half a period), no loop."""
    late: list[float] = []
    start = time.perf_counter() + PERIOD / 2
    k = 0
    while not stop.is_set():
        deadline = start + k * PERIOD
        if (remaining := deadline - time.perf_counter()) > 0:
            time.sleep(remaining)
        late.append((time.perf_counter() - deadline) * 1e3)
        k += 1
    return late


async def run_cadence(seconds: float) -> list[Tick]:
    ticks: list[Tick] = []
    async for tick in Cadence(PERIOD):
        ticks.append(tick)
        if tick.index >= round(seconds / PERIOD):
            break
    return ticks


async def busy_loop(stop: asyncio.Event) -> None:
    """Other work on the loop: 2 ms of CPU every 5 ms (quotes, frames, journal writes)."""
    while not stop.is_set():
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0.003)


async def run_loaded(seconds: float) -> list[Tick]:
    stop = asyncio.Event()
    worker = asyncio.create_task(busy_loop(stop))
    try:
        return await run_cadence(seconds)
    finally:
        stop.set()
        await worker


async def naive_drift(seconds: float) -> float:
    start = time.perf_counter()
    n = round(seconds / PERIOD)
    for _ in range(n):
        await asyncio.sleep(PERIOD)
    return time.perf_counter() - start - n * PERIOD


def figures(ticks: list[Tick], suffix: str = "") -> dict[str, float]:
    first, last = ticks[0], ticks[-1]
    late = [t.lateness * 1e3 for t in ticks]
    return {
        f"cadence_mean_period_ms{suffix}": (last.actual - first.actual) / (last.index - first.index) * 1e3,
        f"cadence_lateness_p50_ms{suffix}": percentile(late, 50),
        f"cadence_lateness_p99_ms{suffix}": percentile(late, 99),
        f"cadence_lateness_max_ms{suffix}": max(late),
        # where the last tick is against the ideal grid start + k * period, after 20 s
        f"drift_ms{suffix}": (last.actual - first.scheduled - last.index * PERIOD) * 1e3,
        f"skipped{suffix}": float(sum(t.skipped for t in ticks)),
    }


def main() -> None:
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        bare = pool.submit(bare_sleep_lateness, stop)
        idle = asyncio.run(run_cadence(SECONDS))
        stop.set()
        os_late = bare.result()
    loaded = asyncio.run(run_loaded(SECONDS))
    naive = asyncio.run(naive_drift(SECONDS))
    report(
        "cadence",
        {
            **figures(idle),
            **figures(loaded, "_loaded"),
            "naive_sleep_drift_ms": naive * 1e3,
            "os_sleep_lateness_p99_ms": percentile(os_late, 99),
        },
        {
            "cadence_mean_period_ms": "target 100 +- 1",
            "cadence_lateness_p99_ms": "target <= 5",
            "drift_ms": "no drift: stays < 1 period",
        },
    )


if __name__ == "__main__":
    main()
