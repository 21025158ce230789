"""Point 6: the EA's UTC times (PROTOCOL §1). MT4 reports broker server time; ``TimeCurrent()`` is the time of
the *last quote*, frozen while the market is closed. The emulator measures and logs the offset as the EA
does; the rule must hold on weekends, before the first timer round, and across a DST change."""

from __future__ import annotations

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.simulated import SimBroker, default_symbols

from .conftest import LOGIN, Rig, until
from .test_ea_loop import tag

FRIDAY_2000_UTC = 1_764_964_800.0  # Fri 2025-12-05 20:00 UTC
HOUR = 3600.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def broker_at(clock: Clock) -> SimBroker:
    return SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}), seed=1, clock=clock)


def plus(hours: float):  # type: ignore[no-untyped-def]
    return lambda _utc: int(hours * HOUR)


async def test_times_stay_utc_over_a_weekend_when_the_last_quote_is_days_old(rig: Rig):
    """Before: offset = TimeCurrent() - TimeGMT() every round: on Sunday that is "minus two days"."""
    clock = Clock(FRIDAY_2000_UTC)
    broker = broker_at(clock)
    t = await rig.bridge()
    ea = rig.ea(t.port, broker=broker, server_tz=plus(2))  # broker on UTC+2
    await ea.start()
    await ea.wait_welcomed()
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("fri"))
    assert res.__class__.__name__ == "Filled"
    assert res.time.timestamp() == FRIDAY_2000_UTC  # type: ignore[union-attr]
    clock.now += 40 * HOUR  # Sunday noon: no quote since Friday
    await until(lambda: ea.handled.count("hb") > 20)  # many timer rounds later
    assert ea.offset == 2 * HOUR
    (rec,) = await t.find(tag("fri"))
    assert rec.open_time.timestamp() == FRIDAY_2000_UTC


def test_the_offset_is_valid_before_the_first_timer_round_of_a_restarted_ea():
    """Before: 0 until the first timer round, so a resume query after a restart reported server time as UTC."""
    clock = Clock(FRIDAY_2000_UTC)
    broker = broker_at(clock)
    first = EaEmulator("ws://127.0.0.1:1", "t" * 43, broker, login=LOGIN, server="S", server_tz=plus(3))
    assert first.offset == 3 * HOUR  # at OnInit, from the quotes the terminal has
    clock.now += 48 * HOUR  # restarted on Sunday: the last quote is two days old
    again = EaEmulator("ws://127.0.0.1:1", "t" * 43, broker, login=LOGIN, server="S", server_tz=plus(3), offsets=first.offsets)  # fmt: skip
    assert again.offset == 3 * HOUR and again.to_utc(FRIDAY_2000_UTC + 3 * HOUR) == FRIDAY_2000_UTC


async def test_history_is_converted_with_the_offset_of_its_own_time_across_dst(rig: Rig):
    """A trade opened at UTC+2 (winter) is reported in UTC after the broker moved to UTC+3 (summer).
    Before: every time was converted with today's offset: one hour off."""
    dst_at = FRIDAY_2000_UTC + 2 * HOUR
    clock = Clock(FRIDAY_2000_UTC)
    broker = broker_at(clock)
    t = await rig.bridge()
    ea = rig.ea(t.port, broker=broker, server_tz=lambda utc: int((3 if utc >= dst_at else 2) * HOUR))
    await ea.start()
    await ea.wait_welcomed()
    res = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("winter"))
    assert res.__class__.__name__ == "Filled"
    clock.now = dst_at + HOUR
    broker.set_quote("EURUSD", 1.1, 1.1002)  # a fresh quote after the change
    await until(lambda: ea.offset == 3 * HOUR)
    (rec,) = await t.find(tag("winter"))
    assert rec.open_time.timestamp() == FRIDAY_2000_UTC
    res2 = await t.open_position(Symbol.EURUSD, Side.BUY, 0.1, tag("summer"))
    assert res2.time.timestamp() == dst_at + HOUR  # type: ignore[union-attr]
