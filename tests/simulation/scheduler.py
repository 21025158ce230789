"""The seeded scheduler: one seed => one world, one sequence of admin edits, faults and crashes, one run.

``run_seed(seed)`` builds the world on a virtual-time loop, plays a chaos phase (random admin edits of
every kind, broker events, cloud and terminal faults, crashes at random port calls or instants followed
by restarts from the journal, now and then from a lost journal), then a calm phase (faults off, links up,
every agent running, prices frozen) long enough for every retry, lookup, give-up and reconcile to run,
and checks the invariants. The ``Admin`` helpers are what the directed scenario tests script with.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hedge_agent.domain.enums import ActionStatus, ActionType, ExecutionType, PositionStatus, Symbol
from hedge_agent.domain.models import Action, Position

from . import vloop
from .cloud_model import CloudFaults
from .invariants import Violation, check
from .terminal_model import TerminalFaults
from .world import OTHER_USER, SYMBOLS, USER, AgentSpec, Incarnation, World, capture_logs

DOUBLE_BOUND_SHARE = 0.05  # seeds where one account is bound on two PCs
QUIET_S = 35.0  # a quiet world stays quiet this long before the check (> one periodic catch-up, 30 s)
SETTLE_S = 120.0  # > unknown give-up (60 s) + a late fill (<= 90 s after its order) - the 15 s restore phase
S = PositionStatus
A = ActionStatus


class Admin:
    """What an admin UI does: unconditional writes, any order, any time."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.n = 0
        self.trail_edits: dict[str, list[tuple[float, float]]] = {}

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def position(
        self,
        account: str,
        *,
        symbol: Symbol = Symbol.EURUSD,
        execution: ExecutionType = ExecutionType.ENTRY,
        volume: float = 0.1,
        trail: float = 0.0,
        triggers: str | None = None,
        user: str = USER,
        status: S = S.PENDING,
    ) -> str:
        pid = self._id("pos")
        self.world.cloud.admin_create(
            Position(
                id=pid,
                user_id=user,
                account_id=account,
                execution_type=execution,
                status=status,
                symbol=symbol,
                volume=volume,
                trail_width=trail,
                trigger_action_ids=triggers,
            )
        )
        self.trail_edits[pid] = [(self.world.loop.time(), trail)]
        return pid

    def action(
        self,
        position_id: str,
        kind: ActionType,
        *,
        status: A = A.PENDING,
        user: str = USER,
        account: str | None = None,
    ) -> str:
        aid = self._id("act")
        p = self.world.cloud.positions.get(position_id)
        acc = account or (p.account_id if p else "acc-1")
        self.world.cloud.admin_create(
            Action(id=aid, user_id=user, account_id=acc, position_id=position_id, type=kind, status=status)
        )
        return aid

    def set(self, record_id: str, **changes: Any) -> None:
        if "trail_width" in changes:
            self.trail_edits.setdefault(record_id, []).append(
                (self.world.loop.time(), changes["trail_width"])
            )
        self.world.cloud.admin_update(record_id, **changes)

    def status(self, record_id: str) -> str | None:
        r = self.world.cloud.positions.get(record_id) or self.world.cloud.actions.get(record_id)
        return None if r is None else r.status.value

    def delete(self, record_id: str) -> None:
        self.world.cloud.admin_delete(record_id)


@dataclass
class Stats:
    seed: int
    edits: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    restarts: int = 0
    orders: int = 0
    fires: int = 0
    virtual_s: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    trace_digest: str = ""
    task_failures: list[str] = field(default_factory=list)


@dataclass
class Profile:
    """Fault intensity of one seed (itself drawn from the seed)."""

    cloud: CloudFaults
    terminal: TerminalFaults
    crash_rate: float  # chance that an op is a crash
    lose_journal: float  # chance that a restart starts from an empty journal
    two_agents: bool
    chaos_s: float

    @staticmethod
    def draw(rng: random.Random) -> Profile:
        heat = rng.choice((0.0, 0.5, 1.0, 1.0, 2.0))
        cloud = CloudFaults(
            drop=0.05 * heat, duplicate=0.1 * heat, max_delay=rng.choice((0.01, 0.2, 2.0)),
            mutation_fails=0.05 * heat, mutation_times_out=0.05 * heat, read_fails=0.03 * heat,
        )  # fmt: skip
        terminal = TerminalFaults(
            reject_retryable=0.08 * heat, reject_permanent=0.03 * heat, unknown_not_placed=0.04 * heat,
            unknown_placed=0.04 * heat, unknown_late=0.03 * heat, raises=0.03 * heat, lookup_fails=0.05 * heat,
        )  # fmt: skip
        return Profile(cloud, terminal, 0.04 * heat, 0.1, rng.random() < 0.5, rng.choice((40.0, 80.0)))


TRIGGER_SHAPES = ("none", "empty", "brackets", "valid", "valid", "valid", "malformed", "object", "numbers",
                  "blank-id", "foreign", "missing", "cross-pc", "duplicates")  # fmt: skip


class Chaos:
    def __init__(self, world: World, rng: random.Random, profile: Profile, stats: Stats) -> None:
        self.world, self.rng, self.profile, self.stats = world, rng, profile, stats
        self.admin = Admin(world)
        self.calm = False
        world.on_death = self._on_death

    # -- crashes and restarts ---------------------------------------------------------------------------

    def _on_death(self, inc: Incarnation) -> None:
        delay = self.rng.uniform(0.2, 12.0)
        lose = self.rng.random() < self.profile.lose_journal
        loop = self.world.loop
        loop.call_later(delay, self._restart, inc.spec.name, lose, context=contextvars.Context())

    def _restart(self, name: str, lose: bool) -> None:
        if self.world.stopping:
            return
        current = self.world.agents.get(name)
        if current is not None and current.alive:
            return
        self.world.start(name, lose_journal=lose and not self.calm)

    # -- ops -------------------------------------------------------------------------------------------------

    def positions(self, *statuses: S) -> list[Position]:
        return [
            p
            for p in self.world.cloud.positions.values()
            if p.user_id == USER and (not statuses or p.status in statuses)
        ]

    def actions(self, *statuses: A) -> list[Action]:
        return [
            a
            for a in self.world.cloud.actions.values()
            if a.user_id == USER and (not statuses or a.status in statuses)
        ]

    def pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items) if items else None

    def triggers(self, exclude: str | None = None) -> str | None:
        shape = self.rng.choice(TRIGGER_SHAPES)
        self.stats.edits[f"triggers:{shape}"] += 1
        own = [a.id for a in self.actions(A.PENDING) if a.position_id != exclude]
        if shape == "none":
            return None
        if shape == "empty":
            return ""
        if shape == "brackets":
            return "[]"
        if shape == "malformed":
            return '["act-1"'
        if shape == "object":
            return '{"id": "act-1"}'
        if shape == "numbers":
            return "[1, 2]"
        if shape == "blank-id":
            return '[""]'
        if shape == "foreign":
            foreign = [a.id for a in self.world.cloud.actions.values() if a.user_id == OTHER_USER]
            return json_list(foreign[:1] + own[:1])
        if shape == "missing":
            return json_list(["act-missing", *own[:1]])
        if shape == "cross-pc":
            other = [a for a in own if self.world.owner_of.get(self.world.cloud.actions[a].account_id) == "B"]
            return json_list(other[:2] or own[:1])
        if shape == "duplicates":
            return json_list(own[:1] * 3)
        return json_list(self.rng.sample(own, min(len(own), self.rng.randint(1, 3))))

    def op(self) -> None:
        r, w, adm = self.rng, self.world, self.admin
        accounts = sorted(w.bound)
        choice = r.choices(
            [
                "create",
                "open",
                "entry-now",
                "cancel",
                "reopen",
                "close",
                "double-close",
                "unclose",
                "late-close",
                "trail",
                "triggers",
                "delete",
                "close-action",
                "foreign",
                "stop-out",
                "manual-close",
                "partial",
                "link-drop",
                "link-up",
                "terminal-down",
                "terminal-up",
                "crash-call",
                "crash-now",
            ],
            [8, 8, 2, 3, 3, 6, 2, 2, 1, 5, 3, 1, 4, 1, 2, 1, 1, 2, 2, 2, 2, 0, 0],
        )[0]
        if r.random() < self.profile.crash_rate:
            choice = r.choice(("crash-call", "crash-call", "crash-now"))
        if choice == "create":
            acc = r.choice([*accounts, *accounts, "acc-9"])
            pid = adm.position(acc, symbol=r.choice(SYMBOLS), execution=r.choice(list(ExecutionType)),
                               volume=r.choice((0.1, 0.2, 1.0)), trail=r.choice((0, 0, 2, 5, 10, 20)),
                               triggers=self.triggers())  # fmt: skip
            if r.random() < 0.6:
                adm.action(pid, ActionType.ENTRY)
        elif choice == "open":
            p = self.pick(self.positions(S.PENDING))
            if p:
                adm.set(p.id, status=S.OPENING)
        elif choice == "entry-now":
            a = self.pick([a for a in self.actions(A.PENDING) if a.type is ActionType.ENTRY])
            if a:
                adm.set(a.id, status=A.EXECUTING)
        elif choice == "cancel":
            p = self.pick(self.positions(S.OPENING, S.PENDING))
            if p:
                adm.set(p.id, status=S.PENDING if p.status is S.OPENING else S.CANCELED)
        elif choice == "reopen":
            p = self.pick(
                [p for p in self.positions(S.PENDING) if w.cloud.history.get(p.id, [])[-2:-1] == ["OPENING"]]
            )
            if p:
                adm.set(p.id, status=S.OPENING)
        elif choice == "close":
            p = self.pick(self.positions(S.OPEN))
            if p:
                adm.set(p.id, status=S.CLOSING)
        elif choice == "double-close":
            p = self.pick(self.positions(S.CLOSING))
            if p:
                adm.set(p.id, status=S.CLOSING)
        elif choice == "unclose":
            p = self.pick(self.positions(S.CLOSING))
            if p:
                adm.set(p.id, status=S.OPEN)
        elif choice == "late-close":
            p = self.pick(self.positions(S.CLOSED))
            if p:
                adm.set(p.id, status=S.CLOSING)
        elif choice == "trail":
            p = self.pick(self.positions(S.OPEN, S.OPEN, S.PENDING, S.OPENING))
            if p:
                adm.set(p.id, trail_width=r.choice((0, 2, 5, 10, 50)))
        elif choice == "triggers":
            p = self.pick(self.positions(S.OPEN, S.PENDING, S.OPENING))
            if p:
                adm.set(p.id, trigger_action_ids=self.triggers(p.id))
        elif choice == "delete":
            rec = self.pick([*self.positions(S.PENDING, S.CANCELED, S.CLOSED), *self.actions(A.PENDING)])
            if rec:
                adm.delete(rec.id)
        elif choice == "close-action":
            p = self.pick(self.positions(S.OPEN, S.PENDING, S.OPENING))
            if p:
                adm.action(p.id, ActionType.CLOSE)
        elif choice == "foreign":
            pid = adm.position(r.choice(accounts), user=OTHER_USER, status=r.choice((S.PENDING, S.OPENING)))
            adm.action(pid, r.choice(list(ActionType)), user=OTHER_USER)
        elif choice in ("stop-out", "manual-close", "partial"):
            broker = w.brokers[r.choice(accounts)]
            t = self.pick(broker.open_trades())
            if t:
                self.stats.faults[choice] += 1
                if choice == "partial":
                    broker.partial_close(t.ticket)
                else:
                    broker.execute_close(
                        t.ticket, t.volume, None, "stop out" if choice == "stop-out" else "closed manually"
                    )
            return
        elif choice in ("link-drop", "link-up"):
            inc = self.pick([i for i in w.agents.values() if i.alive])
            if inc:
                self.stats.faults[choice] += 1
                inc.view.drop_link() if choice == "link-drop" else inc.view.restore_link()
            return
        elif choice in ("terminal-down", "terminal-up"):
            name = self.pick(sorted(f"{s.name}-{a}" for s in w.specs.values() for a in s.accounts))
            if name:
                self.stats.faults[choice] += 1
                w.set_terminal(name, choice == "terminal-up")
            return
        elif choice == "crash-call":
            inc = self.pick([i for i in w.agents.values() if i.alive])
            if inc:
                inc.crash_in, inc.crash_mode = r.randint(1, 40), r.choice(("before", "after"))
            return
        elif choice == "crash-now":
            inc = self.pick([i for i in w.agents.values() if i.alive])
            if inc:
                w.note(f"crash {inc.name} now")
                inc.die()
            return
        self.stats.edits[choice] += 1

    async def prices(self) -> None:
        while not self.calm:
            await asyncio.sleep(0.25)
            for broker in self.world.brokers.values():
                for sym in SYMBOLS:
                    broker.step(sym, self.rng.randint(-30, 30))

    async def run(self) -> None:
        w, r, prof = self.world, self.rng, self.profile
        w.cloud.faults = prof.cloud
        w.terminal_faults = prof.terminal
        for name in sorted(w.specs):
            w.start(name)
        prices = asyncio.get_running_loop().create_task(self.prices())
        end = w.loop.time() + prof.chaos_s
        while w.loop.time() < end:
            await asyncio.sleep(r.expovariate(2.0))
            self.op()
        # calm: faults off, links and terminals up, every agent running
        self.calm = True
        w.note("calm")
        w.cloud.faults = prof.cloud.calm()
        w.terminal_faults = prof.terminal.calm()
        for inc in w.agents.values():
            inc.crash_in = None
        await prices
        for name in sorted({f"{s.name}-{a}" for s in w.specs.values() for a in s.accounts}):
            w.set_terminal(name, True)
        for _ in range(15):  # restarts scheduled before the calm land within 12 s
            for inc in w.agents.values():
                inc.view.restore_link()
            await asyncio.sleep(1.0)
        await settle(w)


@dataclass
class Script:
    """A directed scenario: the same world, with a scripted schedule instead of the chaos."""

    world: World
    admin: Admin

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def until(self, cond: Callable[[], bool], timeout: float = 120.0) -> float:
        """Wait (virtual time) until ``cond()``; returns how long it took. Fails the test on timeout."""
        start = self.world.loop.time()
        while not cond():
            if self.world.loop.time() - start > timeout:
                raise AssertionError(f"condition not met within {timeout:g} s")
            await asyncio.sleep(0.05)
        return self.world.loop.time() - start

    def crash(self, name: str) -> None:
        self.world.note(f"crash {name} (scripted)")
        self.world.agents[name].die()

    def restart(self, name: str, *, lose_journal: bool = False) -> Incarnation:
        return self.world.start(name, lose_journal=lose_journal)

    def move(self, account: str, points: int, *, symbol: Symbol = Symbol.EURUSD) -> None:
        self.world.brokers[account].step(symbol, points)


@dataclass
class Outcome:
    world: World
    violations: list[Violation]


def run_script(
    body: Callable[[Script], Any],
    *,
    agents: list[AgentSpec] | None = None,
    seed: int = 0,
    settle_s: float = SETTLE_S,
    catch_up_every_s: float | None = 30.0,
) -> Outcome:
    """Run ``await body(script)`` in a calm world (no random faults), let it settle, check the invariants."""
    result: list[Outcome] = []

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="hedge-sim-") as tmp:
            world = World(
                seed, Path(tmp), agents or [AgentSpec("A", ("acc-1",))], unbound_accounts=("acc-9",)
            )
            world.catch_up_every_s = catch_up_every_s
            world.cloud.faults = CloudFaults(max_delay=0.01)
            restore = capture_logs(world)
            try:
                for name in sorted(world.specs):
                    world.start(name)
                admin = Admin(world)
                await asyncio.sleep(0.5)
                await body(Script(world, admin))
                for inc in world.agents.values():
                    inc.view.restore_link()
                await asyncio.sleep(settle_s)
                result.append(Outcome(world, check(world, admin.trail_edits)))
                await world.stop_all()
            finally:
                restore()

    vloop.run(main())
    return result[0]


def busy(world: World) -> str | None:
    """What is still in flight (None: the world is quiet)."""
    for p in world.cloud.positions.values():
        if p.user_id == USER and p.account_id in world.bound and p.status in (S.OPENING, S.CLOSING):
            return f"{p.id} {p.status.value}"
    for a in world.cloud.actions.values():
        if a.user_id == USER and a.account_id in world.bound and a.status is A.EXECUTING:
            return f"{a.id} EXECUTING"
    if any(b.late_orders for b in world.brokers.values()):
        return "late orders at a broker"
    for inc in world.agents.values():
        if not inc.alive:
            return f"{inc.name} down"
        if inc.journal.unreported_intents() or inc.journal.unsettled_fires():
            return f"{inc.name} journal has unsettled work"
    return None


async def settle(world: World, max_s: float = SETTLE_S, quiet_s: float = QUIET_S) -> None:
    """Let the agents settle: until the world has been quiet for ``quiet_s`` (a reconcile period and a
    periodic catch-up fit in it) or ``max_s`` passed (something is stuck: the invariants will say what)."""
    start = quiet_since = world.loop.time()
    while world.loop.time() - start < max_s:
        await asyncio.sleep(1.0)
        if busy(world) is not None:
            quiet_since = world.loop.time()
        elif world.loop.time() - quiet_since >= quiet_s:
            return


def json_list(ids: list[str]) -> str:
    import json

    return json.dumps(ids)


def run_seed(seed: int, *, chaos: Callable[[Chaos], None] | None = None) -> Stats:
    stats = Stats(seed)

    async def main() -> None:
        with tempfile.TemporaryDirectory(prefix="hedge-sim-") as tmp:
            rng = random.Random(seed)
            profile = Profile.draw(rng)
            specs = [AgentSpec("A", ("acc-1",))]
            if profile.two_agents:
                specs.append(AgentSpec("B", ("acc-2",)))
            if random.Random(seed * 7919 + 1).random() < DOUBLE_BOUND_SHARE:
                # a real misconfiguration: acc-1 bound on a second PC too (its own RNG: other seeds unchanged)
                specs.append(AgentSpec("A2", ("acc-1",)))
                stats.edits["double-bound"] += 1
            world = World(seed, Path(tmp), specs, unbound_accounts=("acc-9",))
            world.rng = rng
            world.cloud.rng = rng
            for b in world.brokers.values():
                b.rng = rng
            restore = capture_logs(world)
            try:
                c = Chaos(world, rng, profile, stats)
                if chaos is not None:
                    chaos(c)
                await c.run()
                stats.violations = check(world, c.admin.trail_edits)
                await world.stop_all()
            finally:
                restore()
            stats.crashes, stats.restarts = world.crashes, world.restarts
            stats.orders = sum(len(b.orders) for b in world.brokers.values())
            stats.fires = len(world.fires)
            stats.virtual_s = world.loop.time()
            stats.task_failures = world.task_failures
            for k, v in world.fault_counts.items():
                if k != "periodic_catch_ups":
                    stats.faults[k] += v
            import hashlib

            stats.trace_digest = hashlib.sha256("\n".join(world.trace).encode()).hexdigest()[:16]
            stats_trace.clear()
            worlds.clear()
            stats_trace[seed] = world.trace
            worlds[seed] = world

    vloop.run(main())
    return stats


stats_trace: dict[int, list[str]] = {}
worlds: dict[int, World] = {}
