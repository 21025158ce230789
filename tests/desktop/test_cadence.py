from __future__ import annotations

import itertools
import random
import time

import pytest

from hedge_agent.engine.cadence import Cadence, ResumeCause, ResumeDetector, Schedule, Tick

PERIOD = 0.1


class FakeTime:
    """A monotonic and a wall clock; sleeping advances both, oversleeping by a random few ms (a busy loop)."""

    def __init__(self, seed: int = 1, oversleep_s: float = 0.004) -> None:
        self.mono = 5_000.0
        self.wall = 1_700_000_000.0
        self.rng = random.Random(seed)
        self.oversleep_s = oversleep_s
        self.stalls: dict[int, float] = {}  # sleep number -> extra seconds (a stall of the loop or the PC)
        self.sleeps = 0

    def clock(self) -> float:
        return self.mono

    def wall_clock(self) -> float:
        return self.wall

    async def sleep(self, delay: float) -> None:
        self.sleeps += 1
        self.advance(delay + self.rng.uniform(0, self.oversleep_s) + self.stalls.pop(self.sleeps, 0.0))

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


async def take(cadence: Cadence, n: int) -> list[Tick]:
    ticks = []
    async for tick in cadence:
        ticks.append(tick)
        if len(ticks) == n:
            break
    return ticks


def fake_cadence(t: FakeTime) -> Cadence:
    return Cadence(PERIOD, clock=t.clock, sleep=t.sleep, wall=t.wall_clock)


async def test_ticks_stay_on_the_deadline_grid_over_6000_ticks_despite_late_wakeups():
    t = FakeTime()
    start = t.mono
    ticks = await take(fake_cadence(t), 6001)
    last = ticks[-1]
    assert [tick.index for tick in ticks] == list(range(6001))
    assert last.scheduled == pytest.approx(start + 6000 * PERIOD, abs=1e-6)
    # every wake-up was up to 4 ms late, yet the 6000th tick is no later than one wake-up: no drift
    assert last.actual - (start + 6000 * PERIOD) < 0.004
    assert max(tick.lateness for tick in ticks) < 0.004
    assert all(tick.skipped == 0 and tick.resume is None for tick in ticks)


async def test_after_a_stall_missed_deadlines_are_skipped_not_replayed_in_a_burst():
    t = FakeTime(oversleep_s=0.0)
    t.stalls[10] = 1.05  # the 10th sleep returns 1.05 s late
    ticks = await take(fake_cadence(t), 15)
    after = ticks[10]
    assert after.skipped == 10
    assert after.index == 20
    assert 0 <= after.lateness < PERIOD
    # then straight back on the grid, one period apart
    following = ticks[11:]
    assert [tick.index for tick in following] == [21, 22, 23, 24]
    gaps = [b.actual - a.actual for a, b in zip(ticks[10:], following, strict=False)]
    assert gaps == pytest.approx([PERIOD - after.lateness, PERIOD, PERIOD, PERIOD])


async def test_a_stall_of_seconds_is_reported_as_a_resume():
    t = FakeTime(oversleep_s=0.0)
    t.stalls[5] = 30.0
    ticks = await take(fake_cadence(t), 8)
    resumed = [tick for tick in ticks if tick.resume is not None]
    assert [tick.index for tick in resumed] == [ticks[5].index]
    resume = resumed[0].resume
    assert resume is not None
    assert resume.cause is ResumeCause.STALL
    assert 30.0 <= resume.gap_s <= 30.0 + 2 * PERIOD  # the stall plus the normal period


def test_a_wall_clock_jump_without_a_monotonic_gap_is_a_resume_too():
    # Linux and macOS stop the monotonic clock while suspended: only the wall clock shows it
    detector = ResumeDetector(threshold_s=5.0)
    assert detector.observe(100.0, 1_000.0) is None
    assert detector.observe(100.1, 1_000.1) is None
    resume = detector.observe(100.2, 4_600.2)
    assert resume is not None
    assert resume.cause is ResumeCause.CLOCK_JUMP
    assert resume.gap_s == pytest.approx(3_600.0)
    assert "3600.0 s" in resume.describe()
    assert detector.observe(100.3, 4_600.3) is None


def test_small_gaps_and_small_clock_adjustments_are_not_resumes():
    detector = ResumeDetector(threshold_s=5.0)
    samples = [(0.0, 0.0), (4.9, 4.9), (5.0, 9.8), (5.1, 5.0)]
    assert [detector.observe(m, w) for m, w in samples] == [None, None, None, None]


def test_a_wakeup_exactly_on_a_deadline_counts_as_that_deadline():
    schedule = Schedule(0.0, 0.1)
    ticks = [schedule.on_wake(k * 0.1) for k in range(50)]
    assert [tick.index for tick in ticks] == list(range(50))
    assert all(tick.skipped == 0 for tick in ticks)


def test_a_cadence_needs_a_positive_period():
    with pytest.raises(ValueError, match="period_s"):
        Cadence(0)


async def test_the_real_timer_keeps_the_period_within_a_loose_tolerance():
    ticks = await take(Cadence(0.05), 41)  # 2 s
    span = ticks[-1].actual - ticks[0].actual
    mean_period = span / (ticks[-1].index - ticks[0].index)
    assert mean_period == pytest.approx(0.05, abs=0.005)
    assert sorted(tick.lateness for tick in ticks)[len(ticks) // 2] < 0.02
    assert ticks[-1].index == 40


async def test_the_real_timer_skips_after_the_loop_was_blocked():
    ticks = []
    async for tick in Cadence(0.05):
        ticks.append(tick)
        if len(ticks) == 3:
            time.sleep(0.33)  # block the event loop, as a long synchronous call would  # noqa: ASYNC251
        if len(ticks) == 6:
            break
    after = ticks[3]
    assert after.skipped >= 5
    assert after.lateness < 0.05
    assert [b.index - a.index for a, b in itertools.pairwise(ticks[3:])] == [1, 1]
