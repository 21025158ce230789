"""A terminal on this PC and the cloud Account it trades."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import MT4_MAGIC_BITS, OrderTag, order_tag
from hedge_agent.terminals.base import Terminal

from .risk import RiskGate


@dataclass
class Binding:
    account_id: str
    name: str
    terminal: Terminal
    symbols: SymbolTable
    risk: RiskGate
    magic_base: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # orders serialized per terminal

    def tag(self, intent: str) -> OrderTag:
        # 31-bit tags fit every terminal kind, so one journal format serves MT4, MT5 and the simulator
        return order_tag(intent, MT4_MAGIC_BITS, self.magic_base)
