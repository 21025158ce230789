"""The simulated broker (sans-I/O, synchronous) and the asyncio ``SimulatedTerminal`` around it."""

from .broker import SimBroker
from .feed import PriceFeed, RandomWalk, TickReplay
from .records import (
    DealEntry,
    DealReason,
    Fault,
    FaultKind,
    ManualClock,
    OrderLogEntry,
    SimAccount,
    SimAccountConfig,
    SimDeal,
    SimError,
    SimOrder,
    SimPosition,
    SimQuote,
    SimResult,
    SimSymbolSpec,
    SimTrade,
    default_symbols,
)
from .terminal import SimulatedTerminal

__all__ = [
    "DealEntry",
    "DealReason",
    "Fault",
    "FaultKind",
    "ManualClock",
    "OrderLogEntry",
    "PriceFeed",
    "RandomWalk",
    "SimAccount",
    "SimAccountConfig",
    "SimBroker",
    "SimDeal",
    "SimError",
    "SimOrder",
    "SimPosition",
    "SimQuote",
    "SimResult",
    "SimSymbolSpec",
    "SimTrade",
    "SimulatedTerminal",
    "TickReplay",
    "default_symbols",
]
