"""Cold start: a real ``hedge-agent run --simulate`` process, from its start to caught up (issue 16).

The user has ``RECORDS`` active positions (PENDING, on the account this PC trades) on the sandbox, which
runs in its own process. The agent's own log lines (read from its stderr as they come, timed here) mark
the steps: ``cognito.signed_in``, then ``cloud.link_state`` ``connected``, which the client logs once the
subscriptions are acknowledged and the catch-up queries have been delivered.

* ``cold_start_s_1000``: process start -> caught up (target <= 2 s);
* ``cold_start_signed_in_s_1000``: process start -> signed in.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

from bench.common import own_data_dir, report, scaled
from hedge_agent.demo.admin import AdminUI
from hedge_agent.demo.remote import SandboxProcess
from hedge_agent.demo.world import write_sandbox_toml
from hedge_agent.logs import setup_logging

RECORDS = 1_000
SIGNED_IN = re.compile(r"cognito\.signed_in")
CAUGHT_UP = re.compile(r"cloud\.link_state.*connected")
TIMEOUT_S = 120.0


async def cold_start(sb: SandboxProcess, work: Path, records: int) -> dict[str, float]:
    ui, sub = AdminUI(sb.graphql, "alice"), sb.info.user("alice").sub
    acc = (await ui.create_account(sub, "CS", "MT5", "cold start", 1e9))["id"]
    for i in range(0, records, 25):
        await asyncio.gather(
            *(ui.create_position(sub, acc, "ENTRY", "EURUSD", 0.01) for _ in range(min(25, records - i)))
        )
    terminal: dict[str, object] = {
        "name": "cs", "kind": "mt5", "path": "C:/mt5/terminal64.exe", "account_id": acc, "login": 1001, "seed": 1,
    }  # fmt: skip
    config = write_sandbox_toml(work / "cs.toml", sb.info, "alice", [terminal], log_level="INFO")
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedge_agent", "run", "--config", str(config), "--simulate", "--no-tray",
        "--password-stdin", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=own_data_dir(work),
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(sb.info.user("alice").password.encode() + b"\n")
    await proc.stdin.drain()
    proc.stdin.close()
    marks: dict[str, float] = {}
    tail: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT_S):
            while "caught_up" not in marks:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("the agent exited before catching up:\n" + "".join(tail[-20:]))
                tail.append(line)
                now = time.perf_counter() - t0
                if "signed_in" not in marks and SIGNED_IN.search(line):
                    marks["signed_in"] = now
                if CAUGHT_UP.search(line) and "link_state" in line and "state=connected" in line:
                    marks["caught_up"] = now
    finally:
        drain = asyncio.create_task(proc.stderr.read())  # keep the pipe from filling while it stops
        proc.terminate()
        await proc.wait()
        await drain
    return {
        f"cold_start_s_{records}": marks["caught_up"],
        f"cold_start_signed_in_s_{records}": marks.get("signed_in", float("nan")),
    }


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-cold-start-"))
    setup_logging("WARNING", work / "bench-logs", console=False)
    async with SandboxProcess() as sb:
        figures = await cold_start(sb, work, scaled(RECORDS, 20))
    if scaled(RECORDS, 20) != RECORDS:  # the smoke run still writes the key the README quotes
        figures = {k.rsplit("_", 1)[0] + "_1000": v for k, v in figures.items()}
    report("engine", figures, {"cold_start_s_1000": "target <= 2"}, merge=True)


if __name__ == "__main__":
    asyncio.run(main())
