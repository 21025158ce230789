"""A terminal on this PC and the cloud Account it trades."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.protective import stop_distance
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import MT4_MAGIC_BITS, OrderTag, close_intent_of, order_tag
from hedge_agent.terminals.base import Connection, Terminal

from .risk import RiskGate


@dataclass
class Binding:
    account_id: str
    name: str
    terminal: Terminal
    symbols: SymbolTable
    risk: RiskGate
    magic_base: int = 0
    protective_stop_pips: float = 0  # TerminalConfig.protective_stop_pips: a broker-side SL with each open
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # orders serialized per terminal
    waiting: int = 0  # orders waiting for ``lock``

    async def take(self) -> None:
        """The terminal's order lock (``OrderPolicy.send``); release with :meth:`release`."""
        self.waiting += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self.lock.release()

    def free(self) -> bool:
        """An order sent now would leave without an await point before it: nothing holds or waits for the
        order lock (:meth:`take` then returns at once) and the terminal is connected (no grace wait). Only
        then is its intent written ahead as sent, in one durable commit (``Journal.write_ahead(sent=True)``):
        a crash can no more fall between that commit and the order leaving than after ``mark_sent``."""
        return (
            self.waiting == 0
            and not self.lock.locked()
            and self.terminal.health().connection is Connection.CONNECTED
        )

    def tag(self, intent: str) -> OrderTag:
        # 31-bit tags fit every terminal kind, so one journal format serves MT4, MT5 and the simulator
        return order_tag(intent, MT4_MAGIC_BITS, self.magic_base)

    def close_of(self, position_id: str, magic: int, attempts: int) -> str | None:
        """The close intent of ``position_id`` (any agent's: tags are deterministic) whose tag is ``magic``."""
        return close_intent_of(position_id, magic, attempts, MT4_MAGIC_BITS, self.magic_base)

    def stop_distance(self, symbol: Symbol) -> float | None:
        """The protective stop's distance from the open price (price units), None when it is off."""
        return stop_distance(self.protective_stop_pips, symbol, self.symbols)
