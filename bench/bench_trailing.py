"""Trailing engine speed: one tick against 1,000 trailed positions, and a sweep over 10,000."""

from __future__ import annotations

import random
import time

from bench.common import median, percentile, report
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trail_book import TrailBook
from hedge_agent.domain.trailing import Quote, new_trail

NOW = 10_000.0


def build(n: int, symbols: list[Symbol], rng: random.Random) -> TrailBook:
    book = TrailBook(stale_after=5.0)
    for i in range(n):
        sym = symbols[i % len(symbols)]
        side = Side.BUY if i % 2 else Side.SELL
        entry = 150_000 + rng.randint(-500, 500)
        book.add(new_trail(f"p{i}", sym, side, entry, rng.randint(50, 300)))
    return book


def tick_decision(n: int = 1_000, ticks: int = 5_000) -> list[float]:
    rng = random.Random(1)
    book = build(n, [Symbol.USDJPY], rng)
    price, samples = 150_000, []
    for _ in range(ticks):
        price += rng.randint(-30, 30)
        quote = Quote(Symbol.USDJPY, price, price + 20, NOW)
        t0 = time.perf_counter()
        book.on_quote(quote, NOW)
        book.take_changed()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def sweep(n: int = 10_000, cycles: int = 300) -> list[float]:
    rng = random.Random(2)
    symbols = list(Symbol)
    book = build(n, symbols, rng)
    prices = {s: 150_000 for s in symbols}
    samples = []
    for _ in range(cycles):
        for s in symbols:  # live ticks between sweeps, as in production
            prices[s] += rng.randint(-30, 30)
            book.on_quote(Quote(s, prices[s], prices[s] + 20, NOW), NOW)
        book.take_changed()
        t0 = time.perf_counter()
        book.sweep(NOW)
        book.take_changed()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def main() -> None:
    ticks = tick_decision()
    sweeps = sweep()
    report(
        "trailing",
        {
            "tick_decision_p50_ms_1000": percentile(ticks, 50),
            "tick_decision_p99_ms_1000": percentile(ticks, 99),
            "sweep_ms_10000": median(sweeps),
            "sweep_p99_ms_10000": percentile(sweeps, 99),
        },
        {"tick_decision_p99_ms_1000": "target <= 1", "sweep_ms_10000": "target <= 5"},
    )


if __name__ == "__main__":
    main()
