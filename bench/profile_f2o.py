"""Where ``frame_to_order`` goes: the real agent on the sandbox (own process), each stage timed.

A profiling tool, not a bench: it wraps internals of the engine (``CloudClient._on_frame``,
``Intake.handle``, ``Intake._position``, ``AsyncJournal.call``/``quick`` for ``write_ahead`` and
``mark_sent``, ``Timing.order_sent``; before the engine split ``Executor.handle``/``_position_event``) to
stamp each position's frame as it moves, and runs cProfile over the event loop's thread. Each wrap is
skipped with a note if its target is gone. Run: ``python -m bench.profile_f2o [n] [--loaded]``; prints the
stage table and the top functions.
"""

from __future__ import annotations

import asyncio
import cProfile
import functools
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.bench_engine import cpu_hogs, sim, stop
from bench.common import percentile
from hedge_agent.demo.admin import AdminUI
from hedge_agent.demo.remote import SandboxProcess
from hedge_agent.demo.world import DEMO_RISK, make_agent
from hedge_agent.logs import setup_logging

STAMPS: dict[str, dict[str, float]] = defaultdict(dict)
_current: dict[int, str] = {}  # thread id -> position the journal thread works on


def _pid_of(obj: Any) -> str | None:
    return getattr(obj, "id", None)


def wrap(owner: Any, name: str, make: Any) -> None:
    fn = getattr(owner, name, None)
    if fn is None:
        print(f"note: {owner.__name__}.{name} not found; stage not timed", file=sys.stderr)
        return
    setattr(owner, name, make(fn))


def install() -> None:
    import importlib

    from hedge_agent.cloud.client import CloudClient
    from hedge_agent.engine import journal

    try:  # the executor before the engine split; after it, the stages are named in engine/
        executor: Any = importlib.import_module("hedge_agent.engine.executor")
        entry, event_cls, event_fn = executor.Executor, executor.Executor, "_position_event"
        timing = executor.Timing
    except ImportError:
        intake: Any = importlib.import_module("hedge_agent.engine.intake")
        context: Any = importlib.import_module("hedge_agent.engine.context")
        entry, event_cls, event_fn, timing = intake.Intake, intake.Intake, "_position", context.Timing

    def on_frame(fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(self: Any, session: Any, doc: Any, result: Any) -> Any:
            t = time.monotonic()
            payload = (result.data or {}).get(doc.field) if isinstance(result.data, dict) else None
            if isinstance(payload, dict) and payload.get("status") == "OPENING":
                s = STAMPS[payload["id"]]
                s.setdefault("frame", getattr(result, "received_at", t))
                s.setdefault("on_frame", t)
            return fn(self, session, doc, result)

        return inner

    def handle(fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(self: Any, event: Any) -> Any:
            rec = getattr(event, "record", None)
            if rec is not None and getattr(rec, "status", None) is not None and rec.status.value == "OPENING":
                STAMPS[rec.id].setdefault("handle", time.monotonic())
            return fn(self, event)

        return inner

    def position_event(fn: Any) -> Any:
        @functools.wraps(fn)
        async def inner(self: Any, p: Any) -> Any:
            if p.status.value == "OPENING":
                STAMPS[p.id].setdefault("task", time.monotonic())
            return await fn(self, p)

        return inner

    def call(fn: Any) -> Any:
        @functools.wraps(fn)
        async def inner(self: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(f, "__name__", "")
            if name not in ("write_ahead", "mark_sent"):
                return await fn(self, f, *args, **kwargs)
            if name == "write_ahead":
                pid, pre = args[0].position_id, ""
            else:
                pid, pre = str(args[0]).split(":")[1], "sent_"
            s = STAMPS[pid]
            s.setdefault(pre + "submit", time.monotonic())

            def timed(*a: Any, **k: Any) -> Any:
                s.setdefault(pre + "thread_start", time.monotonic())
                try:
                    return f(*a, **k)
                finally:
                    s.setdefault(pre + "thread_end", time.monotonic())

            functools.update_wrapper(timed, f)
            out = await fn(self, timed, *args, **kwargs)
            s.setdefault(pre + "resumed", time.monotonic())
            return out

        return inner

    def order_sent(fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(self: Any, position_id: str, now: float) -> Any:
            STAMPS[position_id].setdefault("order", now)
            return fn(self, position_id, now)

        return inner

    wrap(CloudClient, "_on_frame", on_frame)
    wrap(entry, "handle", handle)
    wrap(event_cls, event_fn, position_event)
    wrap(journal.AsyncJournal, "call", call)
    wrap(journal.AsyncJournal, "quick", call)
    wrap(timing, "order_sent", order_sent)


STAGES = [
    ("frame", "on_frame", "realtime: frame JSON + gql result (frame stamped -> client sees it)"),
    ("on_frame", "handle", "client: record parse, dedupe, queue hop to the engine's loop task"),
    ("handle", "task", "executor: ownership/stale checks, task spawn -> task first runs"),
    ("task", "submit", "engine: position lock, decide, risk check, draft intent"),
    ("submit", "thread_start", "write_ahead: hop loop -> journal thread (or lock wait, inline)"),
    ("thread_start", "thread_end", "journal: write_ahead (SELECT, cap COUNT, INSERT, COMMIT+fsync)"),
    ("thread_end", "resumed", "write_ahead: hop journal thread -> loop (future + wake-up)"),
    ("resumed", "sent_submit", "engine: terminal lock, health check"),
    ("sent_submit", "sent_thread_start", "mark_sent: hop loop -> journal thread (or lock wait)"),
    ("sent_thread_start", "sent_thread_end", "journal: mark_sent (UPDATE, COMMIT without fsync)"),
    ("sent_thread_end", "sent_resumed", "mark_sent: hop journal thread -> loop"),
    ("sent_resumed", "order", "engine: -> order handed over"),
    ("frame", "order", "total frame_to_order"),
]


async def run(n: int, loaded: bool) -> str:
    install()
    work = Path(tempfile.mkdtemp(prefix="profile-f2o-"))
    setup_logging("WARNING", work / "logs", console=False)
    prof = cProfile.Profile()
    async with SandboxProcess() as sb:
        ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
        acc = (await ui.create_account(sub, "1", "MT5", "prof", 1e7))["id"]
        term = sim("prof", 1)
        agent = await make_agent(sb.info, "alice", {acc: term}, work / "p.sqlite3", risk=DEMO_RISK)
        task = asyncio.create_task(agent.run())
        await agent.started.wait()
        await asyncio.sleep(1.0)
        hogs = cpu_hogs(os.cpu_count() or 2) if loaded else []
        try:
            prof.enable()
            for _ in range(n):
                p = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.01)
                await ui.set_position_status(p["id"], "PENDING", "OPENING")
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + 30
            while sum("order" in s for s in STAMPS.values()) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            prof.disable()
        finally:
            stop(hogs)
        agent.request_stop()
        await task
    rows = [f"frame_to_order stages, {n} opens{' with a CPU hog per core' if loaded else ''} "
            f"(ms; main thread {threading.main_thread().name})", "",
            "| stage | p50 | p99 | share of p50 total |", "|---|---|---|---|"]  # fmt: skip
    total50 = None
    done = [s for s in STAMPS.values() if "order" in s and "frame" in s]
    for a, b, what in STAGES:
        xs = [(s[b] - s[a]) * 1000 for s in done if a in s and b in s]
        if not xs:
            continue
        p50 = percentile(xs, 50)
        if a == "frame" and b == "order":
            total50 = p50
        rows.append(f"| {what} | {p50:.3f} | {percentile(xs, 99):.3f} | |")
    if total50:
        rows = [r.replace("| |", f"| {float(r.split('|')[2]) / total50:.0%} |") if r.count("|") == 5 and r[2:7] != "stage" and not r.startswith("|---") else r for r in rows]  # fmt: skip
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.sort_stats("tottime").print_stats(25)
    return "\n".join(rows) + "\n\ncProfile, event-loop thread, by own time:\n" + out.getvalue()


def inline_journal() -> None:
    """Experiment ``--inline``: journal calls run on the loop's thread (no hop; the fsync blocks it)."""
    from hedge_agent.engine.journal import AsyncJournal

    async def call(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    AsyncJournal.call = call  # type: ignore[method-assign]


def hop_journal() -> None:
    """Experiment ``--hop``: the order's short writes hop to the journal thread again (as before issue 16)."""
    from hedge_agent.engine.journal import AsyncJournal

    if hasattr(AsyncJournal, "quick"):
        AsyncJournal.quick = AsyncJournal.call  # type: ignore[method-assign]


def main() -> None:
    """``[n] [--loaded] [--switch=S] [--inline]``: ``--switch`` sets ``sys.setswitchinterval`` (how long
    a thread that wants the GIL may wait, 5 ms by default)."""
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "200"))
    for a in sys.argv[1:]:
        if a.startswith("--switch="):
            sys.setswitchinterval(float(a.split("=", 1)[1]))
    if "--inline" in sys.argv:
        inline_journal()
    if "--hop" in sys.argv:
        hop_journal()
    print(f"switch interval {sys.getswitchinterval() * 1000:g} ms; inline journal: {'--inline' in sys.argv}")
    print(asyncio.run(run(n, "--loaded" in sys.argv)))


if __name__ == "__main__":
    main()
