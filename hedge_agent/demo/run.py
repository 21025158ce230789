"""``hedge-agent demo``: plays the admin UI against the demo world, shows it live, checks the end state.

Per pair i the UI creates a trailed BUY position on PC-1's account and its SELL hedge on PC-2's account,
ENTRY and CLOSE actions for both, and makes the trailed position's ``triggerActionIds`` its own CLOSE and
the hedge's CLOSE. It then claims the ENTRY actions (both PCs open), later closes every third pair by
hand, and lets the trails fire: a fire on PC-1 closes the hedge on PC-2 (the cross-PC flow).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hedge_agent.display import fmt_price
from hedge_agent.domain.enums import Symbol

from .remote import SandboxProcess
from .world import DemoWorld, build_world

TRAIL_PIPS = {Symbol.USDJPY: 4.0, Symbol.EURUSD: 4.0, Symbol.EURGBP: 3.0, Symbol.XAUUSD: 40.0}
FINAL = {"CLOSED", "STOPPED", "CANCELED"}
ACTION_LEGEND = (
    "actions: ENTRY then CLOSE action of each leg; PEND = pending (waiting for its trigger or the UI), "
    "EXEC = executed, EXEC.. = executing, FAIL = failed"
)
CONSISTENT_MEANS = (
    "consistent = every cloud record agrees with the brokers, nothing is left in flight, "
    "and no order was sent twice"
)


@dataclass
class Pair:
    index: int
    symbol: Symbol
    main: str  # trailed position on PC-1's account
    hedge: str  # its hedge on PC-2's account
    entry_main: str
    entry_hedge: str
    close_main: str
    close_hedge: str

    @property
    def actions(self) -> tuple[str, str, str, str]:
        return (self.entry_main, self.entry_hedge, self.close_main, self.close_hedge)


async def seed_pairs(world: DemoWorld, n: int, first: int = 0) -> list[Pair]:
    ui, sub = world.ui, world.sub
    acc_a, acc_b = world.pcs[0].account_id, world.pcs[1].account_id
    pairs = []
    symbols = list(Symbol)
    for i in range(first, first + n):
        sym = symbols[i % len(symbols)]
        main = await ui.create_position(
            sub, acc_a, "ENTRY", sym.value, 0.1, TRAIL_PIPS[sym], memo=f"pair {i + 1}"
        )
        hedge = await ui.create_position(sub, acc_b, "EXIT", sym.value, 0.1, memo=f"pair {i + 1} hedge")
        entry_a = await ui.create_action(sub, acc_a, main["id"], "ENTRY")
        entry_b = await ui.create_action(sub, acc_b, hedge["id"], "ENTRY")
        close_a = await ui.create_action(sub, acc_a, main["id"], "CLOSE", trigger_position_id=main["id"])
        close_b = await ui.create_action(sub, acc_b, hedge["id"], "CLOSE", trigger_position_id=main["id"])
        await ui.set_triggers(main["id"], "PENDING", [close_a["id"], close_b["id"]])
        pairs.append(
            Pair(
                i + 1,
                sym,
                main["id"],
                hedge["id"],
                entry_a["id"],
                entry_b["id"],
                close_a["id"],
                close_b["id"],
            )
        )
    return pairs


async def claim_quietly(world: DemoWorld, action_id: str) -> bool:
    """Claim as the UI does; losing the race (a trail claimed it first) is fine."""
    try:
        await world.ui.claim_action(action_id)
        return True
    except Exception:
        return False


async def play(
    world: DemoWorld,
    pairs: list[Pair],
    duration: float | None,
    stop: asyncio.Event,
    by_hand: set[str] | None = None,
) -> None:
    for pair in pairs:  # open the pairs in a quick wave
        await claim_quietly(world, pair.entry_main)
        await claim_quietly(world, pair.entry_hedge)
        await asyncio.sleep(0.2)
    close_at = time.monotonic() + (duration * 0.4 if duration else 25.0)
    closed_by_hand = False
    while not stop.is_set():
        if not closed_by_hand and time.monotonic() >= close_at:
            for pair in pairs[::3]:
                if await claim_quietly(world, pair.close_main) and by_hand is not None:
                    by_hand.add(pair.main)
                if await claim_quietly(world, pair.close_hedge) and by_hand is not None:
                    by_hand.add(pair.hedge)
            closed_by_hand = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


# -- the live view -----------------------------------------------------------------------------------------


class View:
    def __init__(self, world: DemoWorld, pairs: list[Pair]) -> None:
        self.world = world
        self.pairs = pairs
        self.positions: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.by_hand: set[str] = set()  # position ids the script closed by hand

    async def refresh(self) -> None:
        """Two list queries, as the UI's pages would make them."""
        ui, sub = self.world.ui, self.world.sub
        wanted_p = {pid for pair in self.pairs for pid in (pair.main, pair.hedge)}
        wanted_a = {aid for pair in self.pairs for aid in pair.actions}
        with contextlib.suppress(Exception):
            self.positions.update({p["id"]: p for p in await ui.positions_of(sub) if p["id"] in wanted_p})
        with contextlib.suppress(Exception):
            self.actions.update({a["id"]: a for a in await ui.actions_of(sub) if a["id"] in wanted_a})

    def render(self, elapsed: float) -> Group:
        pc1, pc2 = self.world.pcs
        head = Table.grid(padding=(0, 2))
        for pc in self.world.pcs:
            st = pc.agent.status()
            terms = ", ".join(f"{t.name} {t.connection}" for t in st.terminals) or "starting"
            colour = {"ok": "green", "degraded": "yellow", "disconnected": "red"}[st.overall.value]
            head.add_row(
                Text(pc.name, style="bold"),
                Text(st.overall.value, style=colour),
                f"cloud {st.cloud}; {terms}; trailing {st.positions_trailing}",
            )
        f2o = sorted(x * 1000 for pc in self.world.pcs for x in pc.agent.executor.timing.frame_to_order)
        xpc = cross_pc_ms(self.world, self.pairs)
        head.add_row(
            "latency",
            "",
            f"frame->order p50 {ms(pct(f2o, 50), 2)} p99 {ms(pct(f2o, 99), 2)}; "
            f"trail on PC-1 -> order on PC-2 p50 {ms(pct(xpc, 50), 1)}  ({elapsed:.0f} s)",
        )
        table = Table(title="positions", expand=False, caption=ACTION_LEGEND)
        cols = (
            "pair",
            "pc",
            "symbol",
            "side",
            "status",
            "ticket",
            "entry",
            "trail",
            "stop",
            "closed by",
            "actions",
        )
        for col in cols:
            table.add_column(col)
        for pair in self.pairs:
            for pc, pid, acts in ((pc1, pair.main, (pair.entry_main, pair.close_main)),
                                  (pc2, pair.hedge, (pair.entry_hedge, pair.close_hedge))):  # fmt: skip
                p = self.positions.get(pid, {})
                trail = pc.agent.monitor.state(pid)
                spec = pc.agent.executor.bindings[pc.account_id].symbols.spec(pair.symbol)
                status = p.get("status", "?")
                if trail is None:
                    waiting = p.get("trailWidth") and status not in FINAL
                    trail_txt, stop_txt = ("waiting" if waiting else "-"), ""
                else:
                    trail_txt = "FIRED" if trail.fired else ("armed" if trail.armed else "watching")
                    stop_txt = fmt_price(spec, spec.to_price(trail.stop)) if trail.stop is not None else ""
                entry = p.get("entryPrice")
                style = {"OPEN": "green", "CLOSED": "dim", "STOPPED": "magenta", "CANCELED": "red"}.get(
                    status, "yellow"
                )
                table.add_row(
                    str(pair.index), pc.name, pair.symbol.value, "BUY" if pid == pair.main else "SELL",
                    Text(status, style=style), str(p.get("mtTicket") or ""),
                    fmt_price(spec, entry) if entry is not None else "", trail_txt, stop_txt,
                    closed_by(self.world, pair, pid, p, self.by_hand),
                    " ".join(action_label(self.actions.get(a, {}).get("status", "?")) for a in acts),
                )  # fmt: skip
        notices = [n for pc in self.world.pcs for n in pc.agent.status().notices][-4:]
        recent = Text("\n".join(f"[{n.level}] {n.title}: {n.message}" for n in notices), style="dim")
        return Group(head, table, recent)


def ms(value: float, digits: int) -> str:
    """A latency for people: ``-`` when there is no sample yet (never ``nan ms``)."""
    return "-" if value != value else f"{value:.{digits}f} ms"  # NaN is the only value not equal to itself


def action_label(status: str) -> str:
    return {"EXECUTING": "EXEC..", "EXECUTED": "EXEC", "PENDING": "PEND", "FAILED": "FAIL"}.get(
        status, status[:4]
    )


def closed_by(world: DemoWorld, pair: Pair, pid: str, p: dict[str, Any], by_hand: set[str]) -> str:
    """How a leg ended: the trail (on which PC), by hand, a stop-out, or a failed open."""
    status = p.get("status")
    if status == "STOPPED":
        return f"stop-out ({p.get('exitReason') or 'broker'})"
    if status == "CANCELED":
        return "open failed"
    if status != "CLOSED":
        return ""
    fired_on_pc1 = world.pcs[0].agent.executor.timing.fired
    if pair.close_main in fired_on_pc1 or pair.close_hedge in fired_on_pc1:
        return "trail (PC-1)"
    if pid in by_hand:
        return "by hand"
    return "closed"


def pct(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    data = sorted(samples)
    k = (len(data) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def cross_pc_ms(world: DemoWorld, pairs: list[Pair]) -> list[float]:
    """Trail fired on PC-1 -> PC-2 handed the hedge's close order to its terminal."""
    fired = world.pcs[0].agent.executor.timing.fired
    orders = world.pcs[1].agent.executor.timing.orders
    out = []
    for pair in pairs:
        t0, t1 = fired.get(pair.close_hedge), orders.get(pair.hedge)
        if t0 is not None and t1 is not None and t1 >= t0:
            out.append((t1 - t0) * 1000)
    return sorted(out)


# -- the end: settle, check, report ------------------------------------------------------------------------


async def settle(view: View, timeout: float = 20.0) -> None:
    """Wait until no record is in flight (EXECUTING actions, OPENING/CLOSING positions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await view.refresh()
        busy = [p for p in view.positions.values() if p["status"] in ("OPENING", "CLOSING")]
        busy += [a for a in view.actions.values() if a["status"] == "EXECUTING"]
        if not busy:
            return
        await asyncio.sleep(0.5)


def leg_pl(world: DemoWorld, account_id: str, ticket: str | None) -> float | None:
    """Realised (closed) or floating (open) P/L of one leg, in the account's currency, with commission."""
    if not ticket:
        return None
    broker = next(pc.broker for pc in world.pcs if pc.account_id == account_id)
    live = next((x for x in broker.positions() if str(x.ticket) == ticket), None)
    if live is not None:
        return float(live.profit)
    deals = [d for d in broker.deals() if str(d.position) == ticket]
    return sum(d.profit + d.commission for d in deals) if deals else None


def pair_summary(world: DemoWorld, view: View, pair: Pair) -> str:
    """``pair 1 USDJPY: opened BUY 0.10 at 150.123 (PC-1) + SELL ... (PC-2); closed: trail (PC-1); P/L +1.20 USD``."""
    currency = world.pcs[0].broker.account().currency
    legs, ends, total, known = [], [], 0.0, True
    for pc, pid, side in ((world.pcs[0], pair.main, "BUY"), (world.pcs[1], pair.hedge, "SELL")):
        p = view.positions.get(pid, {})
        spec = pc.agent.executor.bindings[pc.account_id].symbols.spec(pair.symbol)
        entry = p.get("entryPrice")
        legs.append(f"{side} {p.get('volume', 0):.2f} at {fmt_price(spec, entry)} ({pc.name})" if entry else
                    f"{side} not opened ({pc.name}, {p.get('status', '?')})")  # fmt: skip
        ends.append(closed_by(world, pair, pid, p, view.by_hand) or f"still {p.get('status', '?')}")
        pl = leg_pl(world, pc.account_id, p.get("mtTicket"))
        if pl is None:
            known = known and not p.get("mtTicket")
        else:
            total += pl
    end = ends[0] if ends[0] == ends[1] else f"{ends[0]} / {ends[1]}"
    money = f"{total:+.2f} {currency}" if known else "unknown"
    return f"pair {pair.index} {pair.symbol.value}: opened {' + '.join(legs)}; closed: {end}; P/L {money}"


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def check(world: DemoWorld, view: View) -> tuple[dict[str, Any], list[str]]:
    problems = []
    brokers = {pc.account_id: pc.broker for pc in world.pcs}
    opened = closed = 0
    for pid, p in view.positions.items():
        broker = brokers[p["accountId"]]
        live = {str(x.ticket) for x in broker.positions()}
        if p["mtTicket"]:
            opened += 1
        if p["status"] in ("CLOSED", "STOPPED"):
            closed += 1
        if p["status"] == "OPEN" and p["mtTicket"] not in live:
            problems.append(f"position {pid} is OPEN in the cloud but not on its terminal")
        if p["status"] in FINAL and p["mtTicket"] in live:
            problems.append(f"position {pid} is {p['status']} in the cloud but still open on its terminal")
        if p["status"] in ("OPENING", "CLOSING"):
            problems.append(f"position {pid} is still {p['status']}")
    statuses = [a["status"] for a in view.actions.values()]
    if "EXECUTING" in statuses:
        problems.append(f"{statuses.count('EXECUTING')} action(s) still EXECUTING")
    duplicates = sum(pc.broker.duplicate_orders() for pc in world.pcs)
    if duplicates:
        problems.append(f"{duplicates} duplicate order(s) in the brokers' order logs")
    failed = statuses.count("FAILED")
    if failed:
        problems.append(f"{failed} action(s) FAILED")
    f2o = [x * 1000 for pc in world.pcs for x in pc.agent.executor.timing.frame_to_order]
    xpc = cross_pc_ms(world, view.pairs)
    report: dict[str, Any] = {
        "actions_executed": statuses.count("EXECUTED"),
        "actions_failed": failed,
        "actions_pending": statuses.count("PENDING"),
        "duplicate_orders": duplicates,
        "positions_opened": opened,
        "positions_closed": closed,
        "trails_fired": sum(pc.agent.monitor.fired for pc in world.pcs),
        "orders_sent": sum(len(pc.broker.order_log) for pc in world.pcs),
        "frame_to_order_ms": {"p50": pct(f2o, 50), "p99": pct(f2o, 99), "n": len(f2o)},
        "cross_pc_trigger_ms": {"p50": pct(xpc, 50), "p99": pct(xpc, 99), "n": len(xpc)},
        "consistent": not problems,
        "consistent_means": CONSISTENT_MEANS,
        "problems": problems,
        "pairs": [pair_summary(world, view, pair) for pair in view.pairs],
    }
    return _no_nan(report), problems


async def run_demo(
    duration: float | None, report_path: str | None, positions: int, seed: int, console: Console | None = None
) -> int:
    console = console or Console()
    random.seed(seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hedge-agent-demo-") as tmp:
        async with SandboxProcess() as sb:
            console.print(f"sandbox backend on {sb.info.graphql_url}; starting PC-1 and PC-2 ...")
            world = await build_world(sb, Path(tmp), seed=seed)
            pairs = await seed_pairs(world, positions)
            view = View(world, pairs)
            script = asyncio.create_task(play(world, pairs, duration, stop, view.by_hand))
            if duration is not None:
                loop.call_later(duration, stop.set)
            live_ok = console.is_terminal
            with (
                Live(view.render(0), console=console, refresh_per_second=4, transient=False)
                if live_ok
                else contextlib.nullcontext() as live
            ):  # type: ignore[attr-defined]
                last_line = 0.0
                while not stop.is_set():
                    await view.refresh()
                    elapsed = time.monotonic() - started
                    if live is not None:
                        live.update(view.render(elapsed))
                    elif elapsed - last_line >= 5:
                        last_line = elapsed
                        st = [p["status"] for p in view.positions.values()]
                        console.print(
                            f"[{elapsed:5.1f} s] open {st.count('OPEN')}, closed {st.count('CLOSED')}, "
                            f"stopped {st.count('STOPPED')}, trails fired {sum(pc.agent.monitor.fired for pc in world.pcs)}"
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
            await script
            console.print("stopping: letting in-flight work settle ...")
            await settle(view)
            await world.stop()
            report, problems = check(world, view)
    report["duration_s"] = round(time.monotonic() - started, 1)
    console.print(view.render(report["duration_s"]))
    for line in summary_lines(report):
        console.print(line, markup=False, highlight=False)
    for problem in problems:
        console.print(f"[red]inconsistent:[/red] {problem}")
    path = Path(report_path) if report_path else default_report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    console.print(f"JSON report: {path}", markup=False, highlight=False)
    console.print(
        "[green]the world ended consistent[/green]"
        if not problems
        else "[red]the world is NOT consistent[/red]"
    )
    return 0 if not problems else 1


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The end of the demo, for people: what each pair did, the counts, the latencies, what was checked."""
    f2o, xpc = report["frame_to_order_ms"], report["cross_pc_trigger_ms"]

    def fig(d: dict[str, Any], key: str) -> str:
        return "-" if d.get(key) is None else f"{d[key]:.1f} ms"

    lines = ["", "What happened:"]
    lines += [f"  {line}" for line in report.get("pairs", [])]
    lines += [
        f"  {report['positions_opened']} positions opened, {report['positions_closed']} closed; "
        f"{report['trails_fired']} trails fired; {report['orders_sent']} orders sent, "
        f"{report['duplicate_orders']} duplicates",
        f"  actions: {report['actions_executed']} executed, {report['actions_failed']} failed, "
        f"{report['actions_pending']} still pending (their trigger never fired)",
        f"  latency: cloud frame -> order p50 {fig(f2o, 'p50')}, p99 {fig(f2o, 'p99')} ({f2o['n']} orders); "
        f"trail on PC-1 -> order on PC-2 p50 {fig(xpc, 'p50')} ({xpc['n']})",
        f"  {'consistent' if report['consistent'] else 'NOT consistent'} ({CONSISTENT_MEANS})",
    ]
    return lines


def default_report_path() -> Path:
    from hedge_agent.logs import default_log_dir

    return default_log_dir() / "demo" / "report.json"


def main(duration: float | None, report: str | None, positions: int, seed: int) -> int:
    from hedge_agent.logs import default_log_dir, setup_logging

    # the live view owns the screen: logs go to the demo's own file (never the real agent's), with the PC
    log_file = setup_logging("INFO", default_log_dir() / "demo", console=False, file_name="demo.log")
    Console(stderr=True).print(f"demo log (one JSON line per event, with its PC): {log_file}", markup=False)
    try:
        return asyncio.run(run_demo(duration, report, positions, seed))
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
