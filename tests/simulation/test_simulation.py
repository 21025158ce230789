"""Deterministic simulation of the engine (issue 11, item 9): seeded runs of the real executor, trailing
monitor and SQLite journal against the cloud and terminal models, checked against the invariants."""

from __future__ import annotations

import os

import pytest

from .pinned_seeds import OPEN, PINNED
from .run import REPLAY
from .scheduler import run_seed, stats_trace

# a crash cancels tasks that never started: their coroutines are never awaited (as in a killed process)
pytestmark = pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")

#: seeds run by `make test` (HEDGE_SIM_SEEDS overrides; `make simulate SEEDS=N` runs more, on 2 cores)
SEEDS = int(os.environ.get("HEDGE_SIM_SEEDS", "240"))
CHUNK = 20


def _failures(seeds: range) -> list[str]:
    out = []
    for seed in seeds:
        st = run_seed(seed)
        stats_trace.clear()
        if st.violations:
            listed = "\n      ".join(str(v) for v in st.violations[:5])
            out.append(f"seed {seed} (replay: {REPLAY.format(seed=seed)}):\n      {listed}")
    return out


@pytest.mark.parametrize("start", range(0, SEEDS, CHUNK), ids=lambda s: f"seeds-{s}-{s + CHUNK - 1}")
def test_random_seeds_keep_every_invariant(start: int) -> None:
    failures = _failures(range(start, min(start + CHUNK, SEEDS)))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("seed", sorted(PINNED), ids=lambda s: f"pinned-{s}")
def test_pinned_seed(seed: int) -> None:
    failures = _failures(range(seed, seed + 1))
    assert not failures, f"{PINNED[seed]}\n" + "\n".join(failures)


@pytest.mark.parametrize("seed", sorted(OPEN), ids=lambda s: f"open-{s}")
@pytest.mark.xfail(strict=True, reason="a known engine bug not fixed yet (pinned_seeds.OPEN)")
def test_open_seed_still_fails(seed: int) -> None:
    failures = _failures(range(seed, seed + 1))
    assert not failures, f"{OPEN[seed]}\n" + "\n".join(failures)


@pytest.mark.parametrize("seed", [3, 11])
def test_same_seed_same_run(seed: int) -> None:
    first = run_seed(seed)
    trace1 = stats_trace.pop(seed)
    second = run_seed(seed)
    trace2 = stats_trace.pop(seed)
    assert len(trace1) > 50  # a run that does something
    assert trace1 == trace2
    assert first.trace_digest == second.trace_digest
    assert [str(v) for v in first.violations] == [str(v) for v in second.violations]


def test_different_seeds_differ() -> None:
    assert run_seed(1).trace_digest != run_seed(2).trace_digest
    stats_trace.clear()
