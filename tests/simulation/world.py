"""The simulated world: the cloud model, the brokers, and the agents — the REAL engine (executor, trailing
monitor, cadence, SQLite journal in a temp dir) wired the way ``hedge_agent.app.Agent`` wires it.

This is the ONE module that knows how to construct and drive the engine (``Incarnation``); everything
else (scheduler, invariants, tests) talks to the world. An incarnation is one life of one agent process:
it can crash at a chosen port call (before the call takes effect, or right after: the answer is lost) or
at a chosen instant; its tasks are cancelled, its in-memory state dropped, and a new incarnation restarts
from the journal file (or, to play a lost journal, from a new one).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import structlog

from hedge_agent.config import RiskConfig
from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.models import Position
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import MT4_MAGIC_BITS, IntentKind, intent_id, order_tag
from hedge_agent.engine.cadence import Cadence
from hedge_agent.engine.journal import AsyncJournal, Intent, Journal
from hedge_agent.engine.monitor import TrailMonitor
from hedge_agent.engine.risk import RiskGate
from hedge_agent.engine.status_board import StatusBoard

from .cloud_model import CloudView, Dead, SimCloud

try:  # the engine of issue 11 (engine/engine.py); the old executor only to replay the "before" runs
    from hedge_agent.engine.binding import Binding
    from hedge_agent.engine.engine import Engine

    NEW_ENGINE = True
except ImportError:  # main before the rewrite
    from hedge_agent.engine.executor import Binding  # type: ignore[import-not-found,no-redef,unused-ignore]
    from hedge_agent.engine.executor import Executor as Engine  # type: ignore[import-not-found,assignment,no-redef,unused-ignore]

    NEW_ENGINE = False
from .terminal_model import Broker, SimTerminal, TerminalFaults

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
USER = "user-alice"
OTHER_USER = "user-mallory"

WATCH_INTERVAL_S = 1.0  # as hedge_agent.app
RECONCILE_INTERVAL_S = 10.0
HEALTH_INTERVAL_S = 0.5
CADENCE_S = 0.1
STALE_QUOTE_S = 5.0

P = ParamSpec("P")
T = TypeVar("T")

CURRENT: contextvars.ContextVar[Incarnation | None] = contextvars.ContextVar("incarnation", default=None)


@dataclass
class Notice:
    at: float
    agent: str
    level: str
    title: str
    message: str


class RecordingBoard(StatusBoard):
    def __init__(self, world: World, agent: str) -> None:
        super().__init__(USER)
        self._world, self._agent = world, agent

    def notice(self, level: str, title: str, message: str) -> None:
        self._world.notices.append(Notice(self._world.loop.time(), self._agent, level, title, message))
        super().notice(level, title, message)


class InlineJournal(AsyncJournal):
    """The journal run inline (no thread), with an await point before and after each call, so a crash can
    land on either side of a write, as it can with the real thread pool."""

    def __init__(self, journal: Journal, owner: Incarnation) -> None:
        self.sync = journal
        self._owner = owner

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        await asyncio.sleep(0)
        mode = self._owner.on_call("journal")
        if mode == "before" or not self._owner.alive:
            raise Dead()
        result = fn(*args, **kwargs)
        if mode == "after":
            self._owner.die()
            raise Dead()
        await asyncio.sleep(0)
        return result

    async def quick(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The real ``quick`` runs on the loop thread with no await point: a crash lands before the write
        or after it, never inside, and no other task runs in between."""
        mode = self._owner.on_call("journal")
        if mode == "before" or not self._owner.alive:
            raise Dead()
        result = fn(*args, **kwargs)
        if mode == "after":
            self._owner.die()
            raise Dead()
        return result

    def close(self) -> None:
        self.sync.close()


@dataclass
class AgentSpec:
    name: str
    accounts: tuple[str, ...]


@dataclass
class FireSeen:
    at: float
    agent: str
    position_id: str
    cause: str
    #: best close-side price (points) its terminal was shown since the open, and a close-side price it was
    #: shown shortly before the fire (the one farthest from that best: Broker.shown_drawdown)
    best: int | None = None
    price: int | None = None


class Incarnation:
    """One life of one agent: the engine objects and the tasks app.Agent.run would start."""

    def __init__(self, world: World, spec: AgentSpec, number: int, journal_path: Path) -> None:
        self.world, self.spec, self.number = world, spec, number
        self.name = f"{spec.name}#{number}"
        self.alive = True
        self.tasks: set[asyncio.Task[Any]] = set()
        self.crash_in: int | None = None  # crash at the n-th port call from now
        self.crash_mode = "before"
        self.calls = 0
        loop = world.loop
        self.journal = Journal(journal_path, clock=lambda: EPOCH.timestamp() + loop.time())
        self.ajournal = InlineJournal(self.journal, self)
        self.view = CloudView(world.cloud, USER, self.name, loop)
        world.views[self.name] = self.view
        self.view.on_call, self.view.die = self.on_call, self.die
        self.terminals: dict[str, SimTerminal] = {}
        bindings = []
        for acc in spec.accounts:
            term = SimTerminal(
                f"{spec.name}-{acc}", world.brokers[acc], world.rng, lambda: world.terminal_faults
            )
            term.on_call, term.die = self.on_call, self.die
            term.connected = world.terminal_up.get(term.name, True)
            self.terminals[acc] = term
            bindings.append(
                Binding(acc, term.name, term, SymbolTable(), RiskGate(RiskConfig(), clock=loop.time))
            )
        self.bindings = bindings
        self.board = RecordingBoard(world, self.name)
        self.monitor = TrailMonitor(
            self.ajournal, self._fire_soon, stale_after_s=STALE_QUOTE_S, clock=loop.time
        )
        extra: dict[str, Any] = {"on_fatal": self._fatal, "now": world.wall} if NEW_ENGINE else {}
        self.executor = Engine(
            cloud=self.view,
            journal=self.ajournal,
            bindings=bindings,
            board=self.board,
            on_open=self._track,
            on_gone=self._untrack,
            clock=loop.time,
            **extra,
        )
        for b in bindings:
            self.monitor.add_terminal(b.name, b.symbols)

    # -- wiring, as hedge_agent.app.Agent ----------------------------------------------------------------

    def _fatal(self, e: Exception) -> None:
        """The app stops on a FatalError: in the simulation it is a finding, and the process dies."""
        self.world.fatal.append(f"{self.name}: {e}")
        self.world.note(f"fatal {self.name}: {e}")
        self.die()

    def _fire_soon(self, position_id: str, cause: str) -> None:
        seen = FireSeen(self.world.loop.time(), self.name, position_id, cause)
        magic = self.world.open_magic(position_id)
        # the trade this agent trails: its journal's fill (an account bound on two PCs has two with this tag)
        fill = self.journal.get_intent(intent_id(position_id, IntentKind.OPEN))
        for term in self.terminals.values():  # judged by the quotes this agent's terminal was shown
            for t in term.broker.trades.values():
                if t.magic == magic and t.open and (fill is None or fill.ticket in (None, t.ticket)):
                    shown = term.broker.shown_drawdown(term.name, t, seen.at, STALE_QUOTE_S)
                    if shown is not None:
                        seen.best, seen.price = shown
        self.world.fires.append(seen)
        self.world.on_fire(self, position_id, cause)
        self.executor.spawn(self.executor.fire(position_id, cause), f"fire-{position_id}")

    def _track(self, p: Position, b: Binding, intent: Intent) -> None:
        entry = p.entry_price if p.entry_price is not None else intent.price
        self.executor.spawn(self.monitor.track(p, b.name, entry), f"track-{p.id}")

    def _untrack(self, position_id: str) -> None:
        self.monitor.untrack(position_id)

    # -- crash points ---------------------------------------------------------------------------------------

    def on_call(self, what: str) -> str | None:
        if not self.alive:
            return "before"
        self.calls += 1
        if self.crash_in is None:
            return None
        self.crash_in -= 1
        if self.crash_in > 0:
            return None
        self.crash_in = None
        self.world.note(f"crash {self.name} {self.crash_mode} {what}")
        if self.crash_mode == "before":
            self.die()
            return "before"
        return "after"

    def die(self) -> None:
        """The process is gone: every task cancelled, every port dead, the journal file kept."""
        if not self.alive:
            return
        self.alive = False
        self.world.crashes += 1
        self.world.fault_counts.update(self.view.counts)
        for term in self.terminals.values():
            self.world.fault_counts.update(
                {f"terminal {k}": v for k, v in term.counts.items() if k != "fill"}
            )
        self.view.alive = False
        if self.view in self.world.cloud.views:
            self.world.cloud.views.remove(self.view)
        for term in self.terminals.values():
            term.alive = False
            if term in term.broker.terminals:
                term.broker.terminals.remove(term)
        for t in list(self.tasks):
            t.cancel()
        self.world.reaping.append(self.world.loop.create_task(self._reap(), context=contextvars.Context()))
        self.world.on_death(self)

    async def _reap(self) -> None:
        while pending := [t for t in self.tasks if not t.done()]:
            for t in pending:
                t.cancel()
            await asyncio.wait(pending)
        self.journal.close()

    # -- run --------------------------------------------------------------------------------------------------

    def start(self) -> None:
        token = CURRENT.set(self)
        try:
            self.world.cloud.views.append(self.view)
            self._spawn("cloud-events", self._cloud_events)
            for b in self.bindings:
                self._spawn(f"quotes-{b.name}", partial(self._quotes, b))
                self._spawn(
                    f"watch-{b.name}",
                    partial(self._every, WATCH_INTERVAL_S, partial(self.executor.watch_terminal, b)),
                )
            self._spawn("cadence", self._cadence)
            self._spawn("health", partial(self._every, HEALTH_INTERVAL_S, self._health))
            self._spawn(
                "reconcile", partial(self._every, RECONCILE_INTERVAL_S, self.executor.reconcile, False)
            )
            self.view.start(self.world.catch_up_every_s)
        finally:
            CURRENT.reset(token)

    def _spawn(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        async def supervised() -> None:
            while True:
                try:
                    await body()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # app.Agent restarts a failed task with backoff
                    self.world.note(f"task {name} of {self.name} failed: {type(e).__name__}: {e}")
                    self.world.task_failures.append(f"{self.name} {name}: {type(e).__name__}: {e}")
                    await asyncio.sleep(0.5)

        self.world.loop.create_task(supervised(), name=f"{self.name}:{name}")

    async def _every(self, interval: float, fn: Callable[[], Awaitable[object]], first: bool = True) -> None:
        if not first:
            await asyncio.sleep(interval)
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.world.task_failures.append(f"{self.name} periodic: {type(e).__name__}: {e}")
            await asyncio.sleep(interval)

    async def _cloud_events(self) -> None:
        async for event in self.view.events():
            self.executor.handle(event)

    async def _quotes(self, b: Binding) -> None:
        async for q in b.terminal.quotes():
            await self.monitor.on_tick(b.name, q)

    async def _cadence(self) -> None:
        loop = self.world.loop
        cadence = Cadence(
            CADENCE_S, clock=loop.time, sleep=asyncio.sleep, wall=lambda: EPOCH.timestamp() + loop.time()
        )
        async for _tick in cadence:
            await self.monitor.sweep()

    async def _health(self) -> None:
        for b in self.bindings:
            term = self.terminals[b.account_id]
            was = getattr(term, "_seen_connected", True)
            term._seen_connected = term.connected  # type: ignore[attr-defined]
            if term.connected and not was:
                self.executor.spawn(self.executor.reconcile(), f"reconcile-{b.name}")


class World:
    def __init__(
        self, seed: int, tmp: Path, agents: list[AgentSpec], *, unbound_accounts: tuple[str, ...] = ()
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.tmp = tmp
        self.loop = asyncio.get_running_loop()
        self.loop.set_task_factory(_task_factory)  # type: ignore[arg-type]
        self.trace: list[str] = []
        self.notices: list[Notice] = []
        self.logs: list[tuple[float, str, str, dict[str, Any]]] = []
        self.fires: list[FireSeen] = []
        self.task_failures: list[str] = []
        self.crashes = 0
        self.fatal: list[str] = []
        self.views: dict[str, CloudView] = {}  # incarnation name -> its cloud link
        self.fault_counts: Counter[str] = Counter()  # of dead incarnations (every one, after stop_all)
        #: the cloud link's periodic catch-up (None: only after a (re)subscribe)
        self.catch_up_every_s: float | None = 30.0
        self.stopping = False
        self.reaping: list[asyncio.Task[None]] = []
        self.restarts = 0
        self.cloud = SimCloud(self.rng, EPOCH, self.loop.time, self.trace)
        self.terminal_faults = TerminalFaults()
        self.terminal_up: dict[str, bool] = {}
        self.specs = {s.name: s for s in agents}
        accounts = sorted({a for s in agents for a in s.accounts} | set(unbound_accounts))
        self.brokers = {
            a: Broker(10 + i, self.rng, self.loop.time, EPOCH, self.trace) for i, a in enumerate(accounts)
        }
        self.bound = {a for s in agents for a in s.accounts}
        self.owner_of = {a: s.name for s in agents for a in s.accounts}
        self.journal_paths = {s.name: tmp / f"{s.name}-0.sqlite3" for s in agents}
        self.journals_used: dict[str, list[Path]] = {s.name: [self.journal_paths[s.name]] for s in agents}
        self.agents: dict[str, Incarnation] = {}
        self._lives: dict[str, int] = {s.name: 0 for s in agents}
        #: hooks the scheduler sets
        self.on_fire: Callable[[Incarnation, str, str], None] = lambda inc, pid, cause: None
        self.on_death: Callable[[Incarnation], None] = lambda inc: None

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.loop.time())

    @staticmethod
    def open_magic(position_id: str) -> int:
        return order_tag(intent_id(position_id, IntentKind.OPEN), MT4_MAGIC_BITS, 0).magic

    def note(self, line: str) -> None:
        self.trace.append(f"{self.loop.time():.3f} {line}")

    def start(self, name: str, *, lose_journal: bool = False) -> Incarnation:
        if lose_journal:  # a restored disk, a moved file: the agent starts with an empty journal
            n = len(self.journals_used[name])
            self.journal_paths[name] = self.tmp / f"{name}-{n}.sqlite3"
            self.journals_used[name].append(self.journal_paths[name])
            self.note(f"journal of {name} lost")
        self._lives[name] += 1
        inc = Incarnation(self, self.specs[name], self._lives[name], self.journal_paths[name])
        self.agents[name] = inc
        if self._lives[name] > 1:
            self.restarts += 1
        self.note(f"start {inc.name}")
        inc.start()
        return inc

    def set_terminal(self, name: str, connected: bool) -> None:
        self.terminal_up[name] = connected
        for inc in self.agents.values():
            for term in inc.terminals.values():
                if term.name == name:
                    term.connected = connected

    def journals(self, name: str) -> list[Journal]:
        """Fresh read-only views of every journal file the agent ever used (for the invariants)."""
        return [Journal(p) for p in self.journals_used[name] if p.exists()]

    async def stop_all(self) -> None:
        self.stopping = True
        for inc in list(self.agents.values()):
            if inc.alive:
                inc.die()
                self.crashes -= 1
        await asyncio.gather(*self.reaping)


def _task_factory(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
) -> asyncio.Task[Any]:
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
    ctx = kwargs.get("context")
    inc = ctx.get(CURRENT) if ctx is not None else CURRENT.get()
    if inc is not None:
        inc.tasks.add(task)
        task.add_done_callback(inc.tasks.discard)
    return task


def capture_logs(world: World) -> Callable[[], None]:
    """Route structlog to the world (warnings and errors kept, the rest dropped); returns the restorer."""
    old = structlog.get_config()

    def collect(logger: Any, method: str, event: dict[str, Any]) -> Any:
        if method in ("warning", "error", "critical", "exception"):
            msg = str(event.get("event", ""))
            world.logs.append(
                (
                    world.loop.time(),
                    "error" if method in ("critical", "exception") else method,
                    msg,
                    dict(event),
                )
            )
        raise structlog.DropEvent

    structlog.configure(processors=[collect], cache_logger_on_first_use=False)  # type: ignore[list-item]

    class _Stdlib(logging.Handler):  # the terminals' helpers log with the standard library
        def emit(self, record: logging.LogRecord) -> None:
            level = "error" if record.levelno >= logging.ERROR else "warning"
            msg = record.getMessage()
            world.logs.append((world.loop.time(), level, msg, {"event": msg}))

    pkg = logging.getLogger("hedge_agent")
    handler, propagate = _Stdlib(logging.WARNING), pkg.propagate
    pkg.addHandler(handler)
    pkg.propagate = False

    def restore() -> None:
        structlog.configure(**old)
        pkg.removeHandler(handler)
        pkg.propagate = propagate

    return restore


SYMBOLS = (Symbol.EURUSD, Symbol.USDJPY)
