"""The trade server's clock timeline (pure): learnt from "now" observations, persisted, DST-aware."""

from __future__ import annotations

from hedge_agent.terminals.mt5.servertime import ServerClock, estimate_offset, store_key

H = 3600.0


def test_an_observation_must_be_within_two_minutes_of_a_quarter_hour():
    assert estimate_offset(1000 + 3 * H + 30, 1000) == 3 * H
    assert estimate_offset(1000 + 5.75 * H, 1000) == 5.75 * H
    assert estimate_offset(1000 + 3 * H + 300, 1000) is None  # 5 minutes off: a stale time
    assert estimate_offset(1000 + 15 * H, 1000) is None  # no such time zone


def test_the_first_offset_covers_the_past_and_each_switch_starts_where_it_was_seen():
    clock = ServerClock()
    assert clock.observe(50_000 + 2 * H, 50_000)
    assert clock.to_utc(10 + 2 * H) == 10  # long before: the first offset
    assert not clock.observe(60_000 + 2 * H, 60_000)  # nothing new
    assert clock.observe(90_000 + 3 * H, 90_000)  # spring forward, seen at 90 000 UTC
    assert clock.to_utc(80_000 + 2 * H) == 80_000 and clock.to_utc(95_000 + 3 * H) == 95_000
    assert clock.to_server(100_000) == 100_000 + 3 * H


def test_an_observation_older_than_the_last_switch_changes_nothing():
    clock = ServerClock()
    clock.observe(90_000 + 3 * H, 90_000)
    clock.observe(100_000 + 2 * H, 100_000)
    assert not clock.observe(50_000 + 3 * H, 50_000) and clock.current == 2 * H


def test_a_configured_offset_is_never_changed_by_observations_but_reports_a_mismatch():
    clock = ServerClock(fixed=2 * H)
    assert not clock.observe(1000 + 3 * H, 1000) and clock.current == 2 * H
    assert clock.mismatch(1000 + 3 * H, 1000) == 3 * H and clock.mismatch(1000 + 2 * H, 1000) is None
    assert clock.to_utc(5000 + 2 * H) == 5000


def test_the_timeline_round_trips_through_its_text_and_bad_text_starts_empty():
    clock = ServerClock()
    clock.observe(50_000 + 2 * H, 50_000)
    clock.observe(90_000 + 3 * H, 90_000)
    assert ServerClock.loads(clock.dumps()).segments == clock.segments
    for bad in ("", "[]", '{"segments": [[null, 99999999]]}', '{"segments": [[5, 0], [1, 3600]]}'):
        assert ServerClock.loads(bad).segments == []
    assert store_key("mt5-main") == "mt5.server_clock.mt5-main"


def test_a_switch_back_reads_the_repeated_hour_by_deal_number():
    clock = ServerClock()
    clock.observe(10_000 + 3 * H, 10_000)  # summer
    clock.observe(20_000 + 2 * H, 20_000)  # winter, learnt at 20 000 UTC
    assert clock.switched_back
    clock.mark(500)  # deals up to 500 were made before the switch was seen
    late_summer_deal = 19_000 + 3 * H  # made 1000 s before: stamped after "now" on the winter clock
    assert clock.to_utc(late_summer_deal, deal=499) == 19_000
    assert clock.to_utc(20_500 + 2 * H, deal=501) == 20_500
    again = ServerClock.loads(clock.dumps())
    assert again.marks == clock.marks and again.to_utc(late_summer_deal, deal=499) == 19_000
