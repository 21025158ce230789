"""``trades.log``: one line a trader can read per fill, close, failure and refusal.

It sits next to the JSON log (same folder), is written through the engine's :class:`TradeSink` port, and
holds local time, terminal, symbol, side, lots, price in the symbol's digits, ticket and why::

    2026-12-02 09:51:03 +0900  FILL     mt5-main   USDJPY  BUY  0.10 lots at 150.123  #1234  (action)
    2026-12-02 09:58:40 +0900  CLOSE    mt5-main   USDJPY  BUY  0.10 lots at 150.456  #1234  (trail)
    2026-12-02 09:59:00 +0900  REFUSED  mt4-hedge  EURUSD  SELL 20.00 lots              (risk cap: ...)

The JSON log keeps everything (ids, integer points, UTC) as ``trade.<kind>`` events; this file is for people.
A write error is logged, never raised into the engine.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from hedge_agent.display import fmt_lots, fmt_price, local_time
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.ports import TradeEvent
from hedge_agent.logs import TRADES_FILE

log = structlog.get_logger(__name__)

_LABEL = {"fill": "FILL", "close": "CLOSE", "failure": "FAILED", "refusal": "REFUSED"}


def format_trade(event: TradeEvent, symbols: SymbolTable | None = None) -> str:
    """The one readable line of ``event`` (no newline)."""
    spec = (symbols or SymbolTable()).spec(event.symbol)
    where = f"at {fmt_price(spec, event.price)}" if event.price is not None else ""
    ticket = f"#{event.ticket}" if event.ticket else ""
    parts = [
        local_time(event.at),
        f"{_LABEL[event.kind]:<7}",
        f"{event.terminal:<12}",
        f"{event.symbol.value:<6}",
        f"{event.side.value:<4}",
        f"{fmt_lots(event.volume)} lots",
        f"{where:<13}",
        f"{ticket:<10}",
        f"({event.why})" if event.why else "",
    ]
    return "  ".join(parts).rstrip()


class TradeLog:
    """A :class:`TradeSink` writing ``trades.log`` (rotated like the JSON log). ``symbols`` gives each
    terminal's symbol table (pip overrides change nothing about digits, but broker names may be added)."""

    def __init__(
        self,
        log_dir: Path,
        symbols: Mapping[str, SymbolTable] | None = None,
        *,
        also: Callable[[TradeEvent], None] | None = None,
    ) -> None:
        self.path = log_dir / TRADES_FILE
        self._symbols = dict(symbols or {})
        self._also = also
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=5 * 2**20, backupCount=5, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def trade(self, event: TradeEvent) -> None:
        line = format_trade(event, self._symbols.get(event.terminal))
        log.info(
            f"trade.{event.kind}",
            terminal=event.terminal,
            account=event.account_id,
            position=event.position_id,
            symbol=event.symbol.value,
            side=event.side.value,
            volume=event.volume,
            price=event.price,
            ticket=event.ticket,
            why=event.why,
        )
        try:
            with self._lock:
                self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        except Exception:
            log.exception("trade_log.write_failed", path=str(self.path))
        if self._also is not None:
            self._also(event)

    def close(self) -> None:
        with self._lock:
            self._handler.close()
