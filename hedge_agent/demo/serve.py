"""``hedge-agent demo --serve``: a sandbox backend and a ready config, left running for a developer.

Starts the sandbox (local Cognito + AppSync) in its own process, creates an Account for the seeded user
``alice``, writes ``agent.toml`` (one simulated terminal bound to that account; logs and journal next to it)
and ``password.txt`` (the sandbox user's password: a sandbox secret, not a real one), prints the commands
to try, and serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path

from hedge_agent.exit_codes import EXIT_INTERRUPTED, EXIT_OK

from .admin import AdminUI
from .remote import SandboxProcess
from .world import write_sandbox_toml

USER = "alice"


async def serve_async(
    workdir: Path, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    workdir.mkdir(parents=True, exist_ok=True)
    async with SandboxProcess() as sb:
        user = sb.info.user(USER)
        ui = AdminUI(sb.graphql, USER)
        account = await ui.create_account(user.sub, "50001", "MT5", "Sandbox (simulated)", 10_000.0)
        write_sandbox_toml(
            workdir.resolve()
            / "agent.toml",  # absolute log and journal paths: the config works from anywhere
            sb.info,
            USER,
            [{"name": "sim", "kind": "simulated", "account_id": account["id"], "login": 50001}],
        )
        (workdir / "password.txt").write_text(user.password + "\n", encoding="utf-8")
        (workdir / "sandbox.json").write_text(
            json.dumps({"graphql_url": sb.info.graphql_url, "user": USER, "sub": user.sub,
                        "account_id": account["id"]}, indent=2) + "\n", encoding="utf-8",
        )  # fmt: skip
        c = (workdir / "agent.toml").as_posix()
        p = (workdir / "password.txt").as_posix()
        print(
            f"sandbox backend on {sb.info.graphql_url} (Cognito {sb.info.cognito_endpoint})\n"
            f"user {USER} (sub {user.sub}); account {account['id']} bound to the simulated terminal 'sim'\n"
            f"config: {c}   (logs and journal next to it)\n\n"
            "In another terminal:\n"
            f"  hedge-agent check-config {c}\n"
            f"  hedge-agent run --config {c} --no-tray --password-stdin < {p}\n"
            f"  hedge-agent status --config {c}\n"
            f"  hedge-agent login --config {c} --password-stdin < {p}   # if this machine has a keyring\n\n"
            "Serving until Ctrl-C.",
            flush=True,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
    print("sandbox stopped", flush=True)
    return EXIT_OK


def serve(workdir: Path | None = None) -> int:
    from hedge_agent.logs import setup_logging

    workdir = workdir or Path("sandbox")
    setup_logging("INFO", workdir / "logs", console=False, file_name="sandbox-serve.log")
    try:
        return asyncio.run(serve_async(workdir))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
