"""Engine figures over the sandbox backend running in its own process (as the cloud would be):

* frame_to_order_p50/p99_ms: subscription frame received -> order handed to the terminal;
* frame_to_order_p50/p99_ms_loaded: the same while one CPU-bound process per core runs beside the agent
  (a trader's PC runs busy MetaTrader terminals);
* cross_pc_trigger_p50_ms: a trail fires on agent A -> agent B hands the triggered action's order over;
* cadence_lateness_p99_ms: the 100 ms cadence with 1,000 trailed positions and live ticks;
* rss_mb_4_terminals_1000_positions: a real ``hedge-agent run --simulate`` process, 4 terminals, 1,000
  open trailed positions.

``BENCH_CADENCE_S`` sets the cadence run (default 60 s; 0 skips it). ``BENCH_ENGINE_PHASES`` (comma
separated: f2o, loaded, cross_pc, rss, cadence, commit) runs only those. The huge fire and the cold start
are ``bench.bench_huge_fire`` and ``bench.bench_cold_start`` (same ``engine.json``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench import shim
from bench.common import own_data_dir, percentile, report, scaled
from hedge_agent.demo.admin import AdminUI
from hedge_agent.demo.remote import SandboxProcess
from hedge_agent.demo.world import DEMO_RISK, make_agent, write_sandbox_toml
from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.models import parse_position
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.engine.cadence import Cadence
from hedge_agent.logs import setup_logging
from hedge_agent.terminals.simulated import SimBroker, SimulatedTerminal


def sim(name: str, seed: int, walk: bool = False) -> SimulatedTerminal:
    return SimulatedTerminal(
        name, SimBroker(seed=seed), SymbolTable(), tick_interval=0.05, walk=walk, seed=seed
    )


def cpu_hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """One busy-looping process per core: the busy neighbours of a trader's PC."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(10)


async def frame_to_order(sb: SandboxProcess, work: Path, n: int = 200, label: str = "f2o") -> list[float]:
    ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
    acc = (await ui.create_account(sub, "1", "MT5", label, 1e7))["id"]
    term = sim(label, 1)
    agent = await make_agent(sb.info, "alice", {acc: term}, work / f"{label}.sqlite3", risk=DEMO_RISK)
    task = asyncio.create_task(agent.run())
    await agent.started.wait()
    await asyncio.sleep(1.0)
    for _ in range(n):
        p = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.01)
        await ui.set_position_status(p["id"], "PENDING", "OPENING")
        await asyncio.sleep(0.02)
    timing = shim.timing(agent)
    deadline = time.monotonic() + 30
    while len(timing.frame_to_order) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    agent.request_stop()
    await task
    return [x * 1000 for x in timing.frame_to_order]


async def cross_pc(sb: SandboxProcess, work: Path, n: int = 30) -> list[float]:
    ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
    acc_a = (await ui.create_account(sub, "A", "MT5", "pc-a", 1e7))["id"]
    acc_b = (await ui.create_account(sub, "B", "MT5", "pc-b", 1e7))["id"]
    term_a, term_b = sim("pc-a", 2), sim("pc-b", 3)
    a = await make_agent(sb.info, "alice", {acc_a: term_a}, work / "a.sqlite3", risk=DEMO_RISK)
    b = await make_agent(sb.info, "alice", {acc_b: term_b}, work / "b.sqlite3", risk=DEMO_RISK)
    tasks = [asyncio.create_task(x.run()) for x in (a, b)]
    await a.started.wait()
    await b.started.wait()
    await asyncio.sleep(1.0)
    samples = []
    for _ in range(n):
        term_a.broker.set_quote("USDJPY", 150.000)
        hedge = await ui.create_position(sub, acc_b, "EXIT", "USDJPY", 0.01)
        trig = await ui.create_action(sub, acc_b, hedge["id"], "ENTRY")
        main = await ui.create_position(sub, acc_a, "ENTRY", "USDJPY", 0.01, 1.0, [trig["id"]])
        opened = parse_position(await ui.set_position_status(main["id"], "PENDING", "OPENING"))
        while shim.trail_state(a, opened.id) is None:
            await asyncio.sleep(0.01)
        state = shim.trail_state(a, opened.id)
        assert state is not None
        spec = SymbolTable().spec(Symbol.USDJPY)
        for bid in (state.entry + state.width, state.entry + 3 * state.width):  # arm, then a new peak
            term_a.broker.set_quote("USDJPY", float(spec.to_price(bid)))
            await asyncio.sleep(0.1)
        term_a.broker.set_quote(
            "USDJPY", float(spec.to_price(state.entry + 2 * state.width))
        )  # through the stop
        deadline = time.monotonic() + 10
        while hedge["id"] not in shim.timing(b).orders and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        fired, ordered = shim.timing(a).fired.get(trig["id"]), shim.timing(b).orders.get(hedge["id"])
        if fired is not None and ordered is not None:
            samples.append((ordered - fired) * 1000)
    for x in (a, b):
        x.request_stop()
    await asyncio.gather(*tasks)
    return samples


async def cadence(seconds: float, positions: int = 1_000) -> tuple[list[float], float]:
    """The monitor's cadence loop as the agent runs it, with live ticks on 4 symbols."""
    from hedge_agent.domain.trail_book import TrailBook
    from hedge_agent.domain.trailing import Quote, new_trail

    term = sim("cad", 4, walk=True)
    await term.connect()
    await term.watch(list(Symbol))
    book = TrailBook(stale_after=5.0)
    syms = list(Symbol)
    table = SymbolTable()
    for i in range(positions):
        s = syms[i % 4]
        spec = table.spec(s)
        entry = spec.to_points(term.broker.quote(s.value).bid)
        book.add(new_trail(f"p{i}", s, list(Side)[i % 2], entry, 50))

    async def pump() -> None:
        async for q in term.quotes():
            spec = table.spec(q.symbol)
            book.on_quote(
                Quote(q.symbol, spec.to_points(q.bid), spec.to_points(q.ask), q.time), time.monotonic()
            )
            book.take_changed()

    pumper = asyncio.create_task(pump())
    lateness: list[float] = []
    start = time.perf_counter()
    first = None
    last_scheduled = 0.0
    async for tick in Cadence(period_s=0.1):
        book.sweep(time.monotonic())
        book.take_changed()
        lateness.append(tick.lateness * 1000)
        if first is None:
            first = tick.scheduled
        last_scheduled = tick.scheduled
        if tick.actual - start >= seconds:
            break
    pumper.cancel()
    await term.shutdown()
    drift = (time.perf_counter() - start) - (last_scheduled - (first or 0)) - 0.1
    return lateness, drift * 1000


async def rss(sb: SandboxProcess, work: Path, positions: int = 1_000, terminals: int = 4) -> float:
    ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
    info = sb.info
    accounts = [
        (await ui.create_account(sub, f"R{i}", "MT5", f"rss {i}", 1e9))["id"] for i in range(terminals)
    ]
    mt5s: list[dict[str, object]] = [
        {"name": f"t{i}", "kind": "mt5", "path": f"C:/mt5-{i}/terminal64.exe", "account_id": acc, "login": 1000 + i,
         "seed": i}
        for i, acc in enumerate(accounts)
    ]  # fmt: skip
    risk: dict[str, object] = {
        "max_orders_per_minute": 100000, "max_open_positions": 100000, "max_volume_per_order": 1000
    }  # fmt: skip
    config = write_sandbox_toml(work / "rss.toml", info, "alice", mt5s, risk=risk)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--simulate", "--no-tray",
        "--password-stdin", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=(work / "rss-agent.err").open("wb"),
        env=own_data_dir(work),
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(info.user("alice").password.encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    await asyncio.sleep(3.0)
    ids = []
    symbols = list(Symbol)
    for i in range(positions):
        p = await ui.create_position(sub, accounts[i % terminals], "ENTRY", symbols[i % 4].value, 0.01, 50.0)
        await ui.set_position_status(p["id"], "PENDING", "OPENING")
        ids.append(p["id"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (await ui.position(ids[-1]))["status"] == "OPEN":
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(5.0)  # trails tracked, ticks flowing
    if proc.returncode is not None:
        tail = (work / "rss-agent.err").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the agent exited ({proc.returncode}) before its RSS was read:\n{tail}")
    rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
    proc.terminate()
    await proc.wait()
    return rss_mb


def journal_commit_ms(work: Path, n: int = 200) -> list[float]:
    """What an order's journal writes cost on this disk before it leaves: the write-ahead and the mark
    sent, together (whichever carries the version's one durable commit)."""
    journal = shim.open_journal(work / "commit.sqlite3")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        shim.write_ahead(journal, str(i), "t", i, None)
        shim.mark_sent(journal, f"open:{i}")
        out.append((time.perf_counter() - t0) * 1000)
    journal.close()
    return out


PHASES = ("f2o", "loaded", "cross_pc", "rss", "cadence", "commit")


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    setup_logging("WARNING", work / "logs", console=False)
    phases = set(filter(None, os.environ.get("BENCH_ENGINE_PHASES", ",".join(PHASES)).split(",")))
    if unknown := phases - set(PHASES):
        raise SystemExit(f"BENCH_ENGINE_PHASES: unknown phase(s) {', '.join(sorted(unknown))}")
    seconds = float(os.environ.get("BENCH_CADENCE_S", "60")) if "cadence" in phases else 0.0
    figures: dict[str, float] = {}
    if seconds > 0:
        # the cadence first, in a clean process, as the agent runs it: the sandbox phases below leave a
        # large heap of benchmark garbage whose collection pauses are not the agent's
        lateness, _drift = await cadence(seconds)
        figures |= {
            "cadence_lateness_p50_ms": percentile(lateness, 50),
            "cadence_lateness_p99_ms": percentile(lateness, 99),
            "cadence_seconds": seconds,
        }
    async with SandboxProcess() as sb:
        if "f2o" in phases:
            f2o = await frame_to_order(sb, work, scaled(200))
            figures |= {
                "frame_to_order_p50_ms": percentile(f2o, 50),
                "frame_to_order_p99_ms": percentile(f2o, 99),
            }
        if "loaded" in phases:
            hogs = cpu_hogs(os.cpu_count() or 2)
            try:
                loaded = await frame_to_order(sb, work, scaled(200), label="f2o-loaded")
            finally:
                stop(hogs)
            figures |= {
                "frame_to_order_p50_ms_loaded": percentile(loaded, 50),
                "frame_to_order_p99_ms_loaded": percentile(loaded, 99),
            }
        if "cross_pc" in phases:
            xpc = await cross_pc(sb, work, scaled(30))
            figures |= {
                "cross_pc_trigger_p50_ms": percentile(xpc, 50),
                "cross_pc_trigger_p99_ms": percentile(xpc, 99),
            }
        if "rss" in phases:
            figures["rss_mb_4_terminals_1000_positions"] = await rss(sb, work, scaled(1_000, 20))
    if "commit" in phases:
        fsync = journal_commit_ms(work, scaled(200))
        figures |= {
            "journal_commit_p50_ms": percentile(fsync, 50),
            "journal_commit_p99_ms": percentile(fsync, 99),
        }
    report(
        "engine",
        figures,
        {
            "frame_to_order_p50_ms": "target <= 1",
            "frame_to_order_p99_ms": "target <= 3",
            "frame_to_order_p99_ms_loaded": "target <= 10",
            "cross_pc_trigger_p50_ms": "target <= 15",
            "cadence_lateness_p99_ms": "target <= 5",
            "rss_mb_4_terminals_1000_positions": "target <= 100",
        },
        merge=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
