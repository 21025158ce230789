"""``make bench``: every benchmark, one after the other, each in its own process (so one's threads and
memory never skew another's figures). Prints how long each took; exits non-zero if any failed. Before/after figures of two trees in one run:
``python -m bench.compare --baseline <git-ref>``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

# (module, extra environment); the order puts the quick ones first
BENCHES: list[tuple[str, dict[str, str]]] = [
    ("bench.bench_trailing", {}),
    ("bench.bench_terminals", {}),
    ("bench.bench_bridge", {}),
    ("bench.bench_cloud", {}),
    ("bench.bench_sandbox", {}),
    ("bench.bench_cadence", {}),
    ("bench.bench_journal", {}),
    ("bench.bench_engine", {"BENCH_CADENCE_S": "60"}),
    ("bench.bench_huge_fire", {}),
    ("bench.bench_cold_start", {}),
    ("bench.fuzz", {}),
    ("bench.soak", {"SOAK_S": "120"}),
]


def main() -> int:
    failed = []
    started = time.monotonic()
    for module, env in BENCHES:
        t0 = time.monotonic()
        print(f"\n=== {module}", flush=True)
        rc = subprocess.call([sys.executable, "-m", module], env={**os.environ, **env}, timeout=600)
        print(
            f"=== {module}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        if rc != 0:
            failed.append(module)
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s; results in bench/results/*.json")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
