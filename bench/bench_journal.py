"""Journal figures over weeks of trading history: 0, 10,000 and 100,000 finished trades.

A finished trade is journaled as the agent journals it (``bench.shim.finished_trade``: open and close
intents reported, trail rows, a fire with its claim settled, the trigger action executed and reported).
The first ``TEMPLATE`` trades go through the journal's own API; the rest are copies of those rows made
with SQL in every table the running version has, each id rewritten (ids carry the marker ``Q0Q``), so the
fill works on any schema and takes seconds, not hours. Trades are spread over the last ``SPAN_DAYS`` days
(a version that archives or prunes old work may do so when it opens the file, as it would for a user).

Measured on the journal as the agent opens it (checkpoints where that version runs them; an order every
``GAP_S``):

* ``write_ahead_p50/p99_ms_<n>``: the write before every open (with the open-positions cap on);
* ``mark_sent_p50/p99_ms_<n>``: the write right before the order leaves (where the version has one);
* ``before_send_p50/p99_ms_<n>``: the two together, what an order waits for in the journal before it
  leaves, whichever of them carries the fsync (the durable commit);
* ``open_tickets_p50/p99_ms_<n>``: the positions this PC believes open (every second, per terminal);
* ``replay_ms_<n>``: start-up: opening the file (migration, integrity check) plus the reconcile reads;
* ``archive_s_<n>`` / ``archived_<n>``: the first archive pass of a version that moves finished work out of
  the hot tables (``Journal.archive_finished``; the agent runs it on its journal thread at the first
  reconcile, then hourly): how long it took and how many positions it moved (the others are younger than
  ``keep_finished_days``); ``archive_longest_call_ms_<n>``: its longest single journal call (the agent
  runs it call by call, chunk by chunk: an order waits for one call at most); the figures above are then
  measured on the archived journal;
* ``write_ahead_p99_ratio_100k_vs_0``: how much the history costs the hot write.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import shim
from bench.common import QUICK, percentile, report, scaled

TEMPLATE = 50 if QUICK else 500  # trades through the API; copies of them make up the rest
SPAN_DAYS = 14
MARK = "Q0Q"
SIZES = {"0": 0, "10k": 10_000, "100k": 100_000}
QUICK_SIZES = {"0": 0, "10k": 100, "100k": 200}
CALL_CAP_S = 1.0 if QUICK else 10.0
GAP_S = 0.0 if QUICK else 0.005  # between two orders


def _replicate(path: Path, copies: int) -> None:
    """Append ``copies`` copies of every row of every table (except meta) with the marker rewritten."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    tables = [
        r[0]
        for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        if r[0] != "meta"
    ]
    db.execute("BEGIN")
    for table in tables:
        cols = db.execute(f"PRAGMA table_info({table})").fetchall()  # cid, name, type, notnull, dflt, pk
        pks = [c for c in cols if c[5]]
        rowid_pk = len(pks) == 1 and str(pks[0][2]).upper() == "INTEGER"
        keep = [c for c in cols if not (rowid_pk and c[5])]  # an INTEGER PRIMARY KEY numbers the copies
        names = ",".join(f'"{c[1]}"' for c in keep)
        db.execute(f"CREATE TEMP TABLE template AS SELECT {names} FROM {table}")  # the API's rows only
        for k in range(1, copies + 1):
            exprs = ",".join(
                f"CASE WHEN typeof(\"{c[1]}\")='text' THEN replace(\"{c[1]}\", '{MARK}', 'Q{k}Q') ELSE \"{c[1]}\" END"
                for c in keep
            )
            db.execute(f"INSERT INTO {table} ({names}) SELECT {exprs} FROM temp.template")
        db.execute("DROP TABLE temp.template")
    db.execute("COMMIT")
    db.close()


def build(work: Path, trades: int) -> Path:
    path = work / f"journal-{trades}.sqlite3"
    if trades == 0:
        shim.open_journal(path).close()
        return path
    template = min(TEMPLATE, trades)
    start = time.time() - SPAN_DAYS * 86_400
    step = SPAN_DAYS * 86_400 / (template * 20)  # about 20 journal calls per trade
    clock_n = [0]

    def clock() -> float:  # the template spans the days; its copies keep its times
        clock_n[0] += 1
        return start + clock_n[0] * step

    j = shim.open_journal(path, clock=clock)
    with shim.fast_writes(j):
        for n in range(template):
            shim.finished_trade(j, f"bj{MARK}-{n:06d}", f"bh{MARK}-{n:06d}", f"ba{MARK}-{n:06d}", n)
    j.close()
    copies = trades // template - 1
    if copies > 0:
        _replicate(path, copies)
    return path


class Capped:
    """Times calls on one journal, each cut off after ``CALL_CAP_S`` (an O(n²) query on 100,000 trades
    takes hours): a cut-off call counts as ``CALL_CAP_S`` (the figure is then a lower bound) and that kind
    of call is not timed again; ``<figure>_capped_<n>`` says so in the results."""

    def __init__(self, journal: object) -> None:
        self.db = shim.connection(journal)
        self.deadline = float("inf")
        self.db.set_progress_handler(lambda: int(time.perf_counter() > self.deadline), 10_000)
        self.capped: set[str] = set()

    def time(self, kind: str, fn: Callable[[], object]) -> float | None:
        if kind in self.capped:
            return None
        t0 = time.perf_counter()
        self.deadline = t0 + CALL_CAP_S
        try:
            fn()
        except Exception:
            if time.perf_counter() < self.deadline:
                raise
            self.capped.add(kind)
            return CALL_CAP_S * 1000
        finally:
            self.deadline = float("inf")
        return (time.perf_counter() - t0) * 1000


def measure(path: Path, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    j = shim.open_journal(path)
    t0 = time.perf_counter()
    out[f"archived_{label}"], out[f"archive_longest_call_ms_{label}"] = shim.archive_steps(j)
    out[f"archive_s_{label}"] = time.perf_counter() - t0
    j.close()
    replays: list[float] = []
    capped: set[str] = set()
    for _ in range(scaled(5, 1)):
        t0 = time.perf_counter()
        j = shim.open_journal(path)
        c = Capped(j)
        took = c.time("replay", lambda: shim.replay(j))  # noqa: B023
        capped |= c.capped
        if took is not None:
            replays.append((time.perf_counter() - t0) * 1000 if "replay" not in c.capped else took)
        j.close()
        if capped:
            break
    j = shim.agent_journal(path)
    c = Capped(j)
    wa: list[float] = []
    ms: list[float] = []
    ot: list[float] = []
    for i in range(scaled(300)):
        pid = f"live-{label}-{i}"
        took = c.time("write_ahead", lambda: shim.write_ahead(j, pid, "t1", 9_000_000 + i, 100_000))  # noqa: B023
        if took is None:
            break
        wa.append(took)
        if "write_ahead" not in c.capped:
            t0 = time.perf_counter()
            if shim.mark_sent(j, f"open:{pid}"):
                ms.append((time.perf_counter() - t0) * 1000)
            shim.record_filled(j, f"open:{pid}", str(90_000_000 + i))
        if (i % 6 == 0 or "write_ahead" in c.capped) and (
            took := c.time("open_tickets", lambda: shim.open_tickets(j))
        ) is not None:
            ot.append(took)
        if "write_ahead" in c.capped:
            break
        time.sleep(GAP_S)  # orders arrive apart, as they do (the journal's background work runs between)
    j.close()
    for kind in capped | c.capped:
        out[f"{kind}_capped_{label}"] = 1.0
    out[f"write_ahead_p50_ms_{label}"] = percentile(wa, 50)
    out[f"write_ahead_p99_ms_{label}"] = percentile(wa, 99)
    if ms:
        out[f"mark_sent_p50_ms_{label}"] = percentile(ms, 50)
        out[f"mark_sent_p99_ms_{label}"] = percentile(ms, 99)
    before_send = [a + b for a, b in zip(wa, ms, strict=False)] if ms else wa
    out[f"before_send_p50_ms_{label}"] = percentile(before_send, 50)
    out[f"before_send_p99_ms_{label}"] = percentile(before_send, 99)
    out[f"open_tickets_p50_ms_{label}"] = percentile(ot, 50)
    out[f"open_tickets_p99_ms_{label}"] = percentile(ot, 99)
    out[f"replay_ms_{label}"] = percentile(replays, 50)
    out[f"file_mb_{label}"] = path.stat().st_size / 2**20
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    figures: dict[str, float] = {}
    try:
        for label, trades in (QUICK_SIZES if QUICK else SIZES).items():
            t0 = time.perf_counter()
            path = build(work, trades)
            figures[f"fill_s_{label}"] = time.perf_counter() - t0
            figures.update(measure(path, label))
            path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["write_ahead_p99_ratio_100k_vs_0"] = (
        figures["write_ahead_p99_ms_100k"] / figures["write_ahead_p99_ms_0"]
    )
    report(
        "journal",
        figures,
        {
            "write_ahead_p99_ms_100k": "target <= 1",
            "write_ahead_p99_ratio_100k_vs_0": "target <= 1.5",
            "before_send_p99_ms_100k": "the order's journal time, durable commit included",
        },
    )


if __name__ == "__main__":
    main()
