"""The whole agent on the sandbox backend and simulated terminals, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedge_agent.app import Agent
from hedge_agent.config import (
    RiskConfig,
    TrailingConfig,
)
from hedge_agent.demo.admin import AdminUI
from hedge_agent.demo.world import make_agent
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.sandbox import Sandbox
from hedge_agent.terminals.base import Terminal
from hedge_agent.terminals.simulated import SimBroker, SimulatedTerminal


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll until ``check`` returns something truthy; its last value is returned (or AssertionError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def sim_terminal(name: str, *, seed: int = 1, walk: bool = False, **kw: Any) -> SimulatedTerminal:
    """A simulated terminal whose prices move only when the test moves them (unless ``walk``)."""
    broker = SimBroker(seed=seed)
    return SimulatedTerminal(name, broker, SymbolTable(), tick_interval=0.02, walk=walk, seed=seed, **kw)


@dataclass
class RunningAgent:
    agent: Agent
    task: asyncio.Task[int]
    terminals: dict[str, Terminal]

    async def stop(self) -> int:
        self.agent.request_stop()
        return await asyncio.wait_for(self.task, 30)


@dataclass
class World:
    sb: Sandbox
    tmp: Path
    agents: list[RunningAgent] = field(default_factory=list)

    def sub(self, username: str) -> str:
        return self.sb.info.user(username).sub

    def ui(self, username: str = "alice") -> AdminUI:
        return AdminUI(self.sb.graphql, username)

    async def account(self, username: str = "alice", number: str = "1001") -> str:
        acc = await self.ui(username).create_account(
            self.sub(username), number, "MT5", f"acc {number}", 10_000.0
        )
        return str(acc["id"])

    async def start_agent(
        self,
        username: str,
        terminals: dict[str, Terminal],  # account id -> terminal
        *,
        risk: RiskConfig | None = None,
        stale_quote_s: float = 5.0,
        pc: str = "pc1",
        wall: Callable[[], float] = time.time,
        catchup_s: float | None = None,
    ) -> RunningAgent:
        agent = await make_agent(
            self.sb.info, username, terminals, self.tmp / f"{username}-{pc}-journal.sqlite3",
            risk=risk, trailing=TrailingConfig(stale_quote_s=stale_quote_s), wall=wall,
        )  # fmt: skip
        agent.reconcile_interval_s = 1.0
        if catchup_s is not None:  # the [appsync] catchup_interval_s key, set before the link starts
            agent.cloud._catchup_interval_s = catchup_s  # type: ignore[attr-defined]
        task = asyncio.create_task(agent.run(), name=f"agent-{username}-{pc}")
        running = RunningAgent(agent, task, {t.name: t for t in terminals.values()})
        self.agents.append(running)
        await eventually(lambda: agent.status().cloud == "connected" or task.done(), timeout=15)
        if task.done():
            task.result()
        return running

    async def stop(self) -> None:
        for a in self.agents:
            if not a.task.done():
                await a.stop()


class Gate:
    """Holds one kind of terminal call until released: ``entered`` is set when a call is waiting."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def pass_(self) -> None:
        self.entered.set()
        await self.release.wait()


class GatedTerminal(SimulatedTerminal):
    """A simulated terminal whose open / close / find calls can be held at the broker (an order in flight)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.gates: dict[str, Gate] = {}

    def hold(self, call: str) -> Gate:
        gate = self.gates[call] = Gate()
        return gate

    async def _gate(self, call: str) -> None:
        gate = self.gates.get(call)
        if gate is not None:
            await gate.pass_()
            if gate.release.is_set():
                self.gates.pop(call, None)

    async def open_position(self, *args: Any, **kw: Any) -> Any:
        await self._gate("open")
        return await super().open_position(*args, **kw)

    async def close_position(self, *args: Any, **kw: Any) -> Any:
        await self._gate("close")
        return await super().close_position(*args, **kw)

    async def find(self, *args: Any, **kw: Any) -> Any:
        await self._gate("find")
        return await super().find(*args, **kw)


def gated_terminal(name: str, *, seed: int = 1, broker: SimBroker | None = None) -> GatedTerminal:
    return GatedTerminal(
        name, broker or SimBroker(seed=seed), SymbolTable(), tick_interval=0.02, walk=False, seed=seed
    )
