"""The one place where the benches touch APIs that change between versions of the agent.

``bench.compare`` runs the same bench code against an older tree (the baseline) and the current one, so a
bench never calls a journal or executor method directly: it calls these functions, which find what the
running version offers. Everything else the benches use is a stable interface (processes, sockets, the
sandbox's GraphQL, ``Agent.run``/``request_stop``).

ADAPT AT MERGE: when a version renames one of these, add its spelling here (keep the old one while the
baseline still has it); ``tests/bench/test_bench_smoke.py`` runs every bench for a few iterations, so a
missing spelling shows up there first.
"""

from __future__ import annotations

import inspect
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import new_trail
from hedge_agent.engine import journal as journal_mod

Journal = journal_mod.Journal
Intent = journal_mod.Intent
IntentState = journal_mod.IntentState


def open_journal(path: Path, clock: Callable[[], float] | None = None) -> Any:
    return Journal(path) if clock is None else Journal(path, clock=clock)


def agent_journal(path: Path) -> Any:
    """The journal as the running agent has it: with checkpoints on their own thread where the version
    runs them there (``Journal.checkpoint_in_background``, started by ``AsyncJournal``)."""
    j = Journal(path)
    background = getattr(j, "checkpoint_in_background", None)
    if background is not None:
        background()
    return j


def mark_sent(journal: Any, intent_id: str) -> bool:
    """The journal's last write before the order leaves, where the version has one (False if not)."""
    fn = getattr(journal, "mark_sent", None)
    if fn is None:
        return False
    fn(intent_id)
    return True


def connection(journal: Any) -> sqlite3.Connection:
    """The journal's SQLite connection (query plans, statement traces, the bench's fill)."""
    for name in ("_db", "db", "conn", "_conn"):
        db = getattr(journal, name, None)
        if isinstance(db, sqlite3.Connection):
            return db
    raise AttributeError(f"{type(journal).__name__}: no sqlite3 connection found (adapt bench/shim.py)")


def _open_intent(pid: str, terminal: str, n: int) -> Any:
    return Intent(
        f"open:{pid}", "open", pid, "acc-1", terminal, Symbol.USDJPY, Side.BUY, 0.01, 1_000_000 + n, f"ha:{n}"
    )


def open_intent(pid: str, terminal: str, n: int) -> Any:
    return _open_intent(pid, terminal, n)


def archive(journal: Any) -> int:
    """Move finished work out of the hot tables where the version can (0 where it cannot)."""
    fn = getattr(journal, "archive_finished", None)
    return int(fn()) if fn is not None else 0


def archive_steps(journal: Any) -> tuple[int, float]:
    """As :func:`archive`, step by step as the agent runs it: (positions moved, the longest find + move of
    one chunk in ms: what an order may wait for meanwhile, at most)."""
    find = getattr(journal, "finished_positions", None)
    if find is None:
        return archive(journal), 0.0
    moved, longest = 0, 0.0
    while True:
        t0 = time.perf_counter()
        ids = find()
        if ids:
            journal.archive_positions(ids)
        longest = max(longest, time.perf_counter() - t0)
        moved += len(ids)
        if not ids:
            break
    return moved, longest * 1000


def write_ahead(journal: Any, pid: str, terminal: str, n: int, max_open: int | None) -> Any:
    """The hot write before every open: the draft stored as pending (or refused by the open cap)."""
    draft = _open_intent(pid, terminal, n)
    params = inspect.signature(journal.write_ahead).parameters
    if "max_open" in params and "refusal" in params:
        stored, _created = journal.write_ahead(draft, None, max_open)
        return stored
    stored, _created = journal.write_ahead(draft, max_open=max_open)  # ADAPT AT MERGE
    return stored


def record_fill(journal: Any, intent_id: str, ticket: str) -> None:
    """The order left, then filled (a version with ``mark_sent`` journals the leaving first)."""
    mark_sent(journal, intent_id)
    record_filled(journal, intent_id, ticket)


def record_filled(journal: Any, intent_id: str, ticket: str) -> None:
    journal.record_result(
        intent_id,
        IntentState.FILLED,
        ticket=ticket,
        price=150.0,
        fill_time="2026-01-01T00:00:00+00:00",
        code=0,
    )


def open_tickets(journal: Any) -> list[Any]:
    return list(journal.open_tickets())


def replay(journal: Any) -> int:
    """What the agent reads from the journal on start-up (reconcile): the rows it still has to act on."""
    n = 0
    for name in ("unreported_intents", "unreported_actions", "unsettled_fires", "open_tickets"):
        fn = getattr(journal, name, None)
        if fn is not None:
            n += len(fn())
    return n


def finished_trade(journal: Any, pid: str, hedge_pid: str, action_id: str, n: int) -> None:
    """One finished trade as the agent journals it: a trailed position opened and reported, its trail
    saved as it moved, fired with one trigger action claimed, that action executed (its hedge opened
    and reported), then both closed and reported."""
    j = journal
    for p, k in ((pid, 2 * n), (hedge_pid, 2 * n + 1)):
        write_ahead(j, p, "t1", k, None)
        record_fill(j, f"open:{p}", str(10_000_000 + k))
        j.mark_reported(f"open:{p}")
    state = new_trail(pid, Symbol.USDJPY, Side.BUY, 150_000, 50)
    j.save_trails([state])
    j.save_trails([state])  # a peak moved once per cadence period
    fire = j.add_fire(pid, "trail", (action_id,))
    for aid in fire.pending_ids if hasattr(fire, "pending_ids") else (action_id,):
        j.settle_claim(pid, aid)
    j.begin_action(action_id, hedge_pid, "ENTRY")
    j.decide_action(action_id, "EXECUTED", None)
    j.mark_action_reported(action_id)
    for p, k in ((pid, 2 * n), (hedge_pid, 2 * n + 1)):
        close = Intent(
            f"close:{p}:1", "close", p, "acc-1", "t1", Symbol.USDJPY, Side.SELL, 0.01, 2_000_000 + k,
            f"hc:{k}", ticket=str(10_000_000 + k),
        )  # fmt: skip
        j.add_intent(close)
        record_fill(j, close.intent_id, str(10_000_000 + k))
        j.mark_reported(close.intent_id)


@contextmanager
def fast_writes(journal: Any) -> Iterator[None]:
    """Filling a bench journal: no fsync per commit (the figures are measured with the journal's own)."""
    db = connection(journal)
    before = db.execute("PRAGMA synchronous").fetchone()[0]
    db.execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        db.execute(f"PRAGMA synchronous={int(before)}")


# -- the agent --------------------------------------------------------------------------------------------


def timing(agent: Any) -> Any:
    """The executor's latency samples: ``frame_to_order`` (seconds), ``orders`` and ``fired`` (position or
    action id -> monotonic time)."""
    ex = getattr(agent, "executor", None)
    t = getattr(ex, "timing", None) or getattr(agent, "timing", None)
    if t is None:
        raise AttributeError("no executor timing found (adapt bench/shim.py)")
    return t


def fired(agent: Any, position_id: str, first_trigger: str) -> bool:
    """The position's trail fired: its first trigger is timed as fired, or (a version that refuses a list
    over its cap claims none of it) the monitor's trail says fired."""
    if first_trigger in timing(agent).fired:
        return True
    state = trail_state(agent, position_id)
    return bool(getattr(state, "fired", False))


def trigger_failures(agent: Any) -> int:
    ex = getattr(agent, "executor", None)
    return int(getattr(getattr(ex, "counters", None), "trigger_failures", 0))


def trail_state(agent: Any, position_id: str) -> Any:
    """The monitor's live trail of a position (entry, width in points), None while not trailed."""
    return agent.monitor.state(position_id)


async def unsettled_claims(agent: Any) -> int:
    """Trigger claims journaled but not settled yet (read on the journal's own thread, in its order)."""
    aj = agent.parts.journal
    fn = getattr(aj.sync, "unsettled_claims", None)  # ADAPT AT MERGE: claims stored as rows

    def count() -> int:
        if fn is not None:
            return len(fn())
        return sum(len(f.pending_ids) for f in aj.sync.unsettled_fires())

    return int(await aj.call(count))


# -- the MT4 bridge's handshake (protocol v1: the token in the hello; v2: challenge-response) -------------


async def ea_handshake(ws: Any, token: str, *, login: int = 5_000_001, server: str = "bench") -> None:
    """Play the EA's side of the bridge handshake on ``ws`` (a websockets client connection) up to the
    welcome, in whichever protocol version this tree's codec speaks.

    ADAPT AT MERGE: ``bench_bridge.child_canned`` should call this instead of its inline handshake, so the
    bridge bench runs against both a v1 baseline and the v2 bridge."""
    import json as _json

    from hedge_agent.terminals.mt4 import codec as typed_codec

    codec: Any = typed_codec  # either protocol version's codec: typed dynamically on purpose
    auth_cls = getattr(codec, "Auth", None)
    if auth_cls is None:  # v1: the token travels in the hello
        hello = codec.Hello(
            v=1, token=token, build=1420, login=login, server=server, ea_version="1", instance="c"
        )
        await ws.send(codec.encode(hello))
    else:  # v2: prove the token, never send it
        nonce = codec.new_nonce()
        await ws.send(codec.encode(codec.Hello(v=codec.PROTOCOL_VERSION, nonce=nonce)))
        challenge = _json.loads(await ws.recv())
        ea_proof = codec.proof(token, codec.EA_ROLE, nonce, challenge["nonce"])
        auth = auth_cls(proof=ea_proof, build=1420, login=login, server=server, ea_version="1", instance="c")
        await ws.send(codec.encode(auth))
    await ws.recv()  # the welcome
