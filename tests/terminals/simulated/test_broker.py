"""The simulated broker: prices, fills, account maths, stop-out, faults and the order log."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hedge_agent.domain.enums import Side
from hedge_agent.terminals import retcodes as rc
from hedge_agent.terminals.simulated import (
    DealReason,
    Fault,
    FaultKind,
    ManualClock,
    SimAccountConfig,
    SimBroker,
    SimError,
    TickReplay,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def broker(clock: ManualClock) -> SimBroker:
    return SimBroker(clock=clock, seed=7)


def prices(b: SimBroker, steps: int) -> list[tuple[str, float, float]]:
    out = []
    for _ in range(steps):
        out += [(q.symbol, q.bid, q.ask) for q in b.step()]
    return out


def test_the_same_seed_walks_the_same_prices_and_another_seed_does_not(clock):
    a, b, c = SimBroker(clock=clock, seed=3), SimBroker(clock=clock, seed=3), SimBroker(clock=clock, seed=4)
    walk = prices(a, 50)
    assert walk == prices(b, 50)
    assert walk != prices(c, 50)


def test_a_step_reports_only_symbols_whose_price_changed_and_keeps_prices_on_the_point_grid(broker):
    before = broker.quotes()
    changed = broker.step()
    assert {q.symbol for q in changed} == {n for n, q in broker.quotes().items() if q != before[n]}
    for q in broker.quotes().values():
        digits = broker.spec(q.symbol).digits
        assert round(q.bid, digits) == q.bid and q.ask > q.bid


def test_advance_walks_by_ticks_per_second_of_clock_time(clock):
    b = SimBroker(clock=clock, seed=1, ticks_per_second=10)
    assert b.advance() == []
    clock.advance(0.05)
    assert b.advance() == []
    before = b.quotes()
    clock.advance(1.0)
    b.advance()
    assert b.quotes() != before


def test_a_buy_fills_at_the_ask_a_sell_at_the_bid_and_a_hedging_account_keeps_both(broker, clock):
    q = broker.set_quote("EURUSD", 1.10000, 1.10010)
    buy = broker.open("EURUSD", Side.BUY, 0.1, magic=11, comment="a")
    sell = broker.open("EURUSD", Side.SELL, 0.1, magic=12, comment="b")
    assert (buy.code, buy.price, buy.time) == (rc.DONE, q.ask, clock.now)
    assert (sell.code, sell.price) == (rc.DONE, q.bid)
    assert {(p.ticket, p.side) for p in broker.positions()} == {
        (buy.position, Side.BUY),
        (sell.position, Side.SELL),
    }


def test_closing_books_the_profit_into_the_balance_and_is_found_by_its_close_tag(broker):
    broker.set_quote("EURUSD", 1.10000, 1.10010)
    opened = broker.open("EURUSD", Side.BUY, 1.0, magic=11, comment="open")
    broker.set_quote("EURUSD", 1.10110, 1.10120)
    closed = broker.close(opened.position, magic=22, comment="close")
    assert closed.code == rc.DONE and closed.price == 1.10110
    assert broker.account().balance == pytest.approx(10_000 + 100.0)
    assert broker.positions() == []
    (trade,) = broker.find(22)
    assert trade == broker.find(11)[0]
    assert (trade.ticket, trade.closed, trade.close_magic, trade.close_reason) == (
        opened.position,
        True,
        22,
        "closed by expert",
    )


def test_a_position_closed_by_hand_has_no_close_magic():
    broker = SimBroker(seed=1)
    opened = broker.open("USDJPY", Side.SELL, 0.5, magic=11)
    broker.close(opened.position)
    (trade,) = broker.find(11)
    assert trade.close_magic is None and trade.close_reason == "closed manually"


def test_profit_of_a_usd_based_pair_is_converted_at_the_current_price(broker):
    broker.set_quote("USDJPY", 150.000, 150.010)
    broker.open("USDJPY", Side.BUY, 1.0, magic=1)
    broker.set_quote("USDJPY", 151.010, 151.020)
    # 1 lot = 100,000 USD; +1.000 JPY per USD = 100,000 JPY, at 151.01 JPY per USD
    assert broker.positions()[0].profit == pytest.approx(100_000 / 151.01, abs=0.01)


def test_stop_out_closes_the_worst_position_by_itself_with_reason_stop_out_and_no_close_magic(clock):
    b = SimBroker(
        clock=clock, account_config=SimAccountConfig(balance=1_000, leverage=100, stop_out_level=50)
    )
    b.set_quote("EURUSD", 1.00000, 1.00000)
    b.set_quote("XAUUSD", 2000.00, 2000.00)
    b.open("EURUSD", Side.BUY, 0.5, magic=1)  # margin 500
    small = b.open("XAUUSD", Side.BUY, 0.01, magic=2)  # margin 20
    b.set_quote("EURUSD", 0.99000, 0.99000)  # -500: equity 500, margin 520 -> 96 %: above stop-out
    assert len(b.positions()) == 2
    b.set_quote("EURUSD", 0.98500, 0.98500)  # -750: equity 250, level 48 % -> stop out the worst
    assert [p.ticket for p in b.positions()] == [small.position]
    (trade,) = b.find(1)
    assert (trade.closed, trade.close_reason, trade.close_magic) == (True, "stop out", None)
    assert b.deals()[-1].reason is DealReason.SO
    assert b.account().balance == pytest.approx(250)


def test_an_injected_timeout_fills_the_order_but_answers_10012_so_a_blind_retry_is_a_duplicate(broker):
    broker.inject(Fault(FaultKind.TIMEOUT))
    first = broker.open("EURUSD", Side.BUY, 0.1, magic=5, comment="ha:x")
    assert (first.code, first.executed) == (rc.TIMEOUT, True)
    assert [t.ticket for t in broker.find(5)] == [first.position]
    assert broker.duplicate_orders() == 0
    broker.open("EURUSD", Side.BUY, 0.1, magic=5, comment="ha:x")
    assert broker.duplicate_orders() == 1


def test_closing_a_closed_position_is_refused_and_is_not_a_duplicate(broker):
    opened = broker.open("EURUSD", Side.BUY, 0.1, magic=5)
    assert broker.close(opened.position, magic=6).code == rc.DONE
    again = broker.close(opened.position, magic=6)
    assert (again.code, again.executed) == (rc.POSITION_CLOSED, False)
    assert broker.close(999, magic=6).code == rc.INVALID
    assert broker.duplicate_orders() == 0
    assert [(e.action, e.code, e.executed) for e in broker.order_log] == [
        ("open", rc.DONE, True),
        ("close", rc.DONE, True),
        ("close", rc.POSITION_CLOSED, False),
        ("close", rc.INVALID, False),
    ]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(FaultKind.REJECT), rc.REJECT),
        (Fault(FaultKind.REJECT, code=rc.NO_MONEY), rc.NO_MONEY),
        (Fault(FaultKind.REQUOTE), rc.REQUOTE),
        (Fault(FaultKind.MARKET_CLOSED), rc.MARKET_CLOSED),
        (Fault(FaultKind.TRADE_DISABLED), rc.TRADE_DISABLED),
        (Fault(FaultKind.DISCONNECT), rc.CONNECTION),
    ],
)
def test_an_injected_refusal_answers_its_code_executes_nothing_and_is_used_up(broker, fault, code):
    broker.inject(fault)
    refused = broker.open("EURUSD", Side.BUY, 0.1, magic=5)
    assert (refused.code, refused.executed) == (code, False)
    assert broker.positions() == [] and broker.order_log[-1].code == code
    broker.reconnect()
    assert broker.open("EURUSD", Side.BUY, 0.1, magic=5).code == rc.DONE


def test_faults_only_hit_the_orders_they_target(broker):
    broker.inject(Fault(FaultKind.REQUOTE, on="close", symbol="USDJPY", times=2))
    opened = broker.open("USDJPY", Side.BUY, 0.1, magic=1)
    assert opened.code == rc.DONE
    other = broker.open("EURUSD", Side.BUY, 0.1, magic=2)
    assert broker.close(other.position).code == rc.DONE
    assert broker.close(opened.position).code == rc.REQUOTE
    assert broker.pending_faults[0].times == 1


def test_a_disconnected_broker_refuses_every_order_until_it_reconnects(broker):
    broker.disconnect()
    assert broker.open("EURUSD", Side.BUY, 0.1).code == rc.CONNECTION
    assert broker.open("EURUSD", Side.BUY, 0.1).code == rc.CONNECTION
    broker.reconnect()
    assert broker.open("EURUSD", Side.BUY, 0.1).code == rc.DONE


def test_a_closed_market_refuses_orders_and_marks_its_quotes_untradeable(broker):
    broker.set_market_open("XAUUSD", False)
    assert broker.open("XAUUSD", Side.BUY, 0.1).code == rc.MARKET_CLOSED
    assert broker.quote("XAUUSD").tradeable is False and broker.quote("EURUSD").tradeable
    broker.set_market_open(None, True)
    assert broker.open("XAUUSD", Side.BUY, 0.1).code == rc.DONE


def test_trading_disabled_on_the_account_refuses_orders(broker):
    broker.trade_allowed = False
    assert broker.open("EURUSD", Side.BUY, 0.1).code == rc.TRADE_DISABLED
    assert broker.account().trade_allowed is False


@pytest.mark.parametrize("volume", [0.0, 0.001, 0.015, 1000.0])
def test_a_volume_off_the_symbol_grid_is_invalid(broker, volume):
    assert broker.open("EURUSD", Side.BUY, volume).code == rc.INVALID_VOLUME


def test_an_order_larger_than_the_free_margin_is_refused_for_no_money(broker):
    assert broker.open("EURUSD", Side.BUY, 10.0).code == rc.NO_MONEY
    assert broker.positions() == []


def test_a_fill_further_than_the_deviation_from_the_requested_price_is_a_requote(clock):
    b = SimBroker(clock=clock, seed=2, slippage_points=50)
    b.set_quote("EURUSD", 1.10000, 1.10010)
    codes = {b.open("EURUSD", Side.BUY, 0.01, price=1.10010, deviation=5).code for _ in range(40)}
    assert codes == {rc.DONE, rc.REQUOTE}


def test_a_netting_account_keeps_one_position_per_symbol(clock):
    b = SimBroker(clock=clock, account_config=SimAccountConfig(hedging=False))
    b.set_quote("EURUSD", 1.10000, 1.10000)
    first = b.open("EURUSD", Side.BUY, 0.2, magic=1)
    b.open("EURUSD", Side.BUY, 0.1, magic=2)
    (pos,) = b.positions()
    assert pos.ticket == first.position and pos.volume == pytest.approx(0.3)
    b.open("EURUSD", Side.SELL, 0.3, magic=3)
    assert b.positions() == []


def test_the_broker_survives_a_pickle_round_trip_with_its_state(broker):
    opened = broker.open("EURUSD", Side.BUY, 0.1, magic=9, comment="x")
    copy = pickle.loads(pickle.dumps(broker))
    assert copy.positions() == broker.positions()
    assert copy.open("EURUSD", Side.BUY, 0.1, magic=10).position > opened.position
    assert copy.step(5) == broker.step(5)


def test_a_tick_file_is_replayed_in_order(tmp_path: Path, clock):
    path = tmp_path / "ticks.csv"
    path.write_text(
        "time,symbol,bid,ask\n1700000000,EURUSD,1.10000,1.10010\n1700000001,EURUSD,1.10020,1.10030\n"
    )
    b = SimBroker(clock=clock, feed=TickReplay(path, {"EURUSD": 5}))
    assert [(q.bid, q.ask) for q in b.step()] == [(1.1, 1.1001)]
    assert [(q.bid, q.ask) for q in b.step()] == [(1.1002, 1.1003)]
    assert b.step() == []


def test_a_bad_tick_file_names_the_line_and_the_problem(tmp_path: Path):
    path = tmp_path / "ticks.csv"
    path.write_text("time,symbol,bid,ask\n1,EURUSD,1.1,1.2\n2,EURUSD,abc,1.2\n")
    with pytest.raises(ValueError, match=r"ticks.csv:3: bad tick row"):
        TickReplay(path, {"EURUSD": 5})
    path.write_text("time,symbol,bid,ask\n1,GBPUSD,1.1,1.2\n")
    with pytest.raises(ValueError, match=r"ticks.csv:2: symbol 'GBPUSD' is not configured"):
        TickReplay(path, {"EURUSD": 5})


def test_an_unknown_symbol_is_a_programming_error_naming_the_configured_ones(broker):
    with pytest.raises(SimError, match="GBPUSD"):
        broker.open("GBPUSD", Side.BUY, 0.1)


# -- stop-loss (the protective stop) ----------------------------------------------------------------------


class _Down:
    """A feed that moves every symbol down by ``points`` per step (bid and ask together)."""

    def __init__(self, points: int) -> None:
        self.points = points

    def next_ticks(self, current, rng):
        return [(name, bid - self.points, ask - self.points) for name, (bid, ask) in current.items()]


def test_a_stop_loss_closes_a_buy_when_the_bid_reaches_it_as_a_broker_deal(broker: SimBroker):
    broker.set_quote("EURUSD", 1.10000, 1.10012)
    res = broker.open("EURUSD", Side.BUY, 0.1, magic=77, comment="t", sl=1.09812)
    assert res.ok
    (pos,) = broker.positions()
    assert pos.sl == 1.09812
    broker.set_quote("EURUSD", 1.09813, 1.09825)
    assert broker.positions() != []
    broker.set_quote("EURUSD", 1.09812, 1.09824)  # touches it
    assert broker.positions() == []
    last = broker.deals()[-1]
    assert (last.reason, last.magic, last.comment, last.price) == (DealReason.SL, 77, "[sl 1.09812]", 1.09812)
    (trade,) = broker.find(77)
    assert (trade.closed, trade.close_magic, trade.close_reason) == (True, None, "stop loss")
    assert trade.profit == pytest.approx(-20.0)  # 200 points x 0.1 lot
    assert broker.duplicate_orders() == 0


def test_a_stop_loss_of_a_sell_fires_on_the_ask_and_a_gap_fills_beyond_it(broker: SimBroker):
    broker.set_quote("EURUSD", 1.10000, 1.10012)
    assert broker.open("EURUSD", Side.SELL, 0.1, magic=5, sl=1.10200).ok
    broker.set_quote("EURUSD", 1.10188, 1.10199)
    assert broker.positions() != []
    broker.set_quote("EURUSD", 1.10290, 1.10302)  # jumps over the stop: filled at the market, worse
    assert broker.positions() == [] and broker.deals()[-1].price == 1.10302


def test_a_stop_loss_fires_while_the_price_walks(clock: ManualClock):
    b = SimBroker(clock=clock, feed=_Down(5))
    b.set_quote("EURUSD", 1.10000, 1.10012)
    assert b.open("EURUSD", Side.BUY, 0.1, magic=9, sl=1.09950).ok
    b.step(9)  # bid 1.09955
    assert b.positions() != []
    b.step(1)
    assert b.positions() == [] and b.find(9)[0].close_price == 1.09950


def test_slippage_fills_a_stop_loss_only_worse(clock: ManualClock):
    b = SimBroker(clock=clock, slippage_points=5, seed=3)
    prices: list[float] = []
    for i in range(20):
        b.set_quote("EURUSD", 1.10000, 1.10012)
        assert b.open("EURUSD", Side.BUY, 0.01, magic=100 + i, sl=1.09900).ok
        b.set_quote("EURUSD", 1.09900, 1.09912)
        (trade,) = b.find(100 + i)
        assert trade.close_price is not None
        prices.append(trade.close_price)
    assert all(1.09895 <= p <= 1.09900 for p in prices) and min(prices) < 1.09900


@pytest.mark.parametrize(
    ("side", "sl", "why"),
    [
        (Side.BUY, 1.09991, "9 points from the Bid"),  # inside the 10-point stops level
        (Side.BUY, 1.10005, "-5 points from the Bid"),  # on the wrong side
        (Side.SELL, 1.10021, "9 points from the Ask"),
        (Side.SELL, 1.09990, "-22 points from the Ask"),
    ],
)
def test_a_stop_loss_inside_the_stops_level_or_on_the_wrong_side_is_refused(broker, side, sl, why):
    broker.set_quote("EURUSD", 1.10000, 1.10012)
    res = broker.open("EURUSD", side, 0.1, magic=1, sl=sl)
    assert (res.code, res.executed) == (rc.INVALID_STOPS, False)
    assert why in res.comment and "the minimum is 10 points" in res.comment
    assert broker.positions() == []


def test_a_stop_loss_exactly_at_the_stops_level_is_accepted_and_none_means_none(broker):
    broker.set_quote("EURUSD", 1.10000, 1.10012)
    assert broker.open("EURUSD", Side.BUY, 0.1, magic=1, sl=1.09990).ok
    assert broker.open("EURUSD", Side.BUY, 0.1, magic=2, sl=0.0).ok
    assert [p.sl for p in broker.positions()] == [1.09990, 0.0]


def test_a_stop_loss_survives_pickling(broker):
    broker.set_quote("EURUSD", 1.10000, 1.10012)
    assert broker.open("EURUSD", Side.BUY, 0.1, magic=1, sl=1.09900).ok
    again = pickle.loads(pickle.dumps(broker))
    again.set_quote("EURUSD", 1.09900, 1.09912)
    assert again.positions() == [] and again.find(1)[0].close_reason == "stop loss"
