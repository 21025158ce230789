"""``make simulate SEEDS=N [START=S] [JOBS=2]`` runs N seeds and prints a summary; ``make simulate SEED=S``
replays one seed and prints its violations and the end of its trace.

    python -m tests.simulation.run --seeds 1000 --jobs 2
    python -m tests.simulation.run --seed 1234
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter

from .scheduler import Stats, run_seed, stats_trace

REPLAY = "make simulate SEED={seed}"


def _one(seed: int) -> Stats:
    st = run_seed(seed)
    stats_trace.clear()
    return st


def summary(results: list[Stats], elapsed: float) -> tuple[str, list[Stats]]:
    edits: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for st in results:
        edits.update(st.edits)
        faults.update(st.faults)
    failed = [st for st in results if st.violations]
    by_invariant: Counter[str] = Counter(v.invariant for st in failed for v in st.violations)
    lines = [
        f"seeds run: {len(results)} in {elapsed:.1f} s ({sum(st.virtual_s for st in results) / 3600:.1f} virtual hours)",
        f"crashes: {sum(st.crashes for st in results)}, restarts: {sum(st.restarts for st in results)}",
        f"admin edits: {sum(v for k, v in edits.items() if not k.startswith('triggers:'))} "
        f"(trigger lists: {sum(v for k, v in edits.items() if k.startswith('triggers:'))})",
        f"faults: {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})",
        f"orders executed: {sum(st.orders for st in results)}, fires: {sum(st.fires for st in results)}",
        f"failed seeds: {len(failed)}"
        + (f" ({', '.join(f'{k} {v}' for k, v in by_invariant.most_common())})" if failed else ""),
    ]
    return "\n".join(lines), failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="simulate")
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None, help="replay one seed in detail")
    args = ap.parse_args(argv)
    if args.seed is not None:
        st = run_seed(args.seed)
        trace = stats_trace.get(args.seed, [])
        ids = {v.record for v in st.violations}
        keep = [line for line in trace if any(f" {i} " in f"{line} " for i in ids) or " crash " in line
                or " start " in line or " lost" in line or line.endswith(" calm") or "broker" in line]  # fmt: skip
        print("\n".join(keep[-120:]))
        print(f"\nseed {args.seed}: {st.crashes} crashes, {sum(st.edits.values())} edits, {sum(st.faults.values())} faults, "
              f"{st.orders} orders, {st.fires} fires, trace {st.trace_digest}")  # fmt: skip
        for v in st.violations:
            print(f"VIOLATION {v}")
        return 1 if st.violations else 0
    seeds = range(args.start, args.start + args.seeds)
    t0 = time.perf_counter()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = list(pool.imap_unordered(_one, seeds, chunksize=8))
    else:
        results = [_one(s) for s in seeds]
    results.sort(key=lambda st: st.seed)
    text, failed = summary(results, time.perf_counter() - t0)
    print(text)
    for st in failed[:50]:
        print(
            f"  seed {st.seed}: {st.violations[0]}"
            + (f" (+{len(st.violations) - 1} more)" if len(st.violations) > 1 else "")
        )
        print(f"    replay: {REPLAY.format(seed=st.seed)}")
    if len(failed) > 50:
        print(f"  ... and {len(failed) - 50} more failed seeds")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
