"""Composition root: builds the agent from its parts, runs its tasks, orders the shutdown.

Only this module wires cloud, terminals, journal and engine together. Every long-running task is named,
tracked, restarted with backoff when it fails, and its end is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from hedge_agent.config import AgentConfig
from hedge_agent.domain.enums import PCStatus, PositionStatus, Symbol
from hedge_agent.domain.models import Position
from hedge_agent.engine.account_sync import AccountSync
from hedge_agent.engine.binding import Binding
from hedge_agent.engine.cadence import Cadence
from hedge_agent.engine.engine import Executor
from hedge_agent.engine.journal import AsyncJournal, Intent
from hedge_agent.engine.monitor import TrailMonitor
from hedge_agent.engine.outcomes import Ok
from hedge_agent.engine.ports import CloudPort, TradeSink
from hedge_agent.engine.status_board import StatusBoard
from hedge_agent.errors import FatalError
from hedge_agent.status import AgentStatus, TerminalStatus
from hedge_agent.status_file import (
    SkippedRecords,
    collect,
    mark_stopped,
    positions_of,
    status_path,
    trailed_names,
    write_atomic,
)

if TYPE_CHECKING:
    from hedge_agent.cloud.auth import CognitoAuth
    from hedge_agent.cloud.client import CloudClient
    from hedge_agent.terminals.base import Terminal

log = structlog.get_logger(__name__)

WATCH_INTERVAL_S = 1.0  # stop-out detection: positions snapshot per terminal
RECONCILE_INTERVAL_S = 10.0  # leftovers (unknown outcomes, failed reports) are retried this often
HEALTH_INTERVAL_S = 0.5
STATUS_FILE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class StartProblem:
    """Something found at start that keeps part of the job from working, with what to do about it."""

    title: str
    message: str


#: run once at start, before the agent reports itself ONLINE; a problem is logged and shown as a notice
StartCheck = Callable[[], Awaitable[StartProblem | None]]


@dataclass
class AgentParts:
    config: AgentConfig
    cloud: CloudPort
    journal: AsyncJournal
    bindings: list[Binding]
    kinds: dict[str, str]  # terminal name -> kind, for the status
    on_resume: Callable[[], Awaitable[None]] | None = None  # refresh token + recycle sockets after a sleep
    wall: Callable[[], float] = time.time  # injectable: tests jump it to play a resume from sleep
    trade_sink: TradeSink | None = None  # trades.log (hedge_agent.trade_log): the engine reports trades to it
    status_path: Path | None = None  # status.json for `hedge-agent status`, rewritten every second
    simulate: bool = False  # a dry run (--simulate): shown in the status
    start_checks: tuple[StartCheck, ...] = ()


class Agent:
    """The running agent. Thread-safe controls (``pause``/``resume``/``request_stop``) for the tray."""

    def __init__(self, parts: AgentParts) -> None:
        self.parts = parts
        self.config = parts.config
        self.cloud = parts.cloud
        self.board = StatusBoard(user=self.config.cognito.username)
        self.monitor = TrailMonitor(
            parts.journal, self._fire_soon, stale_after_s=self.config.trailing.stale_quote_s
        )
        self.executor = Executor(
            cloud=parts.cloud,
            journal=parts.journal,
            bindings=parts.bindings,
            board=self.board,
            on_open=self._track,
            on_gone=self._untrack,
            on_fatal=self._fatal,
            sink=parts.trade_sink,
        )
        for b in parts.bindings:
            self.monitor.add_terminal(b.name, b.symbols)
        self.sync = AccountSync(parts.cloud)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.started = asyncio.Event()
        self._stop_requested = False
        self.reconcile_interval_s = RECONCILE_INTERVAL_S
        self.skipped = SkippedRecords()  # records of ours on accounts not bound here, for the status
        self.untrailed_at_stop: tuple[str, ...] = ()  # trails that stopped with the agent
        self._started_wall = time.time()
        self.fatal: FatalError | None = None  # what stopped the agent, if the engine could not go on

    # -- AgentControl (any thread) ---------------------------------------------------------------------

    def status(self) -> AgentStatus:
        return self.board.snapshot()

    def pause(self) -> None:
        self._call(lambda: self._set_paused(True))

    def resume(self) -> None:
        self._call(lambda: self._set_paused(False))

    def request_stop(self) -> None:
        self._stop_requested = True  # honoured by run() even before the loop exists
        self._call(lambda: self._stop.set() if self._stop else None)

    def _call(self, fn: Callable[[], object]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def _fatal(self, e: FatalError) -> None:
        # the engine logged and said it; stop taking work (a journal that vanished must not be written again)
        self.fatal = self.fatal or e
        self.request_stop()

    def _set_paused(self, paused: bool) -> None:
        self.executor.paused = paused
        self.board.update(paused=paused)
        log.warning("execution paused" if paused else "execution resumed")

    # -- wiring callbacks --------------------------------------------------------------------------------

    def _fire_soon(self, position_id: str, cause: str) -> None:
        # claims go out in their own task: the tick loop never waits for the cloud
        self.executor.spawn(self.executor.fire(position_id, cause), f"fire-{position_id}")

    def _track(self, p: Position, b: Binding, intent: Intent) -> None:
        entry = p.entry_price if p.entry_price is not None else intent.price
        self.executor.spawn(self.monitor.track(p, b.name, entry), f"track-{p.id}")

    def _untrack(self, position_id: str) -> None:
        self.monitor.untrack(position_id)
        self.board.update(positions_trailing=self.monitor.trailing)

    # -- run ------------------------------------------------------------------------------------------------

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        log.info("agent starting", terminals=[b.name for b in self.parts.bindings])
        for b in self.parts.bindings:
            await b.terminal.connect()
            await b.terminal.watch(list(Symbol))
        await self._start_checks()
        await self._pc_status(PCStatus.ONLINE)
        self._spawn("cloud-events", self._cloud_events)
        for b in self.parts.bindings:
            self._spawn(f"quotes-{b.name}", partial(self._quotes, b))
            self._spawn(
                f"watch-{b.name}",
                partial(self._every, WATCH_INTERVAL_S, partial(self.executor.watch_terminal, b)),
            )
            self._spawn(
                f"sync-{b.name}", partial(self._every, self.config.account_sync_s, partial(self._sync, b))
            )
        self._spawn("cadence", self._cadence)
        self._spawn("status-file", lambda: self._every(STATUS_FILE_INTERVAL_S, self._status_file))
        self._spawn("health", lambda: self._every(HEALTH_INTERVAL_S, self._health))
        self._spawn(
            "reconcile", lambda: self._every(self.reconcile_interval_s, self.executor.reconcile, first=False)
        )
        self.started.set()
        await self._stop.wait()
        code = await self._shutdown()
        return 2 if self.fatal is not None else code

    async def _shutdown(self) -> int:
        log.info("agent stopping: no new work; waiting for in-flight orders")
        self._say_untrailed()
        drained = await self.executor.drain(grace_s=15.0)
        if not drained:
            log.warning("some work was cut short; it stays journaled and resumes on the next start")
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pc_status(PCStatus.OFFLINE)
        for b in self.parts.bindings:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(b.terminal.shutdown(), 10)
        close = getattr(self.cloud, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 10)
        self.parts.journal.close()
        if self.parts.status_path is not None:
            mark_stopped(self.parts.status_path)
        log.info("agent stopped")
        return 0

    def _spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        async def supervised() -> None:
            delay = 0.5
            while True:
                try:
                    await body()
                    log.info("task ended", task=name)
                    return
                except asyncio.CancelledError:
                    raise
                except FatalError as e:
                    log.critical("fatal; stopping", task=name, error=str(e))
                    self.board.notice("error", "fatal", str(e))
                    self._fatal(e)
                    return
                except Exception as e:
                    log.exception("task failed; restarting", task=name, delay=delay)
                    self.board.notice("warning", f"{name} restarting", f"{type(e).__name__}: {e}")
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 30.0)

        self._tasks.append(asyncio.get_running_loop().create_task(supervised(), name=name))

    async def _every(self, interval: float, fn: Callable[[], Awaitable[object]], first: bool = True) -> None:
        if not first:
            await asyncio.sleep(interval)
        while True:
            try:
                await fn()
            except (asyncio.CancelledError, FatalError):
                raise
            except Exception:
                log.exception("periodic job failed", job=getattr(fn, "__name__", repr(fn)))
            await asyncio.sleep(interval)

    async def _cloud_events(self) -> None:
        async for event in self.cloud.events():
            self.skipped.observe(event, self.cloud.sub, self.executor.bindings)
            self.executor.handle(event)

    async def _status_file(self) -> None:
        """The trailed positions' names on the board (tray's Quit question), and status.json."""
        self.board.update(trailed=trailed_names(positions_of(self)))
        if self.parts.status_path is not None:
            data = collect(self, self.skipped, started_at=self._started_wall, simulate=self.parts.simulate)
            await asyncio.to_thread(write_atomic, self.parts.status_path, data)

    def _say_untrailed(self) -> None:
        names = trailed_names(positions_of(self))
        self.untrailed_at_stop = names
        if names:
            log.warning(
                "agent.trails_stopped",
                message=f"{len(names)} positions are no longer trailed until the agent runs again",
                positions=list(names),
            )

    async def _quotes(self, b: Binding) -> None:
        async for q in b.terminal.quotes():
            await self.monitor.on_tick(b.name, q)

    async def _cadence(self) -> None:
        period = self.config.trailing.interval_ms / 1000
        async for tick in Cadence(period_s=period, wall=self.parts.wall):
            if tick.resume is not None:
                log.warning("the PC slept or stalled; resyncing", detail=tick.resume.describe())
                self.board.notice("warning", "resumed", tick.resume.describe())
                self.executor.spawn(self._resume(), "resume")
            await self.monitor.sweep()
            self.board.update(positions_trailing=self.monitor.trailing)

    async def _resume(self) -> None:
        if self.parts.on_resume is not None:
            await self.parts.on_resume()
        await self.executor.reconcile()

    async def _sync(self, b: Binding) -> None:
        await self.sync.sync(b)

    async def _health(self) -> None:
        for b in self.parts.bindings:
            h = b.terminal.health()
            before = next((t for t in self.board.snapshot().terminals if t.name == b.name), None)
            ts = TerminalStatus(
                b.name,
                self.parts.kinds.get(b.name, ""),
                b.account_id,
                h.connection.value,
                h.trade_allowed,
                h.detail,
            )
            self.board.terminal(ts)
            if before is not None and before.connection != ts.connection:
                level = "info" if ts.connection == "connected" else "warning"
                self.board.notice(level, f"{b.name} {ts.connection}", h.detail)
                if ts.connection == "connected":
                    self.executor.spawn(self.executor.reconcile(), f"reconcile-{b.name}")
        opened = sum(1 for p in self.executor.positions.values() if p.status is PositionStatus.OPEN)
        self.board.update(positions_open=opened)

    async def _start_checks(self) -> None:
        for check in self.parts.start_checks:
            try:
                problem = await asyncio.wait_for(check(), timeout=10)
            except (TimeoutError, Exception) as e:
                log.warning(
                    "start check could not run", check=getattr(check, "__name__", repr(check)), error=repr(e)
                )
                continue
            if problem is not None:
                log.warning(problem.title, problem=problem.message)
                self.board.notice("warning", problem.title, problem.message)

    async def _pc_status(self, status: PCStatus) -> None:
        try:
            outcome = await asyncio.wait_for(self.cloud.set_pc_status(status), timeout=10)
        except (TimeoutError, Exception) as e:
            log.warning("pcStatus not set", status=status.value, error=repr(e))
            return
        if not isinstance(outcome, Ok):
            log.warning("pcStatus not set", status=status.value, outcome=repr(outcome))


# -- building from config: the one composition root --------------------------------------------------------


class _JournalMeta:
    """The journal's meta table as the terminals' small persistent store (MT5: the server clock)."""

    def __init__(self, journal: AsyncJournal) -> None:
        self._journal = journal

    async def get_meta(self, key: str) -> str | None:
        return await self._journal.call(self._journal.sync.get_meta, key)

    async def set_meta(self, key: str, value: str) -> None:
        await self._journal.call(self._journal.sync.set_meta, key, value)


async def check_user_row(cloud: CloudClient, username: str) -> StartProblem | None:
    """The signed-in user's ``User`` record must exist: the backend refuses every ``pcStatus`` update
    (``Unauthorized``, the owner check of a missing item) until the admin UI or the sign-up trigger has
    created it, and the agent never creates it. None when it exists (``hedge-agent check`` uses this too)."""
    if await cloud.get_user() is not None:
        return None
    return StartProblem(
        "User record missing",
        f"the backend has no User record for {username} (id {cloud.sub}), so the PC status "
        "(online/offline) cannot be shown; trading is not affected. Fix: have the admin UI create the user "
        f"(sign in to it once as {username}, or ask an admin), then restart the agent.",
    )


async def sign_in(config: AgentConfig, password: str | None = None) -> CognitoAuth:
    """The stored refresh token, or ``password`` (unattended use, the demo, tests)."""
    from hedge_agent.cloud.auth import CognitoAuth
    from hedge_agent.cloud.login import resume
    from hedge_agent.cloud.token_store import TokenStore

    if password is not None:
        auth = CognitoAuth(config.cognito)
        await auth.sign_in_with_password(password)
        return auth
    return await resume(config, TokenStore())


async def assemble(
    config: AgentConfig,
    *,
    auth: CognitoAuth | None = None,
    password: str | None = None,
    simulate: bool = False,
    terminals: Mapping[str, Terminal] | None = None,
    data_dir: Path | None = None,
    wall: Callable[[], float] = time.time,
    trade_sink: TradeSink | None = None,
) -> Agent:
    """The agent from its config: the one place its parts are wired. ``hedge-agent run``, the demo, the
    scenario tests and the benches all build their agents here.

    ``auth``: a signed-in session; without one, :func:`sign_in` (``password``, else the stored token).
    ``terminals``: terminals already built, by terminal name (tests that drive their brokers); every other
    terminal is built from its config by the terminal factory (``simulate`` swaps every kind for the
    simulator). ``trade_sink``: where the engine reports each trade (``trades.log``).
    """
    from hedge_agent.cloud.client import CloudClient
    from hedge_agent.engine.journal import Journal
    from hedge_agent.engine.risk import RiskGate
    from hedge_agent.logs import default_data_dir
    from hedge_agent.terminals.factory import build_terminal

    given = dict(terminals or {})
    unknown = sorted(set(given) - {tc.name for tc in config.terminals})
    if unknown:
        raise ValueError(
            f"terminals {unknown} are not in the config (its terminals: {[t.name for t in config.terminals]})"
        )
    if auth is None:
        auth = await sign_in(config, password)
    cloud = CloudClient(config.appsync, auth)
    data_dir = data_dir or default_data_dir()
    journal_path = Path(config.journal_path or data_dir / "journal.sqlite3")
    journal = AsyncJournal(
        Journal(journal_path, keep_finished_s=config.journal.keep_finished_days * 86_400.0)
    )
    meta = _JournalMeta(journal)
    bindings = [
        Binding(
            tc.account_id,
            tc.name,
            given[tc.name]
            if tc.name in given
            else build_terminal(tc, simulate=simulate, data_dir=data_dir, meta_store=meta),
            tc.symbols,
            RiskGate(config.risk),
            tc.magic_base,
            tc.protective_stop_pips,
        )
        for tc in config.terminals
    ]
    kinds = {tc.name: ("simulated" if simulate else tc.kind.value) for tc in config.terminals}
    username = config.cognito.username
    user_row = partial(check_user_row, cloud, username)
    return Agent(
        AgentParts(
            config,
            cloud,
            journal,
            bindings,
            kinds,
            on_resume=cloud.recycle,
            wall=wall,
            start_checks=(user_row,),
            trade_sink=trade_sink,
            status_path=status_path(journal_path),
            simulate=simulate,
        )
    )
