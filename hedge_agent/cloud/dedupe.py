"""Deliver each version of a record once, and never an older version after a newer one.

After a reconnect the same record can arrive twice (a live event and the catch-up query), and a catch-up
query can return a version older than a live event that raced it. Versions are ordered by the server's
``updatedAt``; equal ``updatedAt`` with equal content is a duplicate. Memory is bounded: the least recently
seen ids are forgotten first (an old id seen again is simply delivered again, which the engine tolerates).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import datetime

from hedge_agent.domain.models import Action, Position


class Verdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Deduper:
    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], tuple[datetime | None, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, record: Position | Action) -> Verdict:
        key = (type(record).__name__, record.id)
        version = (record.updated_at, hash(record))
        last = self._seen.get(key)
        if last is not None:
            last_at, last_hash = last
            if last_hash == version[1]:
                self._seen.move_to_end(key)
                return Verdict.DUPLICATE
            if last_at is not None and record.updated_at is not None and record.updated_at < last_at:
                return Verdict.STALE
        self._seen[key] = version
        self._seen.move_to_end(key)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return Verdict.NEW
