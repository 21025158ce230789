"""The engine: cloud records in, terminal orders and cloud reports out (design §1-§3).

Invariant: every owned intent ends in exactly one terminal order or one recorded failure. How:

* one intent per position open (``open:<id>``) and per close attempt (``close:<id>:<n>``), whichever path
  asks for it (the Position going OPENING/CLOSING, or an ENTRY/CLOSE action): both paths meet in the journal;
* what to do is decided by the model (``domain.decide``) from the record's status and the journal, never by
  local if-chains; a step already done is answered with its known result;
* all work on one position runs under that position's lock, in arrival order;
* write ahead: the intent is journaled before the order leaves, the result after, the report last;
* an unknown outcome is looked up by its tag (``OrderPolicy``), never blindly retried.

The parts: :mod:`.intake` (events), :mod:`.positions` (the decide loop), :mod:`.orders`, :mod:`.reports`,
:mod:`.actions`, :mod:`.triggers`, :mod:`.reconcile`. This class wires them and is what ``app.py`` and the
simulator drive (see the construction notes in the package's engine API document).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hedge_agent.domain.intents import Intent
from hedge_agent.domain.models import Position
from hedge_agent.errors import FatalError

from .actions import ActionFlow
from .binding import Binding
from .clock import Clock, WallClock, loop_clock, utc_now
from .context import Core, Counters, NullTradeSink, Timing
from .events import CloudEvent
from .intake import Intake
from .journal import AsyncJournal
from .orders import OrderPolicy
from .ports import CloudPort, TradeSink
from .positions import PositionFlow
from .reconcile import Reconciler
from .reports import Reporter
from .status_board import StatusBoard
from .triggers import Triggers


def _raise(e: FatalError) -> None:
    raise e


class Engine:
    def __init__(
        self,
        *,
        cloud: CloudPort,
        journal: AsyncJournal,
        bindings: list[Binding],
        board: StatusBoard,
        on_open: Callable[[Position, Binding, Intent], None] = lambda p, b, i: None,
        on_gone: Callable[[str], None] = lambda pid: None,
        on_fatal: Callable[[FatalError], None] = _raise,
        clock: Clock = loop_clock,
        now: WallClock = utc_now,
        sink: TradeSink | None = None,
        policy: OrderPolicy | None = None,
    ) -> None:
        self.core = core = Core(
            cloud=cloud, journal=journal, bindings=bindings, board=board, clock=clock, now=now,
            sink=sink or NullTradeSink(), on_open=on_open, on_gone=on_gone, on_fatal=on_fatal,
        )  # fmt: skip
        self.orders = policy or OrderPolicy(core)
        self.orders.core = core
        self.reports = Reporter(core)
        self.triggers = Triggers(core)
        self.flow = PositionFlow(core, self.orders, self.reports, self.triggers)
        self.actions = ActionFlow(core, self.flow, self.reports)
        self.reconciler = Reconciler(core, self.flow, self.actions, self.triggers)
        self.intake = Intake(core, self.flow, self.actions, self.reconcile)

    # -- what the app, the tray and the simulator use -------------------------------------------------------

    @property
    def cloud(self) -> CloudPort:
        return self.core.cloud

    @property
    def board(self) -> StatusBoard:
        return self.core.board

    @property
    def bindings(self) -> dict[str, Binding]:
        return self.core.bindings

    @property
    def positions(self) -> dict[str, Position]:
        return self.core.positions

    @property
    def counters(self) -> Counters:
        return self.core.counters

    @property
    def timing(self) -> Timing:
        return self.core.timing

    @property
    def paused(self) -> bool:
        return self.core.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self.core.paused = value

    @property
    def unknown_give_up_s(self) -> float:
        return self.orders.give_up_s

    @unknown_give_up_s.setter
    def unknown_give_up_s(self, value: float) -> None:
        self.orders.give_up_s = value

    def handle(self, event: CloudEvent) -> None:
        """Called for every cloud event, in order; never blocks (work runs in tasks)."""
        self.intake.handle(event)

    async def reconcile(self) -> None:
        """Journal x terminal x cloud, now (safe any time). A FatalError goes to ``on_fatal``."""
        await self.core.guard(self.reconciler.reconcile(), "reconcile")

    async def watch_terminal(self, b: Binding) -> None:
        await self.core.guard(self.reconciler.watch_terminal(b), f"watch-{b.name}")

    async def fire(self, position_id: str, cause: str) -> None:
        await self.triggers.fire(position_id, cause)

    def spawn(self, coro: object, name: str) -> None:
        self.core.spawn(coro, name)  # type: ignore[arg-type]

    @property
    def tasks(self) -> set[asyncio.Task[None]]:
        return self.core.tasks

    async def drain(self, grace_s: float) -> bool:
        """Stop taking work and wait for in-flight tasks (they stay journaled if cut short)."""
        self.core.stopping = True
        pending = [t for t in self.core.tasks if not t.done()]
        if not pending:
            return True
        _done, still = await asyncio.wait(pending, timeout=grace_s)
        for t in still:
            t.cancel()
        return not still


Executor = Engine  # the name app.py and older callers use
