"""What every part of the engine shares: ports, journal, bindings, clocks, per-position locks, the task set,
the latest records, counters and the trade sink. No decisions live here."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from hedge_agent.domain.intents import Intent
from hedge_agent.domain.models import Position
from hedge_agent.errors import FatalError

from .binding import Binding
from .clock import Clock, WallClock
from .journal import AsyncJournal, Journal
from .ports import CloudPort, TradeEvent, TradeKind, TradeSink
from .status_board import StatusBoard

log = structlog.get_logger(__name__)

MAX_REMEMBERED = 100_000  # record versions kept to drop stale events (bounded memory)


class NullTradeSink:
    def trade(self, event: TradeEvent) -> None:
        pass


@dataclass
class Timing:
    """Latency samples for the live view, the demo report and the benchmarks (engine clock seconds)."""

    frames: dict[str, float] = field(default_factory=dict)  # position id -> frame that asked for work
    frame_to_order: list[float] = field(default_factory=list)
    orders: dict[str, float] = field(default_factory=dict)  # position id -> its latest order handed over
    fired: dict[str, float] = field(default_factory=dict)  # trigger action id -> when its trail fired

    def order_sent(self, position_id: str, now: float) -> None:
        self.orders[position_id] = now
        for d in (self.orders, self.fired):
            while len(d) > 10_000:
                del d[next(iter(d))]
        frame = self.frames.pop(position_id, None)
        if frame is not None:
            self.frame_to_order.append(now - frame)
            del self.frame_to_order[:-10_000]  # bounded


@dataclass
class Counters:
    skipped_other_user: int = 0
    skipped_other_pc: int = 0
    stale_events: int = 0
    bad_records: int = 0
    orders_sent: int = 0
    fills: int = 0
    failures: int = 0
    fires: int = 0
    trigger_failures: int = 0
    claims_won: int = 0
    claims_lost: int = 0
    alarms: int = 0
    record_failures: int = 0  # a record whose handling raised (isolated: the others went on)


class Core:
    def __init__(
        self,
        *,
        cloud: CloudPort,
        journal: AsyncJournal,
        bindings: list[Binding],
        board: StatusBoard,
        clock: Clock,
        now: WallClock,
        sink: TradeSink,
        on_open: Callable[[Position, Binding, Intent], None],
        on_gone: Callable[[str], None],
        on_fatal: Callable[[FatalError], None],
    ) -> None:
        self.cloud = cloud
        self.journal = journal
        self.bindings = {b.account_id: b for b in bindings}
        self.board = board
        self.clock = clock
        self.now = now
        self.sink = sink
        self.on_open = on_open
        self.on_gone = on_gone
        self.on_fatal = on_fatal
        self.started_at = now()
        self.timing = Timing()
        self.counters = Counters()
        self.paused = False
        self.stopping = False
        self.positions: dict[str, Position] = {}  # owned positions, latest record
        self.latest: dict[str, tuple[str, str]] = {}  # record id -> (updatedAt, status) last handled
        self.action_driven: set[str] = set()  # positions whose current step an action asked for
        # positions whose answer did not land (backend down, a race on our own write): reconcile answers
        # them again even when the journal has nothing unreported (a second request for a done step)
        self.retry: set[str] = set()
        self._alarmed: set[tuple[str, str]] = set()
        # a lock lives while a task holds or awaits it; idle ones are collected
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def j(self) -> Journal:
        return self.journal.sync

    def lock(self, position_id: str) -> asyncio.Lock:
        lock = self._locks.get(position_id)
        if lock is None:
            lock = self._locks[position_id] = asyncio.Lock()
        return lock

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(self.guard(coro, name), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        # cancelled before it ever ran (a crash, a drain): close the coroutine, no "never awaited" warning
        task.add_done_callback(lambda t: coro.close() if t.cancelled() else None)

    async def guard(self, coro: Awaitable[None], name: str) -> None:
        """One record's failure never stops the others; a FatalError (the journal is gone) stops the agent."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except FatalError as e:
            log.critical("fatal", task=name, error=str(e))
            self.board.notice("error", "fatal", str(e))
            self.on_fatal(e)
        except Exception as e:
            self.counters.record_failures += 1
            log.exception("task failed", task=name)
            self.board.notice("error", "internal error", f"{name}: {type(e).__name__}: {e}")

    def remember(self, record_id: str, stamp: tuple[str, str]) -> None:
        self.latest[record_id] = stamp
        if len(self.latest) > MAX_REMEMBERED:  # oldest first; the journal still stops any late duplicate
            del self.latest[next(iter(self.latest))]

    def alarm(self, key: str, title: str, message: str) -> None:
        """A loud error (log, tray, status), once per (record, title) while the agent runs."""
        if (key, title) in self._alarmed:
            return
        self._alarmed.add((key, title))
        self.counters.alarms += 1
        self.board.notice("error", title, message)

    def trade(self, kind: TradeKind, intent: Intent, why: str, *, side: Any = None) -> None:
        try:
            self.sink.trade(
                TradeEvent(
                    kind, intent.terminal, intent.account_id, intent.position_id, intent.symbol,
                    side if side is not None else (intent.side if intent.kind == "open" else intent.side.opposite),
                    intent.volume, intent.price if kind in ("fill", "close") else None, intent.ticket, why,
                    self.now(),
                )
            )  # fmt: skip
        except Exception:  # a sink (a full disk under trades.log) never stops trading
            log.exception("trade sink failed", position=intent.position_id)
