"""Soak: the demo world for a while (``SOAK_S``, default 120 s) under random, bounded, loopback-only
faults, then the invariant is checked against the journals, the brokers' order logs and the sandbox
records. Samples RSS, open files and sockets. Writes bench/results/soak.json."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import report
from hedge_agent.demo.run import Pair, View, check, claim_quietly, seed_pairs, settle
from hedge_agent.demo.world import DemoWorld, build_world
from hedge_agent.logs import setup_logging
from hedge_agent.sandbox import Sandbox
from hedge_agent.terminals.simulated import Fault, FaultKind


async def inject_faults(world: DemoWorld, sb: Sandbox, stop: asyncio.Event, rng: random.Random) -> list[str]:
    broker_a, broker_b = world.pcs[0].broker, world.pcs[1].broker
    ea = world.ea
    assert ea is not None

    async def drop_sockets() -> None:
        await sb.drop_sockets()

    async def mutation_failures() -> None:
        sb.fail_next_mutations(rng.randint(1, 2), "InternalFailure")

    async def slow_mutations() -> None:
        sb.delay_next_mutations(2, 1.0)

    async def requote() -> None:
        rng.choice([broker_a, broker_b]).inject(Fault(FaultKind.REQUOTE, times=rng.randint(1, 2)))

    async def timeout_but_filled() -> None:
        broker_a.inject(Fault(FaultKind.TIMEOUT))

    async def ea_drop_after_execute() -> None:
        ea.drop_after_execute = 1

    async def ea_duplicate_results() -> None:
        ea.duplicate_results = True
        await asyncio.sleep(3)
        ea.duplicate_results = False

    async def ea_late_results() -> None:
        ea.result_delay_s = 0.5
        await asyncio.sleep(3)
        ea.result_delay_s = 0.0

    faults = [drop_sockets, mutation_failures, slow_mutations, requote, timeout_but_filled,
              ea_drop_after_execute, ea_duplicate_results, ea_late_results]  # fmt: skip
    done: list[str] = []
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(2.0, 5.0))
        except TimeoutError:
            fault = rng.choice(faults)
            done.append(fault.__name__)
            await fault()
    return done


async def play(world: DemoWorld, pairs: list[Pair], stop: asyncio.Event, rng: random.Random) -> None:
    while not stop.is_set():
        try:
            new = await seed_pairs(world, 1, first=len(pairs))
        except Exception as e:  # the UI's own request hit an injected fault: like a user, try again
            print("ui request failed:", str(e)[:120])
            await asyncio.sleep(0.5)
            continue
        pairs.extend(new)
        await claim_quietly(world, new[0].entry_main)
        await claim_quietly(world, new[0].entry_hedge)
        if len(pairs) > 3 and rng.random() < 0.4:
            old = rng.choice(pairs[:-3])
            await claim_quietly(world, old.close_main)
            await claim_quietly(world, old.close_hedge)
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(1.0, 3.0))
        except TimeoutError:
            pass


async def main() -> None:
    seconds = float(os.environ.get("SOAK_S", "120"))
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    setup_logging("INFO", work / "logs", console=False)
    me = psutil.Process()
    samples: list[tuple[float, float, int, int]] = []
    async with Sandbox() as sb:
        world = await build_world(sb, work, seed=11)
        pairs: list[Pair] = []
        stop = asyncio.Event()
        player = asyncio.create_task(play(world, pairs, stop, rng))
        faulter = asyncio.create_task(inject_faults(world, sb, stop, rng))
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            samples.append((time.monotonic() - started, me.memory_info().rss / 2**20, me.num_fds(),
                            len(me.net_connections())))  # fmt: skip
            await asyncio.sleep(5)
        stop.set()
        await player
        faults = await faulter
        view = View(world, pairs)
        await settle(view, timeout=45)
        crashes = sum(
            1
            for pc in world.pcs
            for n in pc.agent.status().notices
            if n.title in ("internal error",) or "restarting" in n.title
        ) + sum(1 for pc in world.pcs if pc.task is not None and pc.task.done())
        await world.stop()
        result, problems = check(world, view)
    warm = [s for s in samples if s[0] >= 15] or samples
    statuses = [a["status"] for a in view.actions.values()]
    lost = sum(1 for s in statuses if s == "EXECUTING")
    for p in problems:
        print("problem:", p)
    report(
        "soak",
        {
            "duplicate_orders": result["duplicate_orders"],
            "lost_actions": lost,
            "crashes": crashes,
            "rss_growth_mb": warm[-1][1] - warm[0][1],
            "rss_mb_end": samples[-1][1],
            "open_files_end": samples[-1][2],
            "sockets_end": samples[-1][3],
            "faults_injected": len(faults),
            "actions_total": len(statuses),
            "actions_executed": result["actions_executed"],
            "actions_failed": result["actions_failed"],
            "orders_sent": result["orders_sent"],
            "trails_fired": result["trails_fired"],
            "consistent": 1 if not problems else 0,
            "seconds": seconds,
        },
        {"duplicate_orders": "must be 0", "lost_actions": "must be 0", "crashes": "must be 0"},
    )


if __name__ == "__main__":
    asyncio.run(main())
