"""trades.log: one line a person can read per fill, close, failure and refusal (issue 14, point 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.ports import TradeEvent
from hedge_agent.logs import setup_logging
from hedge_agent.trade_log import TradeLog, format_trade

AT = datetime(2026, 12, 2, 0, 51, 3, tzinfo=UTC)


def event(**changes: object) -> TradeEvent:
    base: dict[str, object] = {
        "kind": "fill", "terminal": "mt5-main", "account_id": "acc-1", "position_id": "p-1",
        "symbol": Symbol.USDJPY, "side": Side.BUY, "volume": 0.1, "price": 150.1, "ticket": "1234",
        "why": "action", "at": AT,
    }  # fmt: skip
    base.update(changes)
    return TradeEvent(**base)  # type: ignore[arg-type]


def test_a_fill_line_has_local_time_terminal_symbol_side_lots_price_digits_ticket_and_why() -> None:
    line = format_trade(event())
    local = AT.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
    assert line.startswith(local + "  FILL ")
    for part in ("mt5-main", "USDJPY", "BUY", "0.10 lots", "at 150.100", "#1234", "(action)"):
        assert part in line
    assert "\n" not in line and "p-1" not in line  # ids stay in the JSON log


def test_prices_keep_their_symbols_digits() -> None:
    assert "at 1.08500" in format_trade(event(symbol=Symbol.EURUSD, price=1.085))
    assert "at 2650.50" in format_trade(event(symbol=Symbol.XAUUSD, price=2650.5))
    # a float that is not exactly representable still prints on the point grid
    assert "at 0.85123" in format_trade(event(symbol=Symbol.EURGBP, price=0.8512300000000001))


def test_close_failure_and_refusal_say_why() -> None:
    close = format_trade(event(kind="close", price=150.456, why="trail"))
    assert " CLOSE " in close and "at 150.456" in close and close.endswith("(trail)")
    failed = format_trade(event(kind="failure", price=None, ticket=None, why="market closed (10018)"))
    assert " FAILED " in failed and " at " not in failed and failed.endswith("(market closed (10018))")
    refused = format_trade(
        event(kind="refusal", price=None, ticket=None, volume=20, why="risk cap: max 10 lots")
    )
    assert " REFUSED " in refused and "20.00 lots" in refused


def test_the_sink_writes_trades_log_next_to_the_json_log_and_a_dotted_json_event(tmp_path: Path) -> None:
    log_file = setup_logging("INFO", tmp_path, console=False)
    assert log_file is not None
    sink = TradeLog(tmp_path, {"mt5-main": SymbolTable(pip_overrides={Symbol.USDJPY: Decimal("0.01")})})
    sink.trade(event())
    sink.trade(event(kind="close", price=150.2, why="by hand"))
    sink.close()
    lines = (tmp_path / "trades.log").read_text().splitlines()
    assert len(lines) == 2 and " FILL " in lines[0] and "(by hand)" in lines[1]
    events = [json.loads(x) for x in log_file.read_text().splitlines()]
    fills = [e for e in events if e["event"] == "trade.fill"]
    assert fills and fills[0]["position"] == "p-1" and fills[0]["price"] == 150.1


def test_a_write_error_never_reaches_the_engine(tmp_path: Path) -> None:
    sink = TradeLog(tmp_path)
    sink.close()
    (tmp_path / "trades.log").unlink()
    (tmp_path / "trades.log").mkdir()  # the file is now a folder: every write fails
    sink.trade(event())  # does not raise
