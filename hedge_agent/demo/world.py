"""The demo world: the sandbox backend and two agents = two PCs of one user, each bound to one account and
built by ``app.assemble`` from its config as ``hedge-agent run`` builds it: PC-1 trades a ``simulated``
terminal (whatever the terminal factory builds for that kind), PC-2 an ``mt4`` terminal (the real MT4
WebSocket bridge) with the EA emulator and its simulated broker behind it. Also used by benchmarks and soak
runs, so it takes no terminal or screen of its own."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import structlog

from hedge_agent.app import Agent, assemble
from hedge_agent.config import (
    AgentConfig,
    AppSyncConfig,
    CognitoConfig,
    RiskConfig,
    TerminalConfig,
    TerminalKind,
    TrailingConfig,
)
from hedge_agent.sandbox import SandboxInfo
from hedge_agent.terminals.base import Terminal
from hedge_agent.terminals.mt4.emulator import EaEmulator
from hedge_agent.terminals.mt4.terminal import Mt4BridgeTerminal
from hedge_agent.terminals.mt4.tokenfile import load_or_create_token
from hedge_agent.terminals.mt5.terminal import Mt5Terminal
from hedge_agent.terminals.simulated import (
    RandomWalk,
    SimAccountConfig,
    SimBroker,
    SimSymbolSpec,
    SimulatedTerminal,
    default_symbols,
)

from .admin import AdminUI, GraphQL


class Backend(Protocol):
    """The sandbox, in this process (``Sandbox``) or in its own (``SandboxProcess``)."""

    @property
    def info(self) -> SandboxInfo: ...

    @property
    def graphql(self) -> GraphQL: ...


def demo_symbols(volatility: float) -> list[SimSymbolSpec]:
    """The default symbols, walking ``volatility`` times faster so trails arm and fire within a minute."""
    return [
        replace(s, volatility_points=max(1, int(s.volatility_points * volatility))) for s in default_symbols()
    ]


def quicken(broker: SimBroker, volatility: float) -> None:
    """Make a simulated broker's prices walk ``volatility`` times faster (the demo's one tuning)."""
    broker.feed = RandomWalk({s.name: s.volatility_points for s in demo_symbols(volatility)})


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
    journal_path: Path | None = None,
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
        journal_path=journal_path,
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


def terminal_config(account_id: str, terminal: Terminal) -> TerminalConfig:
    """The config entry of a terminal that is already built (a test's or a bench's), with its real kind."""
    if isinstance(terminal, Mt4BridgeTerminal):
        if terminal.port < 1024:
            raise ValueError(f"terminal {terminal.name}: connect it first, its bridge port is not known yet")
        return TerminalConfig(
            name=terminal.name,
            kind=TerminalKind.MT4,
            account_id=account_id,
            login=0,
            bridge_port=terminal.port,
        )
    if isinstance(terminal, Mt5Terminal):
        path = getattr(terminal, "path", None) or "terminal64.exe"
        return TerminalConfig(
            name=terminal.name, kind=TerminalKind.MT5, account_id=account_id, login=0, path=path
        )
    login = terminal.broker.account_config.login if isinstance(terminal, SimulatedTerminal) else 0
    return TerminalConfig(name=terminal.name, kind=TerminalKind.SIMULATED, account_id=account_id, login=login)


async def sandbox_agent(
    info: SandboxInfo,
    username: str,
    terminals: list[TerminalConfig],
    journal_path: Path,
    *,
    built: Mapping[str, Terminal] | None = None,
    risk: RiskConfig | None = None,
    trailing: TrailingConfig | None = None,
    wall: Callable[[], float] = time.time,
) -> Agent:
    """The real agent on a sandbox, built by ``app.assemble`` and signed in with the sandbox user's
    password. ``built``: terminals already built, by name (the others come from the terminal factory)."""
    config = sandbox_config(
        info, username, terminals, risk=risk, trailing=trailing, journal_path=journal_path
    )
    return await assemble(
        config,
        password=info.user(username).password,
        terminals=built,
        wall=wall,
        data_dir=journal_path.parent,
    )


async def make_agent(
    info: SandboxInfo,
    username: str,
    terminals: Mapping[str, Terminal],  # cloud account id -> the terminal that trades it
    journal_path: Path,
    *,
    risk: RiskConfig | None = None,
    trailing: TrailingConfig | None = None,
    wall: Callable[[], float] = time.time,
) -> Agent:
    """:func:`sandbox_agent` on terminals already built (tests and benches that drive their brokers)."""
    configs = [terminal_config(acc, t) for acc, t in terminals.items()]
    return await sandbox_agent(
        info, username, configs, journal_path, built={t.name: t for t in terminals.values()},
        risk=risk, trailing=trailing, wall=wall,
    )  # fmt: skip


def free_port() -> int:
    """A port free on 127.0.0.1 now (the demo's MT4 bridge port, as a user would pick one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEMO_RISK = RiskConfig(max_orders_per_minute=10_000, max_open_positions=10_000)


async def build_world(sb: Backend, workdir: Path, *, seed: int, volatility: float = 3.0) -> DemoWorld:
    """Accounts, both agents from their configs, the EA emulator: started and connected."""
    username = "alice"
    sub = sb.info.user(username).sub
    ui = AdminUI(sb.graphql, username)
    acc_a = await ui.create_account(sub, "50001", "MT5", "Main (MT5)", 10_000.0)
    acc_b = await ui.create_account(sub, "70002", "MT4", "Hedge (MT4)", 10_000.0)
    workdir.mkdir(parents=True, exist_ok=True)
    token_file = workdir / "mt4-bridge.token"
    token = load_or_create_token(token_file)  # what the EA reads; the factory's terminal reads the same
    sim = TerminalConfig(
        name="mt5-sim", kind=TerminalKind.SIMULATED, account_id=acc_a["id"], login=50001, seed=seed
    )
    mt4 = TerminalConfig(
        name="mt4-bridge", kind=TerminalKind.MT4, account_id=acc_b["id"], login=70002,
        bridge_port=free_port(), token_file=str(token_file),
    )  # fmt: skip
    world = DemoWorld(sb, username, sub, ui)
    pc1 = await sandbox_agent(sb.info, username, [sim], workdir / "PC-1-journal.sqlite3", risk=DEMO_RISK)
    pc2 = await sandbox_agent(sb.info, username, [mt4], workdir / "PC-2-journal.sqlite3", risk=DEMO_RISK)
    term_a = pc1.parts.bindings[0].terminal
    term_b = pc2.parts.bindings[0].terminal
    assert isinstance(term_a, SimulatedTerminal) and isinstance(term_b, Mt4BridgeTerminal)
    quicken(term_a.broker, volatility)
    # the MT4 terminal's broker lives behind the EA (emulated here), as on a real MT4 PC
    broker_b = SimBroker(
        symbols=demo_symbols(volatility), seed=seed + 1, account_config=SimAccountConfig(login=70002)
    )
    world.pcs.append(PC("PC-1", acc_a["id"], term_a, term_a.broker, pc1))
    world.pcs.append(PC("PC-2", acc_b["id"], term_b, broker_b, pc2))
    for pc in world.pcs:
        with structlog.contextvars.bound_contextvars(pc=pc.name):  # every log line of this agent names its PC
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
