"""Shared bench helpers: percentiles, the results table, and the JSON file per bench."""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


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


def report(name: str, figures: Mapping[str, float], targets: Mapping[str, str] | None = None) -> Path:
    """Print a table and write bench/results/<name>.json (a flat object of figure -> number)."""
    targets = targets or {}
    width = max(len(k) for k in figures)
    print(f"\n{name}  (python {platform.python_version()}, {platform.machine()})")
    for key, value in figures.items():
        target = targets.get(key, "")
        print(f"  {key:<{width}}  {value:>12.4f}  {target}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({k: round(float(v), 6) for k, v in figures.items()}, indent=2) + "\n")
    return path
