"""Fuzzing, bench-style: 10,000 cases per target, counted (design §9: 0 crashes, each rejection a reason).

Targets (tests/fuzz/*_target.py, the same generators ``make test`` runs a few hundred of):
  appsync   AppSync payloads -> records, and realtime frames through the transport and the client's handler
  ea_codec  MT4 bridge frames in both directions
  config    TOML files and HEDGE_AGENT__* overrides -> load_config
  journal   damaged journals (rows, schema, bytes) -> open + every read/replay method

Case ``n`` of a target is generated from seed ``--seed + n``, so any failure printed here is reproduced with
``--targets NAME --seed SEED --cases 1``. Each target runs in its own process (``--jobs`` at a time); a case
that runs longer than ``--case-timeout`` is a hang (an interval timer interrupts it), and so is a target that
outlives ``--target-timeout``. Figures per target: cases, accepted, rejected, crashes (anything escaping,
hangs included), hangs, violations (an answer that broke the promise, e.g. a rejection without a reason),
the slowest case's check in ms, and seconds for the whole target. Exits 1 when any target crashed, hung
or broke a promise.

    .venv/bin/python -m bench.fuzz [--cases 10000] [--seed 0] [--targets appsync,config] [--jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from bench.common import report

TARGETS = {
    "appsync": "tests.fuzz.appsync_target",
    "ea_codec": "tests.fuzz.ea_codec_target",
    "config": "tests.fuzz.config_target",
    "journal": "tests.fuzz.journal_target",
}
#: failures printed per target (all are counted)
SHOWN = 5


class CaseTimeout(BaseException):
    """Raised into a case that ran too long. BaseException: the code under test must not swallow it."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (POSIX interval timer; elsewhere the target timeout guards)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_target(name: str, cases: int, seed: int, case_timeout_s: float, out: Connection) -> None:
    """In a child process: run the cases, send back the counts and the first failures."""
    from tests.fuzz.common import Violation

    target = importlib.import_module(TARGETS[name]).TARGET
    counts = dict.fromkeys(("cases", "accepted", "rejected", "crashes", "hangs", "violations"), 0)
    failures: list[str] = []
    started = time.perf_counter()
    slowest = 0.0
    for case_seed in range(seed, seed + cases):
        counts["cases"] += 1
        case = target.case(
            case_seed
        )  # outside the deadline: a slow generator is the harness's bug, not a hang
        t0 = time.perf_counter()
        try:
            with deadline(case_timeout_s):
                outcome = target.check(case)
        except CaseTimeout:
            counts["crashes"] += 1
            counts["hangs"] += 1
            failures.append(f"seed {case_seed}: no answer within {case_timeout_s:g} s")
        except Violation as e:
            counts["violations"] += 1
            failures.append(f"seed {case_seed}: broke the promise: {e}"[:400])
        except Exception as e:
            counts["crashes"] += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            failures.append(
                f"seed {case_seed}: {type(e).__name__}: {e} (at {where.filename}:{where.lineno})"[:400]
            )
        else:
            counts[outcome] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    counts["slowest_case_ms"] = round(slowest * 1e3)
    out.send((counts, time.perf_counter() - started, failures))
    out.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000, help="cases per target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated subset")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="targets run at once")
    parser.add_argument("--case-timeout", type=float, default=5.0, help="seconds before a case is a hang")
    parser.add_argument("--target-timeout", type=float, default=240.0, help="seconds for a whole target")
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")

    ctx = mp.get_context("spawn")  # as on Windows; nothing inherited from this process skews a target
    todo = list(names)
    running: dict[str, tuple[Any, Connection, float]] = {}
    results: dict[str, tuple[dict[str, int], float, list[str]]] = {}
    started = time.perf_counter()
    while todo or running:
        while todo and len(running) < args.jobs:
            name = todo.pop(0)
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=run_target,
                args=(name, args.cases, args.seed, args.case_timeout, sender),
                name=f"fuzz-{name}",
            )
            proc.start()
            sender.close()
            running[name] = (proc, receiver, time.perf_counter())
        for name, (proc, receiver, t0) in list(running.items()):
            if receiver.poll(0.05):
                results[name] = receiver.recv()
            elif proc.is_alive() and time.perf_counter() - t0 < args.target_timeout:
                continue
            elif name not in results:  # died, or hung in code the interval timer cannot interrupt
                if proc.is_alive():
                    proc.terminate()
                why = "hung" if time.perf_counter() - t0 >= args.target_timeout else f"died ({proc.exitcode})"
                counts = dict.fromkeys(("cases", "accepted", "rejected", "violations"), 0)
                counts |= {"crashes": 1, "hangs": int(why == "hung")}
                results[name] = (counts, time.perf_counter() - t0, [f"the target process {why}"])
            proc.join(5)
            del running[name]

    figures: dict[str, float] = {}
    for name in names:
        counts, seconds, failures = results[name]
        for key in ("cases", "crashes", "rejected", "accepted", "hangs", "violations", "slowest_case_ms"):
            figures[f"{name}_{key}"] = counts.get(key, 0)
        figures[f"{name}_seconds"] = seconds
        for line in failures[:SHOWN]:
            print(f"  {name}: {line}")
        if len(failures) > SHOWN:
            print(f"  {name}: ... and {len(failures) - SHOWN} more")
    figures["wall_seconds"] = time.perf_counter() - started
    targets = {f"{n}_{k}": "target 0" for n in names for k in ("crashes", "hangs", "violations")}
    report("fuzz", figures, targets)
    return 1 if any(figures[k] for k in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
