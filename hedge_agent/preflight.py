"""``hedge-agent check --config``: the online pre-flight. Each line is OK or FAIL with the fix.

Sign-in; each terminal's ``account_id`` is one of your Accounts; your User row exists (``pcStatus`` needs
it); MT5 ``path`` exists; each MT4 ``bridge_port`` is free; then each terminal is connected for a moment:
the account it is logged into, the symbols after ``symbol_map`` (a quote arrives for each), and for MT4
the EA connecting to the bridge. Nothing is traded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hedge_agent.config import AgentConfig, TerminalConfig, TerminalKind
from hedge_agent.domain.enums import Symbol
from hedge_agent.exit_codes import EXIT_FAILURE, EXIT_OK

CONNECT_WAIT_S = 15.0
QUOTE_WAIT_S = 5.0


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'OK  ' if self.ok else 'FAIL'}  {self.what}"
        return text if self.ok or not self.fix else f"{text}\n        fix: {self.fix}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def local_checks(config: AgentConfig) -> list[Check]:
    out = []
    for i, t in enumerate(config.terminals):
        if t.kind is TerminalKind.MT5 and t.path:
            ok = Path(t.path).is_file()
            out.append(Check(ok, f"{t.name}: MT5 path {t.path} {'exists' if ok else 'not found'}",
                             f"set terminals[{i}].path to this terminal's terminal64.exe"))  # fmt: skip
        if t.kind is TerminalKind.MT4 and t.bridge_port is not None:
            ok = port_free(t.bridge_port)
            out.append(Check(ok, f"{t.name}: bridge port {t.bridge_port} {'is free' if ok else 'is in use'}",
                             "quit the program holding it (is the agent running?) or change bridge_port "
                             "and the EA's port"))  # fmt: skip
    return out


async def cloud_checks(config: AgentConfig, password: str | None, path: str) -> list[Check]:
    from hedge_agent.app import sign_in
    from hedge_agent.cloud import documents as docs
    from hedge_agent.cloud.client import CloudClient
    from hedge_agent.errors import AuthError, HedgeError, RetryableError

    try:
        auth = await sign_in(config, password)
    except RetryableError as e:
        return [Check(False, f"sign-in: {e}", "check the network, then run the check again")]
    except AuthError as e:
        return [Check(False, f"sign-in: {e}", f"run `hedge-agent login --config {path}`")]
    out = [Check(True, f"sign-in as {config.cognito.username} (sub {auth.sub})")]
    cloud = CloudClient(config.appsync, auth)
    try:
        try:
            accounts = {a.id: a for a in await cloud.accounts()}
        except HedgeError as e:
            return [*out, Check(False, f"list your accounts: {e}", "check appsync.graphql_url")]
        for i, t in enumerate(config.terminals):
            a = accounts.get(t.account_id)
            if a is not None:
                out.append(Check(True, f"{t.name}: account {t.account_id} is yours"))
            else:
                yours = ", ".join(sorted(accounts)) or "none"
                out.append(Check(False, f"{t.name}: account {t.account_id} is not one of your accounts",
                                 f"copy the Account id from the web UI into terminals[{i}].account_id "
                                 f"(yours: {yours})"))  # fmt: skip
        try:
            http: Any = cloud._http  # the same HTTP link the agent uses
            user = (await http.execute(docs.GET_USER, {"id": auth.sub}, root="getUser")).data.get("getUser")
        except HedgeError as e:
            user, err = None, str(e)
        else:
            err = ""
        out.append(
            Check(
                user is not None,
                f"User row for {auth.sub} " + ("exists" if user else f"is missing {err}"),
                "ask your admin to create your User record (the agent sets its pcStatus)",
            )
        )
    finally:
        with contextlib.suppress(Exception):
            await cloud.close()
    return out


async def terminal_checks(config: AgentConfig) -> list[Check]:
    from hedge_agent.logs import default_data_dir
    from hedge_agent.terminals.factory import build_terminal

    out: list[Check] = []
    for t in config.terminals:
        if t.kind is TerminalKind.MT4 and t.bridge_port is not None and not port_free(t.bridge_port):
            continue  # already reported
        try:
            terminal = build_terminal(t, data_dir=default_data_dir())
        except Exception as e:
            out.append(
                Check(
                    False,
                    f"{t.name}: cannot start: {type(e).__name__}: {e}",
                    "see the README's Windows section",
                )
            )
            continue
        try:
            out += await _one_terminal(t, terminal)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(terminal.shutdown(), 10)
    return out


async def _one_terminal(t: TerminalConfig, terminal: Any) -> list[Check]:
    what = "EA connected to the bridge" if t.kind is TerminalKind.MT4 else "terminal connected"
    fix = (
        "attach HedgeBridge to a chart in this MT4, allow DLL imports and AutoTrading, check its port"
        if t.kind is TerminalKind.MT4
        else "start the terminal, log in, enable Algo Trading"
    )
    try:
        await asyncio.wait_for(terminal.connect(), CONNECT_WAIT_S)
        deadline = time.monotonic() + CONNECT_WAIT_S
        while terminal.health().connection.value != "connected" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    except Exception as e:
        return [Check(False, f"{t.name}: {what}: {type(e).__name__}: {e}", fix)]
    h = terminal.health()
    if h.connection.value != "connected":
        return [Check(False, f"{t.name}: {what}: no ({h.connection.value} {h.detail})", fix)]
    out = [Check(True, f"{t.name}: {what}")]
    try:
        info = await terminal.account_info()
        login = getattr(info, "login", None)
        ok = login in (None, t.login)
        out.append(Check(ok, f"{t.name}: logged into account {login}",
                         f"log this terminal into {t.login} or set terminals login = {login}"))  # fmt: skip
    except Exception as e:
        out.append(Check(False, f"{t.name}: account info: {e}", fix))
    seen: set[Symbol] = set()

    async def read() -> None:
        async for q in terminal.quotes():
            seen.add(q.symbol)
            if len(seen) == len(Symbol):
                return

    await terminal.watch(list(Symbol))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), QUOTE_WAIT_S)
    for sym in Symbol:
        name = t.symbols.broker_name(sym)
        ok = sym in seen
        out.append(Check(ok, f"{t.name}: symbol {sym.value} -> {name} " + ("quotes" if ok else "no quote"),
                         f"set symbol_map = {{ {sym.value} = \"<broker name>\" }} and show it in Market Watch "
                         "(or ignore it if you never trade it, or the market is closed)"))  # fmt: skip
    return out


def run_preflight(config: AgentConfig, path: str, *, password: str | None = None) -> int:
    async def main() -> list[Check]:
        checks = local_checks(config)
        checks += await cloud_checks(config, password, path)
        checks += await terminal_checks(config)
        return checks

    checks = asyncio.run(main())
    for c in checks:
        print(c.line())
    failed = sum(1 for c in checks if not c.ok)
    print(f"{len(checks) - failed} OK, {failed} FAIL")
    return EXIT_OK if not failed else EXIT_FAILURE
