"""Price feeds for the simulated broker: a seeded random walk, or ticks replayed from a CSV file.

Prices are integer points of each symbol (``price = points * 10**-digits``) so a walk never drifts off
the quote grid. A feed is asked for the ticks of one step and returns only the symbols that changed.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

#: (broker symbol, bid points, ask points)
Tick = tuple[str, int, int]


class PriceFeed(Protocol):
    def next_ticks(self, current: Mapping[str, tuple[int, int]], rng: random.Random) -> list[Tick]:
        """The ticks of one step, given the current (bid, ask) points of every symbol."""
        ...


@dataclass(frozen=True, slots=True)
class RandomWalk:
    """Each step, each symbol moves with ``move_probability`` by up to ``volatility[symbol]`` points
    (never zero when it moves); the spread stays as it is unless ``spread_jitter`` widens it at random."""

    volatility: Mapping[str, int]
    move_probability: float = 0.7
    spread_jitter: int = 0

    def next_ticks(self, current: Mapping[str, tuple[int, int]], rng: random.Random) -> list[Tick]:
        ticks: list[Tick] = []
        for name, (bid, ask) in current.items():
            if rng.random() >= self.move_probability:
                continue
            step = max(1, self.volatility.get(name, 1))
            move = rng.randint(1, step) * (1 if rng.random() < 0.5 else -1)
            spread = ask - bid
            if self.spread_jitter:
                spread = max(1, spread + rng.randint(-self.spread_jitter, self.spread_jitter))
            new_bid = max(1, bid + move)
            ticks.append((name, new_bid, new_bid + spread))
        return ticks


class TickReplay:
    """Replays ticks from a CSV file with a header ``time,symbol,bid,ask`` (time: epoch seconds or ISO
    8601; ignored for ordering, rows are replayed in file order, one row per step). At the end it stops
    (``loop=False``) or starts again."""

    def __init__(self, path: str | Path, digits: Mapping[str, int], *, loop: bool = False) -> None:
        self.path = Path(path)
        self._digits = dict(digits)
        self._loop = loop
        self._rows = self._load()
        self._pos = 0

    def _load(self) -> list[Tick]:
        rows: list[Tick] = []
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"symbol", "bid", "ask"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(
                    f"{self.path}: tick file needs columns time,symbol,bid,ask; missing {sorted(missing)}"
                )
            for lineno, row in enumerate(reader, start=2):
                name = row["symbol"].strip()
                if name not in self._digits:
                    raise ValueError(
                        f"{self.path}:{lineno}: symbol {name!r} is not configured on the simulated broker"
                    )
                scale = 10 ** self._digits[name]
                try:
                    bid, ask = round(float(row["bid"]) * scale), round(float(row["ask"]) * scale)
                    if row.get("time"):
                        _parse_time(row["time"])
                except ValueError as e:
                    raise ValueError(f"{self.path}:{lineno}: bad tick row {row!r}: {e}") from e
                if not 0 < bid <= ask:
                    raise ValueError(
                        f"{self.path}:{lineno}: need 0 < bid <= ask, got bid={row['bid']} ask={row['ask']}"
                    )
                rows.append((name, bid, ask))
        return rows

    def __iter__(self) -> Iterator[Tick]:
        return iter(self._rows)

    @property
    def exhausted(self) -> bool:
        return not self._loop and self._pos >= len(self._rows)

    def next_ticks(self, current: Mapping[str, tuple[int, int]], rng: random.Random) -> list[Tick]:
        if not self._rows:
            return []
        if self._pos >= len(self._rows):
            if not self._loop:
                return []
            self._pos = 0
        tick = self._rows[self._pos]
        self._pos += 1
        return [tick] if current.get(tick[0]) != (tick[1], tick[2]) else []


def _parse_time(value: str) -> float:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()
