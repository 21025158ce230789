"""Command line: ``hedge-agent run | demo | login | logout | check-config | status | --version``.

Each command imports what it needs lazily, so ``--version`` and ``check-config`` start instantly and never
touch the network or the terminals.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hedge_agent import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3  # a command this platform cannot do
EXIT_AUTH = 5


def _check_config(args: argparse.Namespace) -> int:
    from hedge_agent.config import load_config, summary
    from hedge_agent.errors import ConfigError

    try:
        config = load_config(args.path)
    except ConfigError as e:
        print(f"{e}:", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.path}: OK")
    for line in summary(config):
        print("  " + line)
    return EXIT_OK


def _load(path: str) -> object:
    from hedge_agent.config import load_config
    from hedge_agent.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as e:
        print(f"{e}:", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    return getpass.getpass(prompt)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import threading
    from pathlib import Path

    from hedge_agent.app import Agent, assemble
    from hedge_agent.config import AgentConfig
    from hedge_agent.desktop.single_instance import EXIT_ALREADY_RUNNING, AlreadyRunning, InstanceLock
    from hedge_agent.errors import AuthError, FatalError, HedgeError
    from hedge_agent.logs import default_log_dir, setup_logging
    from hedge_agent.status import AgentStatus

    config = _load(args.config)
    if not isinstance(config, AgentConfig):
        return EXIT_CONFIG
    windowed = sys.stdout is None or sys.stderr is None  # the windowed build has no console
    log_file = setup_logging(config.log_level, config.log_dir, console=not windowed)
    password = _read_password(True, "") if args.password_stdin else None
    username = config.cognito.username

    class LateControl:
        """The tray's AgentControl from the first moment; the agent exists only once signed in."""

        agent: Agent | None = None
        stop_requested = False

        def status(self) -> AgentStatus:
            return self.agent.status() if self.agent else AgentStatus(user=username)

        def pause(self) -> None:
            if self.agent:
                self.agent.pause()

        def resume(self) -> None:
            if self.agent:
                self.agent.resume()

        def request_stop(self) -> None:
            self.stop_requested = True
            if self.agent:
                self.agent.request_stop()

    control = LateControl()

    async def main() -> int:
        try:
            agent = await assemble(config, simulate=args.simulate, password=password)
        except AuthError as e:
            print(f"sign-in failed: {e}", file=sys.stderr)
            return EXIT_AUTH
        control.agent = agent
        if control.stop_requested:
            agent.request_stop()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, agent.request_stop)
                except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
                    signal.signal(sig, lambda *_: agent.request_stop())
        return await agent.run()

    def run_agent() -> int:
        try:
            return asyncio.run(main())
        except FatalError as e:
            print(f"hedge-agent cannot go on: {e}", file=sys.stderr)
            return EXIT_FAILURE
        except HedgeError as e:
            print(f"hedge-agent stopped: {e} (log: {log_file})", file=sys.stderr)
            return EXIT_FAILURE

    try:
        with InstanceLock():
            from hedge_agent.tray import run_with_tray, tray_available

            if args.no_tray or not tray_available():
                return run_agent()
            autostart = None
            if sys.platform == "win32":
                from hedge_agent.desktop.autostart import Autostart, agent_command

                autostart = Autostart(agent_command(Path(args.config)))
            return run_with_tray(
                control, run_agent, log_dir=config.log_dir or default_log_dir(), config_path=Path(args.config),
                autostart=autostart,
            )  # fmt: skip
    except AlreadyRunning as e:
        print(str(e), file=sys.stderr)
        return EXIT_ALREADY_RUNNING


def _login(args: argparse.Namespace) -> int:
    import asyncio

    from hedge_agent.cloud.login import login
    from hedge_agent.cloud.token_store import TokenStore
    from hedge_agent.config import AgentConfig
    from hedge_agent.errors import HedgeError

    config = _load(args.config)
    if not isinstance(config, AgentConfig):
        return EXIT_CONFIG
    password = _read_password(args.password_stdin, f"Password for {config.cognito.username}: ")
    try:
        sub = asyncio.run(login(config, password, TokenStore()))
    except HedgeError as e:
        print(f"login failed: {e}", file=sys.stderr)
        return EXIT_AUTH
    print(f"signed in as {config.cognito.username} (sub {sub}); the refresh token is in the credential store")
    return EXIT_OK


def _logout(args: argparse.Namespace) -> int:
    from hedge_agent.cloud.login import logout
    from hedge_agent.cloud.token_store import TokenStore
    from hedge_agent.config import AgentConfig

    config = _load(args.config)
    if not isinstance(config, AgentConfig):
        return EXIT_CONFIG
    removed = logout(config, TokenStore())
    print("signed out: stored sign-in removed" if removed else "nothing stored: already signed out")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from hedge_agent.demo.requirements import demo_unavailable_message, missing_demo_modules

    missing = missing_demo_modules()
    if missing:
        print(demo_unavailable_message(missing), file=sys.stderr)
        return EXIT_UNAVAILABLE
    from hedge_agent.demo.run import main as demo_main

    return demo_main(args.duration, args.report, args.positions, args.seed)


def _status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hedge_agent.config import AgentConfig
    from hedge_agent.engine.journal import Journal
    from hedge_agent.errors import FatalError
    from hedge_agent.logs import default_data_dir

    config = _load(args.config)
    if not isinstance(config, AgentConfig):
        return EXIT_CONFIG
    path = Path(config.journal_path or default_data_dir() / "journal.sqlite3")
    if not path.exists():
        print(f"no journal yet at {path}: the agent has not run with this config")
        return EXIT_OK
    try:
        journal = Journal(path)
    except FatalError as e:
        print(str(e), file=sys.stderr)
        return EXIT_FAILURE
    unreported = journal.unreported_intents()
    print(f"journal {path}")
    print(f"  intents: {len(journal.intents())} in all, {len(unreported)} not yet reported to the cloud")
    for i in unreported:
        print(
            f"    {i.intent_id:<48} {i.state.value:<8} {i.symbol.value} {i.side.value} {i.volume:g} {i.reason or ''}"
        )
    opened = journal.open_tickets()
    print(f"  open positions opened by this PC: {len(opened)}")
    for i in opened:
        trail = journal.load_trail(i.position_id)
        t = "" if trail is None else f" trail armed={trail.armed} peak={trail.peak} fired={trail.fired}"
        print(f"    {i.position_id} #{i.ticket} {i.symbol.value} {i.side.value} {i.volume:g} at {i.price}{t}")
    fires = journal.unsettled_fires()
    if fires:
        print(f"  trigger claims still to settle: {sum(len(f.pending_ids) for f in fires)}")
    journal.close()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hedge-agent",
        description="Executes your hedge positions on MetaTrader 4/5 and keeps the cloud in sync.",
    )
    p.add_argument("--version", action="version", version=f"hedge-agent {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check-config", help="validate a config file and print a summary")
    c.add_argument("path", help="the TOML config file")
    c.set_defaults(handler=_check_config)

    r = sub.add_parser("run", help="run the agent")
    r.add_argument("--config", required=True, help="the TOML config file")
    r.add_argument("--simulate", action="store_true", help="simulated terminals instead of MT4/MT5")
    r.add_argument("--no-tray", action="store_true", help="run headless, without the tray icon")
    r.add_argument(
        "--password-stdin",
        action="store_true",
        help="sign in with a password read from stdin (unattended use)",
    )
    r.set_defaults(handler=_run)

    d = sub.add_parser("demo", help="the whole job on a local sandbox and simulated terminals")
    d.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    d.add_argument("--report", default=None, help="write a JSON report to this path")
    d.add_argument("--positions", type=int, default=6, help="hedged position pairs to play")
    d.add_argument("--seed", type=int, default=7, help="price walk seed")
    d.set_defaults(handler=_demo)

    li = sub.add_parser("login", help="sign in and keep the refresh token in the OS credential store")
    li.add_argument("--config", required=True)
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    li.set_defaults(handler=_login)

    lo = sub.add_parser("logout", help="forget the stored refresh token")
    lo.add_argument("--config", required=True)
    lo.set_defaults(handler=_logout)

    s = sub.add_parser("status", help="show the journal's view: in-flight intents, trails, last results")
    s.add_argument("--config", required=True)
    s.set_defaults(handler=_status)

    a = sub.add_parser("autostart", help="start the agent when you sign in to Windows: on | off | status")
    a.add_argument("action", choices=("on", "off", "status"))
    a.add_argument("--config", help="the TOML config file the agent starts with (required for on)")
    a.add_argument("--startup-dir", help="use this folder instead of the user's Startup folder")
    a.set_defaults(handler=_autostart)
    return p


def _autostart(args: argparse.Namespace) -> int:
    from hedge_agent.desktop.autostart import autostart_command

    return autostart_command(args.action, args.config, args.startup_dir)


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # the frozen build re-enters here for MT5 worker processes
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_CONFIG
    result: int = handler(args)
    return result
