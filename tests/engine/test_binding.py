"""``Binding.free``: an order sent now leaves with no await point before it (the write-ahead may then be
the order's one durable commit, written as sent)."""

from __future__ import annotations

import asyncio

from hedge_agent.config import RiskConfig
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.binding import Binding
from hedge_agent.engine.risk import RiskGate
from hedge_agent.terminals.simulated import SimBroker, SimulatedTerminal


def binding() -> Binding:
    terminal = SimulatedTerminal("t1", SimBroker(seed=1), SymbolTable(), tick_interval=None)
    return Binding("acc-1", "t1", terminal, SymbolTable(), RiskGate(RiskConfig()))


async def test_free_only_while_connected_and_nobody_holds_or_waits_for_the_order_lock() -> None:
    b = binding()
    assert not b.free()  # not connected yet: send would wait out the grace
    await b.terminal.connect()
    assert b.free()
    await b.take()
    assert not b.free()
    queued = asyncio.Event()

    async def second() -> None:
        queued.set()
        await b.take()
        b.release()

    task = asyncio.create_task(second())
    await queued.wait()
    b.release()  # the lock is free, but the woken waiter has not run yet: still not free
    assert not b.lock.locked() and b.waiting == 1 and not b.free()
    await task
    assert b.free()
    await b.terminal.shutdown()


async def test_take_returns_without_yielding_when_free() -> None:
    b = binding()
    await b.terminal.connect()
    ran: list[str] = []
    other = asyncio.get_running_loop().call_soon(ran.append, "other")
    assert b.free()
    await b.take()
    assert ran == []  # no other callback ran: take did not yield
    b.release()
    other.cancel()
    await b.terminal.shutdown()
