"""The demo's end and live view read well (issue 14, point 10), and `make demo` leaves the checkout clean."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

from hedge_agent.demo.run import _no_nan, action_label, ms, pct, summary_lines

ROOT = Path(__file__).resolve().parents[2]


def report(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "actions_executed": 12, "actions_failed": 0, "actions_pending": 4, "duplicate_orders": 0,
        "positions_opened": 8, "positions_closed": 4, "trails_fired": 1, "orders_sent": 12,
        "frame_to_order_ms": {"p50": pct([], 50), "p99": pct([], 99), "n": 0},
        "cross_pc_trigger_ms": {"p50": 12.3456789012345, "p99": 20.0, "n": 1},
        "consistent": True, "problems": [],
        "pairs": ["pair 1 USDJPY: opened BUY 0.10 at 150.027 (PC-1) + SELL 0.10 at 150.014 (PC-2); "
                  "closed: trail (PC-1); P/L +8.87 USD"],
    }  # fmt: skip
    base.update(changes)
    return _no_nan(base)  # type: ignore[no-any-return]


def test_no_latency_sample_reads_as_a_dash_never_nan_ms() -> None:
    assert ms(pct([], 50), 2) == "-" and ms(2.345, 2) == "2.35 ms"


def test_the_report_has_no_nan_and_no_15_digit_floats() -> None:
    text = json.dumps(report(), allow_nan=False)  # raises on NaN
    assert "12.346" in text and "12.3456789" not in text


def test_the_summary_says_per_pair_how_it_opened_closed_and_its_pl_and_what_consistent_means() -> None:
    lines = "\n".join(summary_lines(report()))
    assert (
        "pair 1 USDJPY: opened BUY 0.10 at 150.027" in lines
        and "closed: trail (PC-1); P/L +8.87 USD" in lines
    )
    assert "p50 -" in lines and "nan" not in lines.lower()
    assert "consistent (consistent = every cloud record agrees with the brokers" in lines


def test_the_action_columns_are_explained_words() -> None:
    assert [action_label(s) for s in ("PENDING", "EXECUTED", "EXECUTING", "FAILED")] == [
        "PEND", "EXEC", "EXEC..", "FAIL",
    ]  # fmt: skip


def test_make_demo_writes_its_report_to_an_ignored_path() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (target,) = re.findall(r"hedge-agent demo .*--report (\S+)", makefile)
    ignored = subprocess.run(["git", "check-ignore", "-q", target], cwd=ROOT)
    assert ignored.returncode == 0, f"{target} would dirty the checkout"
    tracked = subprocess.run(
        ["git", "ls-files", "bench/results/demo.json"], cwd=ROOT, capture_output=True, text=True
    )
    assert tracked.stdout == ""


def test_the_license_is_an_spdx_string_not_a_deprecated_table() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str)
