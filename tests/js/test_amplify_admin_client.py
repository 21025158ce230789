"""The Amplify v6 JavaScript client (a real admin UI's library) against the sandbox and a running agent.

``admin_client.test.mjs`` runs under Node's test runner; this wrapper starts the sandbox and the agent
(``app.assemble`` through the scenario harness) and hands the endpoints over. Without Node, or without the
npm packages installed (``make js``, which ``make test`` and ``.ci/run`` run when Node is present), it is
skipped and says why; in CI a missing install is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from hedge_agent.sandbox import Sandbox
from tests.scenarios.harness import World, sim_terminal

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "admin_client.test.mjs"


def _node() -> str:
    node = shutil.which("node")
    installed = (HERE / "node_modules" / "aws-amplify" / "package.json").is_file()
    if node is None:
        pytest.skip("SKIPPED: Node.js is not installed, so the Amplify JS admin client test cannot run")
    if not installed:
        message = "the Amplify JS packages are not installed in tests/js: run `make js` (npm ci)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(f"SKIPPED: {message}")
    return node


@pytest.mark.slow
async def test_the_amplify_v6_admin_client_drives_the_sandbox_and_sees_the_agent(tmp_path: Path) -> None:
    node = _node()
    async with Sandbox() as sb:
        world = World(sb, tmp_path)
        try:
            account = await world.account("alice", "77001")
            await world.start_agent("alice", {account: sim_terminal("sim-js", walk=True)})
            proc = await asyncio.create_subprocess_exec(
                node, "--test", "--test-force-exit", "--test-reporter=spec", str(SCRIPT),
                cwd=HERE,
                env={**os.environ, "SANDBOX_INFO": json.dumps(sb.info.to_json()), "AGENT_ACCOUNT_ID": account},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), 120)
            except TimeoutError:
                proc.kill()
                out, _ = await proc.communicate()
                raise AssertionError(
                    "the Amplify client test did not finish in 120 s:\n" + out.decode()
                ) from None
        finally:
            await world.stop()
    text = out.decode(errors="replace")
    print(text)
    assert proc.returncode == 0, text
