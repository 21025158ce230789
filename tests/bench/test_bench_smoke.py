"""Each bench runs end to end for a handful of iterations (``BENCH_QUICK=1``) and writes the keys the
README and issue 16 quote. The figures of such a run mean nothing; that the bench still drives this tree's
interfaces is the point (``bench/shim.py`` is where a renamed API is adapted).

The journal bench runs in every ``make test`` (a few seconds); the ones that start the sandbox, agents and
EA stand-ins take half a minute each and run with ``BENCH_SMOKE=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLOW = pytest.mark.skipif(os.environ.get("BENCH_SMOKE") != "1", reason="set BENCH_SMOKE=1 to run")

CASES = [
    pytest.param("bench.bench_journal", {}, {"journal": ["write_ahead_p99_ms_0", "write_ahead_p99_ms_10k",
                 "write_ahead_p99_ms_100k", "open_tickets_p99_ms_100k", "replay_ms_100k"]}, id="journal"),
    pytest.param("bench.bench_engine", {"BENCH_CADENCE_S": "0"}, {"engine": ["frame_to_order_p50_ms",
                 "frame_to_order_p99_ms", "frame_to_order_p99_ms_loaded", "cross_pc_trigger_p50_ms",
                 "rss_mb_4_terminals_1000_positions"]}, id="engine", marks=SLOW),
    pytest.param("bench.bench_huge_fire", {}, {"engine": ["huge_fire_open_ratio"]}, id="huge_fire", marks=SLOW),
    pytest.param("bench.bench_cold_start", {}, {"engine": ["cold_start_s_1000"]}, id="cold_start", marks=SLOW),
    pytest.param("bench.bench_bridge", {}, {"bridge": ["bridge_only_ratio_vs_echo"]}, id="bridge", marks=SLOW),
]  # fmt: skip


@pytest.mark.parametrize(("module", "env", "keys"), CASES)
def test_a_bench_runs_and_writes_its_keys(
    tmp_path: Path, module: str, env: dict[str, str], keys: dict[str, list[str]]
) -> None:
    run_env = {**os.environ, **env, "BENCH_QUICK": "1", "BENCH_RESULTS_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    for name, wanted in keys.items():
        figures = json.loads((tmp_path / f"{name}.json").read_text())
        assert [k for k in wanted if not isinstance(figures.get(k), int | float)] == []
