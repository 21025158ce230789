"""The trailing monitor: the pure trail book driven by every tick and by the cadence (design §4).

One :class:`TrailBook` per terminal, because two terminals quote the same symbol differently. Ticks are
evaluated as they arrive; the cadence sweeps every book (so staleness sees the clock, and nothing waits
for the next tick). A fire is one journal transaction with every changed trail state (its latch
included) and its pending trigger claims, written before the claims leave; other changed states are
written once per cadence period (a crash loses at most one period of peak movement, never a fire).

A new ``trailWidth`` on a tracked position takes effect (``domain.trailing.retune``), and is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import structlog

from hedge_agent.domain.models import Position, trigger_action_ids
from hedge_agent.domain.symbols import SymbolSpec, SymbolTable
from hedge_agent.domain.trail_book import TrailBook
from hedge_agent.domain.trailing import Fire, Quote, TrailState, new_trail, retune
from hedge_agent.errors import RecordError
from hedge_agent.terminals.base import TerminalQuote

from .clock import Clock, loop_clock
from .journal import AsyncJournal
from .triggers import MAX_TRIGGER_IDS

log = structlog.get_logger(__name__)


@dataclass
class _Book:
    symbols: SymbolTable
    book: TrailBook
    specs: dict[str, SymbolSpec] = field(default_factory=dict)


class TrailMonitor:
    def __init__(
        self,
        journal: AsyncJournal,
        on_fire: Callable[[str, str], None],
        *,
        stale_after_s: float,
        clock: Clock = loop_clock,
    ) -> None:
        self.journal = journal
        self.on_fire = on_fire  # must not block: the tick loop calls it (the fire is journaled already)
        self.stale_after = stale_after_s
        self.clock = clock
        self._books: dict[str, _Book] = {}  # terminal name -> its book
        self._where: dict[str, str] = {}  # position id -> terminal name
        self._triggers: dict[str, tuple[str, ...]] = {}  # position id -> its trigger action ids
        self._newest: dict[str, datetime] = {}  # position id -> updatedAt of the newest version applied
        # position id -> the track call reading its trail from the journal; untrack drops it, so a call
        # that was reading when the position closed never starts trailing it again
        self._loading: dict[str, object] = {}
        self.fired = 0

    def add_terminal(self, name: str, symbols: SymbolTable) -> None:
        self._books[name] = _Book(symbols, TrailBook(self.stale_after))

    @property
    def trailing(self) -> int:
        return sum(1 for b in self._books.values() for s in b.book.states() if not s.fired)

    def state(self, position_id: str) -> TrailState | None:
        name = self._where.get(position_id)
        return None if name is None else self._books[name].book.get(position_id)

    def states(self) -> list[TrailState]:
        return [s for b in self._books.values() for s in b.book.states()]

    async def track(self, p: Position, terminal: str, entry_price: float | None) -> None:
        """Start trailing an OPEN position (resuming its persisted state, if any), or apply an edit of its
        trailWidth / trigger list to the trail it has. Callers hand over whatever version they hold (the
        intake the newest frame, a flow the record it started with): a version older than one already
        applied changes nothing, so a stale record never undoes a trail edit."""
        if self._older(p):
            log.debug("older record version; trail unchanged", position=p.id, trail_width=p.trail_width)
            return
        if p.updated_at is not None:
            self._newest[p.id] = p.updated_at
        try:
            ids = trigger_action_ids(p)
        except RecordError:
            ids = ()  # said by the engine when it took the record on
        # over the cap: bad input, said by the engine (Triggers.trigger_ids); nothing of it is claimed
        self._triggers[p.id] = ids if len(ids) <= MAX_TRIGGER_IDS else ()
        if p.id in self._where:
            await self._edit(p)
            return
        if not p.trailed or entry_price is None:
            return
        b = self._books[terminal]
        spec = b.symbols.spec(p.symbol)
        token = self._loading[p.id] = object()
        try:
            persisted = await self.journal.call(self.journal.sync.load_trail, p.id)
        finally:
            untracked = self._loading.get(p.id) is not token
            if not untracked:
                del self._loading[p.id]
        if untracked:  # closed (or its trail stopped) while we read, or a newer call reads: not ours
            return
        if self._older(p):
            return  # a newer version came while we read the journal: its own call applies it
        if p.id in self._where:  # another call tracked this version meanwhile
            await self._edit(p)
            return
        width = spec.pips_to_points(Decimal(str(p.trail_width)))
        state: TrailState | None
        if persisted is None:
            if width <= 0:
                log.error(
                    "trail width below one point; not trailed", position=p.id, trail_width=p.trail_width
                )
                return
            state = new_trail(p.id, p.symbol, p.side, spec.to_points(entry_price), width)
        else:  # resumed; its width may have been edited while this agent was not running
            state = retune(persisted, max(width, 0))
            if state is not persisted:
                log.info("trail width changed", position=p.id, width=width, was=persisted.width)
            if state is None:
                await self.journal.call(self.journal.sync.delete_trail, p.id)
                return
        b.book.add(state, since=self.clock())
        self._where[p.id] = terminal
        if persisted is None or state is not persisted:
            await self.journal.call(self.journal.sync.save_trails, [state])
        log.info("trailing", position=p.id, terminal=terminal, state=state.to_json())

    def _older(self, p: Position) -> bool:
        newest = self._newest.get(p.id)
        return newest is not None and p.updated_at is not None and p.updated_at < newest

    async def _edit(self, p: Position) -> None:
        name = self._where[p.id]
        b = self._books[name]
        state = b.book.get(p.id)
        if state is None:
            return
        width = b.symbols.spec(p.symbol).pips_to_points(Decimal(str(p.trail_width))) if p.trailed else 0
        new = retune(state, max(width, 0))
        if new is state:
            return
        if new is None:
            self.untrack(p.id)
            await self.journal.call(self.journal.sync.delete_trail, p.id)
            log.info("trailing stopped: trailWidth set to 0", position=p.id)
            return
        b.book.replace(new)
        await self.journal.call(self.journal.sync.save_trails, [new])
        log.info("trail width changed", position=p.id, width=new.width, was=state.width, armed=new.armed,
                 peak=new.peak, stop=new.stop)  # fmt: skip

    def untrack(self, position_id: str) -> None:
        self._loading.pop(position_id, None)
        self._newest.pop(position_id, None)
        name = self._where.pop(position_id, None)
        if name is not None:
            self._books[name].book.remove(position_id)

    def to_quote(self, terminal: str, q: TerminalQuote) -> Quote:
        spec = self._books[terminal].symbols.spec(q.symbol)
        return Quote(q.symbol, spec.to_points(q.bid), spec.to_points(q.ask), q.time, q.tradeable)

    async def on_tick(self, terminal: str, q: TerminalQuote) -> None:
        b = self._books.get(terminal)
        if b is None:
            return
        fires = b.book.on_quote(self.to_quote(terminal, q), self.clock())
        if fires:  # peaks moved by plain ticks are written with the next sweep (at most one period later)
            await self._settle(fires)

    async def sweep(self) -> None:
        now = self.clock()
        fires: list[Fire] = []
        for b in self._books.values():
            fires.extend(b.book.sweep(now))
        await self._settle(fires)

    async def _settle(self, fires: list[Fire]) -> None:
        """Persist every changed state; each fire with its latch and its claims in one transaction, then
        hand it on (the claims leave after the fire is durable)."""
        changed = [s for b in self._books.values() for s in b.book.take_changed()]
        j = self.journal.sync
        if not fires:
            if changed:
                await self.journal.call(j.save_trails, changed)
            return
        for n, fire in enumerate(fires):
            trails = changed if n == 0 else None
            ids = self._triggers.get(fire.position_id, ())
            await self.journal.call(j.add_fire, fire.position_id, "trail", ids, trails)
        for fire in fires:
            self.fired += 1
            log.info(
                "trail fired", position=fire.position_id, price=fire.price, stop=fire.stop, peak=fire.peak
            )
            self.on_fire(fire.position_id, "trail")
