"""One position with a huge trigger list must not stall the other orders (issue 16).

The real agent (``make_agent``) on the sandbox in its own process. A trailed position on this PC's
account carries ``TRIGGERS`` trigger actions (ENTRY actions of a hedge on an account of another PC, so a
won claim starts nothing here). An unrelated open is timed from the user's OPENING write to the cloud
showing it OPEN: first idle, then right after the trail fires, while the claims settle.

* ``huge_fire_open_ratio``: the open made right after the fire / the median idle open (target <= 2); the
  opens after it are timed too (``huge_fire_later_open_ms``, their median): once the first one has got
  through, the rest may be quick even while the fire still settles;
* ``huge_fire_open_ms`` / ``idle_open_ms``: the first open after the fire / the idle median;
* ``huge_fire_settle_s``: fire -> every claim settled (a version that refuses a list over its cap
  settles at once, as a trigger failure: ``huge_fire_trigger_failures``);
* ``cap_fire_*``: the same with a list at the cap (``AT_CAP`` = 100 ids), which is claimed (at most 8
  claims in flight at once).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import shim
from bench.bench_engine import sim
from bench.common import report, scaled
from hedge_agent.demo.admin import AdminUI
from hedge_agent.demo.remote import SandboxProcess
from hedge_agent.demo.world import DEMO_RISK, make_agent
from hedge_agent.domain.enums import Symbol
from hedge_agent.domain.models import parse_position
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.logs import setup_logging

TRIGGERS = 3_000
AT_CAP = 100  # hedge_agent.engine.triggers.MAX_TRIGGER_IDS
OPENS = 5
SETTLE_TIMEOUT_S = 300.0


async def batched(coros: list[Any], size: int = 25) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(coros), size):
        out += await asyncio.gather(*coros[i : i + size])
    return out


async def one_open(ui: AdminUI, sub: str, acc: str) -> float:
    p = await ui.create_position(sub, acc, "ENTRY", "EURUSD", 0.01)
    t0 = time.perf_counter()
    await ui.set_position_status(p["id"], "PENDING", "OPENING")
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        if (await ui.position(p["id"]))["status"] == "OPEN":
            return (time.perf_counter() - t0) * 1000
        await asyncio.sleep(0.005)
    return float("inf")


async def run(sb: SandboxProcess, work: Path, triggers: int, opens: int) -> dict[str, float]:
    ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
    acc = (await ui.create_account(sub, "HF", "MT5", "huge-fire", 1e9))["id"]
    other = (await ui.create_account(sub, "HX", "MT5", "other pc", 1e9))["id"]
    hedge = await ui.create_position(sub, other, "EXIT", "USDJPY", 0.01)
    actions = await batched([ui.create_action(sub, other, hedge["id"], "ENTRY") for _ in range(triggers)])
    term = sim("huge-fire", 7)
    agent = await make_agent(sb.info, "alice", {acc: term}, work / "hf.sqlite3", risk=DEMO_RISK)
    task = asyncio.create_task(agent.run())
    await agent.started.wait()
    await asyncio.sleep(1.0)
    idle = [await one_open(ui, sub, acc) for _ in range(opens)]

    term.broker.set_quote("USDJPY", 150.000)
    main = await ui.create_position(sub, acc, "ENTRY", "USDJPY", 0.01, 1.0, [a["id"] for a in actions])
    opened = parse_position(await ui.set_position_status(main["id"], "PENDING", "OPENING"))
    while shim.trail_state(agent, opened.id) is None:
        await asyncio.sleep(0.01)
    state = shim.trail_state(agent, opened.id)
    spec = SymbolTable().spec(Symbol.USDJPY)
    for bid in (state.entry + state.width, state.entry + 3 * state.width):  # arm, then a new peak
        term.broker.set_quote("USDJPY", float(spec.to_price(bid)))
        await asyncio.sleep(0.1)
    term.broker.set_quote("USDJPY", float(spec.to_price(state.entry + 2 * state.width)))  # through the stop
    first = actions[0]["id"]
    while not shim.fired(agent, opened.id, first):
        await asyncio.sleep(0.001)
    fired_at = time.perf_counter()
    busy = [await one_open(ui, sub, acc) for _ in range(opens)]
    while await shim.unsettled_claims(agent) and time.perf_counter() - fired_at < SETTLE_TIMEOUT_S:
        await asyncio.sleep(0.05)
    settle_s = time.perf_counter() - fired_at
    failures = shim.trigger_failures(agent)
    agent.request_stop()
    await task
    return {
        "huge_fire_open_ratio": busy[0] / statistics.median(idle),
        "huge_fire_open_ms": busy[0],
        "huge_fire_later_open_ms": statistics.median(busy[1:]) if len(busy) > 1 else float("nan"),
        "huge_fire_open_max_ms": max(busy),
        "idle_open_ms": statistics.median(idle),
        "huge_fire_settle_s": settle_s,
        "huge_fire_triggers": float(triggers),
        "huge_fire_trigger_failures": float(failures),
    }


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-huge-fire-"))
    setup_logging("WARNING", work / "logs", console=False)
    async with SandboxProcess() as sb:
        figures = await run(sb, work, scaled(TRIGGERS, 20), scaled(OPENS, 2))
        # a list at the cap (100 ids) is claimed: the bounded claims must not slow the open either
        at_cap = await run(sb, work / "cap", scaled(AT_CAP, 10), scaled(OPENS, 2))
    figures.update({k.replace("huge_fire", "cap_fire"): v for k, v in at_cap.items() if "huge_fire" in k})
    report("engine", figures, {"huge_fire_open_ratio": "target <= 2"}, merge=True)


if __name__ == "__main__":
    asyncio.run(main())
