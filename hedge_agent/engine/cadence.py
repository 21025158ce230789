"""The trailing cadence (design §4): deadline-scheduled ticks that never drift, and sleep/resume detection.

Deadline ``k`` is ``start + k * period``, never ``now + period``, so lateness never accumulates. After a
stall the missed deadlines are skipped, not replayed in a burst: the first tick after it says how many were
skipped and the next one is back on the grid.

By default a small timer thread sleeps with ``time.sleep`` and wakes the loop with
``call_soon_threadsafe``: on Windows the event loop's clock ticks every 15.6 ms, while Python 3.11+ sleeps
on a high-resolution waitable timer. Tests inject a clock and an async ``sleep`` instead (no thread).

Usage::

    async for tick in Cadence(period_s=0.1):
        if tick.resume is not None:
            ...  # the PC slept: refresh the token, recycle sockets, reconcile
        monitor.sweep()
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# deadlines are floats: a wake-up exactly on a deadline must not be counted as the previous one
_EPSILON = 1e-9


class ResumeCause(StrEnum):
    STALL = "stall"  # the monotonic clock moved on but nobody ran (Windows sleep, a frozen VM, a debugger)
    CLOCK_JUMP = "clock_jump"  # wall time jumped against the monotonic clock (Linux/macOS suspend, clock set)


@dataclass(frozen=True, slots=True)
class Resume:
    """The agent was away (the PC probably slept): tokens, sockets and positions must be re-checked."""

    gap_s: float
    cause: ResumeCause

    def describe(self) -> str:
        if self.cause is ResumeCause.STALL:
            return f"the agent did not run for {self.gap_s:.1f} s (sleep or hibernate?)"
        return f"the wall clock jumped by {self.gap_s:.1f} s against the monotonic clock (suspend?)"


class ResumeDetector:
    """Pure: fed one (monotonic, wall) sample per tick, reports a resume when either gap exceeds a threshold.

    Both clocks are needed: on Linux and macOS the monotonic clock stops while suspended (only wall time
    jumps); on Windows it keeps running, so the gap shows between two monotonic samples.
    """

    def __init__(self, threshold_s: float = 5.0) -> None:
        if not threshold_s > 0:
            raise ValueError(f"threshold_s must be > 0, got {threshold_s!r}")
        self.threshold_s = threshold_s
        self._last: tuple[float, float] | None = None

    def observe(self, mono: float, wall: float) -> Resume | None:
        last, self._last = self._last, (mono, wall)
        if last is None:
            return None
        mono_gap = mono - last[0]
        wall_skew = (wall - last[1]) - mono_gap
        if mono_gap > self.threshold_s:
            return Resume(mono_gap, ResumeCause.STALL)
        if abs(wall_skew) > self.threshold_s:
            return Resume(abs(wall_skew), ResumeCause.CLOCK_JUMP)
        return None


@dataclass(frozen=True, slots=True)
class Tick:
    index: int  # k: the deadline's number since the start (skipped deadlines count)
    scheduled: float  # start + k * period, on the cadence clock
    actual: float  # when the consumer got it, on the cadence clock
    lateness: float  # actual - scheduled (>= 0)
    skipped: int  # deadlines missed just before this one (0 unless the loop or the PC stalled)
    resume: Resume | None = None


class Schedule:
    """Pure deadline arithmetic: deadline k is ``start + k * period``; a late wake-up skips to the last due one."""

    def __init__(self, start: float, period: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        self.start = start
        self.period = period
        self._next = 0

    @property
    def deadline(self) -> float:
        return self.start + self._next * self.period

    def on_wake(self, now: float) -> Tick:
        """The tick for a wake-up at ``now`` (>= :attr:`deadline`); advances to the following deadline."""
        due = math.floor((now - self.start) / self.period + _EPSILON)
        index = max(self._next, due)
        skipped = index - self._next
        scheduled = self.start + index * self.period
        self._next = index + 1
        return Tick(index, scheduled, now, max(0.0, now - scheduled), skipped)


class _TimerThread:
    """Sleeps to each deadline in its own thread and sets an event on the loop.

    A busy loop sees one pending wake-up, not a queue of them: that is what makes a stall skip, not burst.
    """

    def __init__(self, start: float, period: float, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        self._schedule = Schedule(start, period)
        self._clock = clock
        self._loop = loop
        self._wake = asyncio.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cadence-timer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            remaining = self._schedule.deadline - self._clock()
            if remaining > 0:
                time.sleep(remaining)
                continue
            self._schedule.on_wake(self._clock())
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return

    async def wait_until(self, deadline: float) -> None:
        # a wake-up may be for a deadline the consumer already skipped past: wait for the right one
        while self._clock() < deadline:
            await self._wake.wait()
            self._wake.clear()

    def close(self) -> None:
        # no join: the thread notices within one period, and it is a daemon
        self._stop.set()


class Cadence:
    """``async for tick in Cadence(0.1)``: ticks on a fixed grid; closing the iterator stops its thread.

    ``clock`` is the cadence clock (``perf_counter`` by default). Pass ``sleep`` (with a matching fake
    ``clock``) to drive it without a thread, as the tests do. ``wall`` feeds the resume detection.
    """

    def __init__(
        self,
        period_s: float = 0.1,
        *,
        clock: Clock = time.perf_counter,
        sleep: Sleep | None = None,
        wall: Clock = time.time,
        resume_after_s: float = 5.0,
    ) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s!r}")
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._resume_after_s = resume_after_s

    def __aiter__(self) -> AsyncIterator[Tick]:
        return self._ticks()

    async def _ticks(self) -> AsyncIterator[Tick]:
        schedule = Schedule(self._clock(), self.period_s)
        detector = ResumeDetector(self._resume_after_s)
        timer = None
        wait_until = self._sleep_until
        if self._sleep is None:
            timer = _TimerThread(schedule.start, self.period_s, self._clock, asyncio.get_running_loop())
            wait_until = timer.wait_until
        try:
            while True:
                await wait_until(schedule.deadline)
                tick = schedule.on_wake(self._clock())
                resume = detector.observe(tick.actual, self._wall())
                yield tick if resume is None else dataclasses.replace(tick, resume=resume)
        finally:
            if timer is not None:
                timer.close()

    async def _sleep_until(self, deadline: float) -> None:
        assert self._sleep is not None
        while (delay := deadline - self._clock()) > 0:
            await self._sleep(delay)
