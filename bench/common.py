"""Shared bench helpers: percentiles, the results table, and the JSON file per bench."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

#: where figures go; ``bench.compare`` points each side's run at its own folder
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).parent / "results")
#: ``BENCH_QUICK=1``: a handful of iterations per figure (the smoke test); figures are then meaningless
QUICK = os.environ.get("BENCH_QUICK") == "1"


def scaled(n: int, quick: int = 3) -> int:
    """``n`` iterations, or ``quick`` of them in a smoke run."""
    return quick if QUICK else n


def own_data_dir(work: Path) -> dict[str, str]:
    """The environment for a ``hedge-agent`` child process with its own data folder (single-instance
    lock, token store, default journal), so that benches and tests running beside it never collide."""
    return {**os.environ, "XDG_DATA_HOME": str(work / "xdg-data")}


def percentile(samples: Sequence[float], p: float) -> float:
    data = sorted(samples)
    if not data:
        return float("nan")
    k = (len(data) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def report(
    name: str,
    figures: Mapping[str, float],
    targets: Mapping[str, str] | None = None,
    *,
    merge: bool = False,
) -> Path:
    """Print a table and write bench/results/<name>.json (a flat object of figure -> number). ``merge``
    keeps the file's other keys (several benches share ``engine.json``) and replaces only these."""
    targets = targets or {}
    width = max(len(k) for k in figures)
    print(f"\n{name}  (python {platform.python_version()}, {platform.machine()})")
    for key, value in figures.items():
        target = targets.get(key, "")
        print(f"  {key:<{width}}  {value:>12.4f}  {target}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    out: dict[str, float] = {}
    if merge and path.exists():
        out = {k: float(v) for k, v in json.loads(path.read_text()).items() if isinstance(v, int | float)}
    out.update({k: round(float(v), 6) for k, v in figures.items()})
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path
