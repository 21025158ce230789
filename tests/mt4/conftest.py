"""A bridge and EA emulators on real sockets on 127.0.0.1, trading on a SimBroker."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.terminals.mt4 import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.simulated import SimBroker, default_symbols

TOKEN = "tok-" + "a1B2c3D4" * 5
LOGIN = 5_000_001
SYMBOLS = SymbolTable(broker_names={Symbol.USDJPY: "USDJPY.raw"})

#: short timeouts so failure paths run in a fraction of a second
FAST_BRIDGE: dict[str, Any] = {
    "order_timeout_s": 0.5,
    "query_timeout_s": 0.5,
    "connect_wait_s": 0.3,
    "heartbeat_s": 0.1,
    "dead_after_s": 0.5,
}
FAST_EA: dict[str, Any] = {"timer_ms": 5, "backoff_initial_s": 0.02, "backoff_max_s": 0.2}


async def until(check: Callable[[], object], within: float = 3.0) -> None:
    """Wait until ``check()`` is truthy; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    broker: SimBroker
    terminals: list[Mt4BridgeTerminal] = field(default_factory=list)
    eas: list[EaEmulator] = field(default_factory=list)

    async def bridge(self, port: int = 0, **kw: Any) -> Mt4BridgeTerminal:
        t = Mt4BridgeTerminal("mt4-test", port, kw.pop("token", TOKEN), SYMBOLS, **{**FAST_BRIDGE, **kw})
        await t.connect()
        self.terminals.append(t)
        return t

    def ea(self, port: int, **kw: Any) -> EaEmulator:
        ea = EaEmulator(
            f"ws://127.0.0.1:{port}",
            kw.pop("token", TOKEN),
            kw.pop("broker", self.broker),
            login=kw.pop("login", LOGIN),
            server="SimBroker-Demo",
            **{**FAST_EA, **kw},
        )
        self.eas.append(ea)
        return ea

    async def linked(self, **bridge_kw: Any) -> tuple[Mt4BridgeTerminal, EaEmulator]:
        """A bridge with one welcomed EA."""
        t = await self.bridge(**bridge_kw)
        ea = self.ea(t.port)
        await ea.start()
        await ea.wait_welcomed()
        return t, ea

    async def close(self) -> None:
        for ea in self.eas:
            await ea.stop()
        for t in self.terminals:
            await t.shutdown()


@pytest.fixture
def broker() -> SimBroker:
    return SimBroker(symbols=default_symbols({"USDJPY": "USDJPY.raw"}), seed=1)


@pytest.fixture
async def rig(broker: SimBroker) -> AsyncIterator[Rig]:
    r = Rig(broker)
    yield r
    await r.close()
