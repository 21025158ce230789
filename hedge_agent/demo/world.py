"""The demo world: the sandbox backend, two simulated brokers (one behind the real MT4 bridge with the EA
emulator), and two agents = two PCs of one user, each bound to one account. Also used by benchmarks and
soak runs, so it takes no terminal or screen of its own."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hedge_agent.app import Agent, AgentParts
from hedge_agent.cloud.auth import CognitoAuth
from hedge_agent.cloud.client import CloudClient
from hedge_agent.config import (
    AgentConfig,
    AppSyncConfig,
    CognitoConfig,
    RiskConfig,
    TerminalConfig,
    TerminalKind,
    TrailingConfig,
)
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.binding import Binding
from hedge_agent.engine.journal import AsyncJournal, Journal
from hedge_agent.engine.risk import RiskGate
from hedge_agent.sandbox import SandboxInfo
from hedge_agent.terminals.base import Terminal
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.mt4.terminal import Mt4BridgeTerminal
from hedge_agent.terminals.simulated import SimAccountConfig, SimBroker, SimulatedTerminal, default_symbols

from .admin import AdminUI, GraphQL


class Backend(Protocol):
    """The sandbox, in this process (``Sandbox``) or in its own (``SandboxProcess``)."""

    @property
    def info(self) -> SandboxInfo: ...

    @property
    def graphql(self) -> GraphQL: ...


def demo_symbols(volatility: float) -> list:  # type: ignore[type-arg]
    """The default symbols, walking ``volatility`` times faster so trails arm and fire within a minute."""
    from dataclasses import replace

    return [
        replace(s, volatility_points=max(1, int(s.volatility_points * volatility))) for s in default_symbols()
    ]


@dataclass
class PC:
    name: str
    account_id: str
    terminal: Terminal
    broker: SimBroker
    agent: Agent
    task: asyncio.Task[int] | None = None


@dataclass
class DemoWorld:
    sb: Backend
    user: str
    sub: str
    ui: AdminUI
    pcs: list[PC] = field(default_factory=list)
    ea: EaEmulator | None = None

    async def stop(self) -> None:
        for pc in self.pcs:
            pc.agent.request_stop()
        for pc in self.pcs:
            if pc.task is not None:
                await asyncio.wait_for(pc.task, 30)
        if self.ea is not None:
            await self.ea.stop()


def sandbox_config(
    info: SandboxInfo,
    username: str,
    terminals: list[TerminalConfig],
    *,
    risk: RiskConfig | None = None,
    trailing: TrailingConfig | None = None,
) -> AgentConfig:
    """An agent config pointing at a sandbox (the demo's, or a test's)."""
    return AgentConfig(
        cognito=CognitoConfig(
            region=info.region, user_pool_id=info.user_pool_id, client_id=info.client_id, username=username,
            endpoint_url=info.cognito_endpoint,
        ),
        appsync=AppSyncConfig(graphql_url=info.graphql_url, realtime_url=info.realtime_url),
        terminals=terminals,
        risk=risk or RiskConfig(),
        trailing=trailing or TrailingConfig(),
    )  # fmt: skip


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string


def write_sandbox_toml(
    path: Path,
    info: SandboxInfo,
    username: str,
    terminals: list[dict[str, object]],
    *,
    log_level: str = "INFO",
    risk: dict[str, object] | None = None,
) -> Path:
    """The same as :func:`sandbox_config`, as a TOML file for ``hedge-agent`` processes; logs and the
    journal go next to it."""
    lines = [
        f"log_level = {_toml(log_level)}",
        f"log_dir = {_toml((path.parent / 'logs').as_posix())}",
        f"journal_path = {_toml((path.parent / 'journal.sqlite3').as_posix())}",
        "[cognito]",
        f"region = {_toml(info.region)}",
        f"user_pool_id = {_toml(info.user_pool_id)}",
        f"client_id = {_toml(info.client_id)}",
        f"username = {_toml(username)}",
        f"endpoint_url = {_toml(info.cognito_endpoint)}",
        "[appsync]",
        f"graphql_url = {_toml(info.graphql_url)}",
        f"realtime_url = {_toml(info.realtime_url)}",
    ]
    if risk:
        lines += ["[risk]", *(f"{k} = {_toml(v)}" for k, v in risk.items())]
    for t in terminals:
        lines += ["[[terminals]]", *(f"{k} = {_toml(v)}" for k, v in t.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


async def make_agent(
    info: SandboxInfo,
    username: str,
    terminals: dict[str, Terminal],  # cloud account id -> the terminal that trades it
    journal_path: Path,
    *,
    kind: str = "simulated",
    risk: RiskConfig | None = None,
    trailing: TrailingConfig | None = None,
    wall: Callable[[], float] = time.time,
) -> Agent:
    """The real agent, signed in with the sandbox user's password, on the given (already built) terminals."""
    configs = [
        TerminalConfig(name=t.name, kind=TerminalKind.SIMULATED, account_id=acc, login=1)
        for acc, t in terminals.items()
    ]
    config = sandbox_config(info, username, configs, risk=risk, trailing=trailing)
    auth = CognitoAuth(config.cognito)
    await auth.sign_in_with_password(info.user(username).password)
    cloud = CloudClient(config.appsync, auth)
    bindings = [Binding(acc, t.name, t, SymbolTable(), RiskGate(config.risk)) for acc, t in terminals.items()]
    kinds = {t.name: kind for t in terminals.values()}
    journal = AsyncJournal(Journal(journal_path))
    return Agent(AgentParts(config, cloud, journal, bindings, kinds, on_resume=cloud.recycle, wall=wall))


DEMO_RISK = RiskConfig(max_orders_per_minute=10_000, max_open_positions=10_000)


async def build_world(sb: Backend, workdir: Path, *, seed: int, volatility: float = 3.0) -> DemoWorld:
    """Accounts, terminals and both agents, started and connected."""
    username = "alice"
    sub = sb.info.user(username).sub
    ui = AdminUI(sb.graphql, username)
    acc_a = await ui.create_account(sub, "50001", "MT5", "Main (MT5)", 10_000.0)
    acc_b = await ui.create_account(sub, "70002", "MT4", "Hedge (MT4)", 10_000.0)

    broker_a = SimBroker(
        symbols=demo_symbols(volatility), seed=seed, account_config=SimAccountConfig(login=50001)
    )
    term_a = SimulatedTerminal(
        "mt5-sim", broker_a, SymbolTable(), latency=0.001, tick_interval=0.05, seed=seed
    )
    broker_b = SimBroker(
        symbols=demo_symbols(volatility), seed=seed + 1, account_config=SimAccountConfig(login=70002)
    )
    token = secrets.token_urlsafe(32)
    term_b = Mt4BridgeTerminal("mt4-bridge", 0, token, SymbolTable())

    world = DemoWorld(sb, username, sub, ui)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, acc, term, broker, kind in (
        ("PC-1", acc_a["id"], term_a, broker_a, "mt5 (simulated)"),
        ("PC-2", acc_b["id"], term_b, broker_b, "mt4 bridge + EA emulator"),
    ):
        agent = await make_agent(
            sb.info, username, {acc: term}, workdir / f"{name}-journal.sqlite3", kind=kind, risk=DEMO_RISK
        )
        world.pcs.append(PC(name, acc, term, broker, agent))
    for pc in world.pcs:
        pc.task = asyncio.create_task(pc.agent.run(), name=f"agent-{pc.name}")
        await pc.agent.started.wait()
    world.ea = EaEmulator(
        f"ws://127.0.0.1:{term_b.port}",
        token,
        broker_b,
        login=70002,
        server="Sim-Server",
        walk=True,
        name="ea",
    )
    await world.ea.start()
    await world.ea.wait_welcomed(within=10.0)
    return world
