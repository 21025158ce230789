"""The trade server's clock, and turning its times into true UTC.

Every time the ``MetaTrader5`` package returns (``symbol_info_tick().time``, deal, order and position times)
is on the *trade server's* clock: UTC plus the broker's offset, which moves with the broker's daylight-saving
rule (typically UTC+2 in winter, UTC+3 in summer). The package has no call that says the offset, so it is
either configured (``server_utc_offset_hours``) or learnt from times known to be "now": a tick seen changing
and our own fill's deal. It is kept as a timeline of ``(server time from, offset)`` segments, so a deal made
before a DST switch is converted with the offset in force then, and persisted per terminal (journal meta)
so a restarted worker or agent does not start from zero.

A switch *back* (UTC+3 to UTC+2) repeats an hour of server times: a deal stamped in that hour may be from
before or after the switch. Deal numbers only grow, so when such a switch is learnt the highest deal number
on the server then is kept with it (``marks``): a deal in the repeated hour numbered at most that mark was
made before the switch. Other times of the repeated hour (a position's open time without its deal) and deals
made between the switch and the moment it was seen are read with the later offset.

Pure: no I/O, no clock; the caller passes "now".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

QUARTER_HOUR = 900.0  # every real time zone offset is a multiple of 15 minutes
TOLERANCE = 120.0  # a "now" observation within 2 minutes of a quarter hour is trusted
MAX_OFFSET = 14 * 3600.0
MAX_SEGMENTS = 32
_MS = 0.002  # millisecond rounding of the package's *_msc times


class MetaStore(Protocol):
    """Where small facts about a terminal persist across restarts (the journal's meta table)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


def store_key(terminal_name: str) -> str:
    return f"mt5.server_clock.{terminal_name}"


@dataclass
class ServerClock:
    """``fixed``: seconds east of UTC, configured (never learnt, no DST); None learns ("auto").
    ``segments``: learnt offsets, ascending by the server time from which each holds (the first one also
    covers every earlier time)."""

    fixed: float | None = None
    segments: list[tuple[float, float]] = field(default_factory=list)
    marks: dict[float, int] = field(default_factory=dict)  # segment start -> highest deal before it

    @property
    def known(self) -> bool:
        return self.fixed is not None or bool(self.segments)

    @property
    def current(self) -> float | None:
        if self.fixed is not None:
            return self.fixed
        return self.segments[-1][1] if self.segments else None

    def offset_at(self, server_ts: float, deal: int | None = None) -> float:
        """The offset in force at ``server_ts`` (0 while nothing is known: the caller says so in health);
        ``deal``: the number of the deal stamped ``server_ts``, which settles the hour a switch back repeats."""
        if self.fixed is not None:
            return self.fixed
        if not self.segments:
            return 0.0
        index = 0
        for i, (start, _) in enumerate(self.segments):
            if server_ts >= start:
                index = i
            else:
                break
        start, offset = self.segments[index]
        if index and deal is not None:
            before = self.segments[index - 1][1]
            mark = self.marks.get(start)
            repeated = before - offset  # > 0 for a switch back
            # a deal made before the switch was seen (number <= mark) stamped after the moment it was seen
            # (read with the new offset, it would be in the future then) was made under the old offset
            if (
                repeated > 0
                and mark is not None
                and deal <= mark
                and start + _MS < server_ts < start + repeated + 1
            ):
                return before
        return offset

    def to_utc(self, server_ts: float, deal: int | None = None) -> float:
        return server_ts - self.offset_at(server_ts, deal)

    @property
    def switched_back(self) -> bool:
        """The last switch learnt moved the clock back (its repeated hour needs a deal mark)."""
        return len(self.segments) > 1 and self.segments[-1][1] < self.segments[-2][1]

    def mark(self, deal: int) -> None:
        """``deal``: the highest deal number on the server when the last switch was learnt."""
        if self.segments:
            self.marks[self.segments[-1][0]] = deal

    def to_server(self, utc_ts: float) -> float:
        return utc_ts + (self.current or 0.0)

    def observe(self, server_ts: float, utc_now: float) -> bool:
        """``server_ts`` was the server's "now" at ``utc_now``. True when the timeline changed."""
        if self.fixed is not None:
            return False
        estimate = estimate_offset(server_ts, utc_now)
        if estimate is None or estimate == self.current:
            return False
        if self.segments and server_ts <= self.segments[-1][0]:
            return False  # older than the last switch we saw: not news
        start = server_ts if self.segments else float("-inf")
        self.segments.append((start, estimate))
        del self.segments[:-MAX_SEGMENTS]
        self.marks = {k: v for k, v in self.marks.items() if any(k == s for s, _ in self.segments)}
        return True

    def mismatch(self, server_ts: float, utc_now: float) -> float | None:
        """With a configured offset: the offset the server's clock actually shows, when it differs."""
        estimate = estimate_offset(server_ts, utc_now)
        if self.fixed is None or estimate is None or estimate == self.fixed:
            return None
        return estimate

    # -- persistence ---------------------------------------------------------------------------------

    def dumps(self) -> str:
        rows = [[_enc(s), o, self.marks.get(s)] for s, o in self.segments]
        return json.dumps({"v": 1, "segments": rows})

    @classmethod
    def loads(cls, text: str | None, fixed: float | None = None) -> ServerClock:
        """A clock from :meth:`dumps` text; bad or missing text starts empty (never raises: it is a hint)."""
        segments: list[tuple[float, float]] = []
        marks: dict[float, int] = {}
        if text:
            try:
                raw = json.loads(text)
                segments = _segments(raw["segments"])
                marks = {
                    start: int(row[2])
                    for (start, _), row in zip(segments, raw["segments"], strict=True)
                    if len(row) > 2 and row[2] is not None
                }
            except (ValueError, KeyError, TypeError):
                segments, marks = [], {}
        return cls(fixed=fixed, segments=segments, marks=marks)


def estimate_offset(server_ts: float, utc_now: float) -> float | None:
    raw = server_ts - utc_now
    estimate = round(raw / QUARTER_HOUR) * QUARTER_HOUR
    if abs(raw - estimate) >= TOLERANCE or abs(estimate) > MAX_OFFSET:
        return None
    return float(estimate)


def _enc(start: float) -> float | None:
    return None if start == float("-inf") else start


def _segments(raw: Sequence[Sequence[float | None]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for row in raw:
        start, offset = row[0], row[1]
        if offset is None or abs(float(offset)) > MAX_OFFSET:
            raise ValueError("offset out of range")
        out.append((float("-inf") if start is None else float(start), float(offset)))
    if any(a[0] >= b[0] for a, b in itertools.pairwise(out)):
        raise ValueError("segments out of order")
    return out
