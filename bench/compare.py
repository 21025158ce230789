"""Before/after figures from one run: ``python -m bench.compare --baseline <git-ref> [bench ...]``.

The baseline is checked out into a temporary git worktree. Both sides run *this* tree's bench code (a
copy of ``bench/`` put first on ``PYTHONPATH``), each against its own ``hedge_agent`` package (the
baseline's worktree, or this tree), with this venv's interpreter and libraries; every child process a
bench starts (the sandbox, ``hedge-agent run``, the bridge's EA stand-ins) inherits that path. Before
anything runs, each side is checked to import ``hedge_agent`` from the tree it should (not from the
editable install).

The sides alternate bench by bench (baseline first in odd rounds, current first in even ones), so load
from elsewhere on the machine hits both alike; with ``--rounds N`` each figure is the median of N runs.
Writes ``bench/results/compare.json``: for every figure ``<file>.<key>`` (the issue's keys) its
``before``, ``after`` and ``ratio`` (after / before), plus the commits compared; the current side's own
files (``bench/results/<file>.json``) are updated as ``make bench`` would.

Benches: ``journal``, ``engine``, ``huge_fire``, ``cold_start``, ``bridge`` (default: all of these), and
any other ``bench.bench_<name>`` module.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT = ["journal", "engine", "huge_fire", "cold_start", "bridge"]
#: per bench: extra environment for a comparison run (the cadence is not what issue 16 compares)
ENV = {"engine": {"BENCH_ENGINE_PHASES": "f2o,loaded,cross_pc,rss,commit", "BENCH_CADENCE_S": "0"}}
TIMEOUT_S = 1_800


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


class Side:
    def __init__(self, name: str, tree: Path, benches_dir: Path, work: Path) -> None:
        self.name, self.tree = name, tree
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(benches_dir), str(tree)]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.cwd = benches_dir
        self.work = work
        self.runs: dict[str, list[dict[str, float]]] = {}

    def check_imports(self) -> None:
        out = subprocess.run(
            [sys.executable, "-c", "import bench, hedge_agent; print(hedge_agent.__file__); print(bench.__file__)"],
            env=self.env, cwd=self.cwd, check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        pkg, bench = Path(out[0]).resolve(), Path(out[1]).resolve()
        if not pkg.is_relative_to(self.tree.resolve()):
            raise SystemExit(f"{self.name}: hedge_agent imports from {pkg}, not from {self.tree}")
        if not bench.is_relative_to(self.cwd.resolve()):
            raise SystemExit(f"{self.name}: bench imports from {bench}, not from {self.cwd}")
        print(f"{self.name}: hedge_agent from {pkg.parent}", flush=True)

    def run(self, bench: str, round_: int) -> bool:
        out = self.work / f"{self.name}-{bench}-{round_}"
        out.mkdir(parents=True)
        module = bench if bench.startswith("bench.") else f"bench.bench_{bench}"
        env = {**self.env, **ENV.get(bench, {}), "BENCH_RESULTS_DIR": str(out)}
        t0 = time.monotonic()
        print(f"--- {self.name}: {module} (round {round_ + 1})", flush=True)
        try:
            rc = subprocess.call([sys.executable, "-m", module], env=env, cwd=self.cwd, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = -1
        print(f"--- {self.name}: {module}: {'ok' if rc == 0 else f'FAILED ({rc})'} in "
              f"{time.monotonic() - t0:.0f} s", flush=True)  # fmt: skip
        figures: dict[str, float] = {}
        for f in sorted(out.glob("*.json")):
            for k, v in json.loads(f.read_text()).items():
                if isinstance(v, int | float):
                    figures[f"{f.stem}.{k}"] = float(v)
        self.runs.setdefault(bench, []).append(figures)
        return rc == 0

    def figures(self) -> dict[str, float]:
        merged: dict[str, list[float]] = {}
        for runs in self.runs.values():
            for figures in runs:
                for k, v in figures.items():
                    merged.setdefault(k, []).append(v)
        return {k: statistics.median(v) for k, v in merged.items()}


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def ratio(before: float | None, after: float | None) -> float | None:
    if (
        before is None
        or after is None
        or not math.isfinite(before)
        or not math.isfinite(after)
        or before == 0
    ):
        return None
    return after / before


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", required=True, help="git ref of the 'before' tree (e.g. main)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "compare.json"))
    p.add_argument("benches", nargs="*", default=DEFAULT)
    a = p.parse_args()

    base_sha = git("rev-parse", a.baseline)
    head_sha = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    base_tree = tmp / "baseline"
    git("worktree", "add", "--detach", str(base_tree), base_sha)
    failed: list[str] = []
    try:
        benches_dir = tmp / "benches"  # only ``bench/``: the package each side imports is its tree's
        shutil.copytree(
            ROOT / "bench", benches_dir / "bench", ignore=shutil.ignore_patterns("results", "__pycache__")
        )
        sides = [Side("before", base_tree, benches_dir, tmp), Side("after", ROOT, benches_dir, tmp)]
        for s in sides:
            s.check_imports()
        for r in range(a.rounds):
            for bench in a.benches:
                for s in sides if r % 2 == 0 else sides[::-1]:
                    if not s.run(bench, r):
                        failed.append(f"{s.name}:{bench}")
        before, after = sides[0].figures(), sides[1].figures()
        table = {
            k: {
                "before": finite(before.get(k)),
                "after": finite(after.get(k)),
                "ratio": finite(ratio(before.get(k), after.get(k))),
            }
            for k in sorted(set(before) | set(after))
        }
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "baseline": {"ref": a.baseline, "commit": base_sha},
                    "current": {"commit": head_sha, "uncommitted_changes": dirty},
                    "rounds": a.rounds,
                    "benches": a.benches,
                    "failed": failed,
                    "figures": table,
                },
                indent=2,
                allow_nan=False,
            )
            + "\n"
        )
        quick = os.environ.get("BENCH_QUICK") == "1"  # a smoke run's figures mean nothing: keep the files
        for bench_runs in [] if quick else sides[1].runs.values():  # the current tree's, as make bench does
            for name in {k.split(".", 1)[0] for k in bench_runs[-1]}:
                cur = {k.split(".", 1)[1]: v for k, v in bench_runs[-1].items() if k.startswith(name + ".")}
                path = RESULTS / f"{name}.json"
                old = json.loads(path.read_text()) if path.exists() else {}
                path.write_text(
                    json.dumps({**old, **{k: round(v, 6) for k, v in cur.items()}}, indent=2) + "\n"
                )
        width = max((len(k) for k in table), default=10)
        print(
            f"\nbefore = {a.baseline} ({base_sha[:7]}), after = HEAD ({head_sha[:7]}{', dirty' if dirty else ''})"
        )
        print(f"{'figure':<{width}}  {'before':>12}  {'after':>12}  {'after/before':>12}")
        for k, row in table.items():
            cells = [
                f"{row[c]:>12.4f}" if isinstance(row[c], float) else f"{'-':>12}"
                for c in ("before", "after", "ratio")
            ]
            print(f"{k:<{width}}  {'  '.join(cells)}")
        print(f"\nwritten: {out}")
        if failed:
            print("failed:", ", ".join(failed))
    finally:
        git("worktree", "remove", "--force", str(base_tree))
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
