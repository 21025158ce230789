"""Command line: ``hedge-agent run | demo | login | logout | check-config | check | init | show-config |
status | autostart | --version``.

Each command imports what it needs lazily, so ``--version`` and ``check-config`` start instantly and never
touch the network or the terminals. Nothing fails silently: every reason a command stops goes to the log
file and to the user (stderr, or a message box in the windowed program) with the fix in words, and an
unexpected error is logged with its traceback and reported in one line naming the log file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hedge_agent import __version__
from hedge_agent.desktop import alert
from hedge_agent.exit_codes import (
    EXIT_ALREADY_RUNNING,
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
)

if TYPE_CHECKING:
    from hedge_agent.app import Agent
    from hedge_agent.config import AgentConfig
    from hedge_agent.status import AgentStatus

__all__ = ["EXIT_AUTH", "EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_UNAVAILABLE", "build_parser", "main"]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def cli_name() -> str:
    """How the user runs the console commands: the built folder has hedge-agent-cli.exe."""
    return "hedge-agent-cli" if getattr(sys, "frozen", False) else "hedge-agent"


def _config_error(e: Exception, path: str) -> int:
    from hedge_agent.errors import ConfigError

    problems = e.problems if isinstance(e, ConfigError) else []
    alert.fatal(
        str(e),
        "fix " + ("these: " + "; ".join(problems) if problems else "the config") + f", then check it with "
        f"`{cli_name()} check-config {path}`",
        event="config.invalid",
        problems=problems,
    )
    return EXIT_CONFIG


def _print_config_error(e: Exception) -> None:
    from hedge_agent.errors import ConfigError

    print(f"{e}:", file=sys.stderr)
    for problem in e.problems if isinstance(e, ConfigError) else []:
        print(f"  - {problem}", file=sys.stderr)


def _load(path: str) -> AgentConfig | None:
    """The config, or None after telling the user every problem (stderr list, or one message box)."""
    from hedge_agent.config import load_config
    from hedge_agent.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as e:
        if alert.windowed():
            _config_error(e, path)
        else:
            from hedge_agent.desktop.alert import ensure_log_file

            ensure_log_file()
            import structlog

            structlog.get_logger(__name__).error("config.invalid", path=path, problems=e.problems)
            _print_config_error(e)
        return None


def _check_config(args: argparse.Namespace) -> int:
    from hedge_agent.config import load_config, summary
    from hedge_agent.errors import ConfigError

    try:
        config = load_config(args.path)
    except ConfigError as e:
        _print_config_error(e)
        return EXIT_CONFIG
    print(f"{args.path}: OK")
    for line in summary(config):
        print("  " + line)
    return EXIT_OK


def _read_password(from_stdin: bool, prompt: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n") if sys.stdin is not None else ""
    import getpass

    return getpass.getpass(prompt)


def _is_local(url: str) -> bool:
    from urllib.parse import urlparse

    return (urlparse(url).hostname or "") in LOCAL_HOSTS


def simulate_problem(config: AgentConfig, against_live_cloud: bool) -> str | None:
    """``--simulate`` writes simulated fills into the backend it talks to: only a local one, unless asked."""
    if against_live_cloud:
        return None
    remote = [] if _is_local(config.appsync.graphql_url) else [config.appsync.graphql_url]
    endpoint = config.cognito.endpoint_url
    if endpoint is None or not _is_local(endpoint):
        remote.append(endpoint or f"AWS Cognito in {config.cognito.region}")
    if not remote:
        return None
    return (
        f"--simulate would write simulated fills into a real backend ({', '.join(remote)}); it runs only "
        "against a local sandbox (see `hedge-agent demo --serve`)"
    )


class LateControl:
    """The tray's AgentControl from the first moment; the agent exists only once signed in."""

    def __init__(self, username: str, *, simulate: bool) -> None:
        self.username = username
        self.simulate = simulate
        self.agent: Agent | None = None
        self.stop_requested = False
        self.phase = "starting"
        self.phase_detail = ""
        self._loop: Any = None
        self._stop_event: Any = None

    def bind(self, loop: Any, stop_event: Any) -> None:
        self._loop, self._stop_event = loop, stop_event
        if self.stop_requested:
            stop_event.set()

    def set_phase(self, phase: str, detail: str) -> None:
        self.phase, self.phase_detail = phase, detail

    def status(self) -> AgentStatus:
        import dataclasses

        from hedge_agent.status import AgentStatus

        if self.agent is not None:
            return dataclasses.replace(self.agent.status(), simulate=self.simulate)
        return AgentStatus(
            user=self.username, cloud=self.phase, phase=self.phase, phase_detail=self.phase_detail,
            simulate=self.simulate,
        )  # fmt: skip

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
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    import structlog

    from hedge_agent.app import assemble, sign_in
    from hedge_agent.desktop.shutdown import StopHandlers
    from hedge_agent.desktop.single_instance import AlreadyRunning, InstanceLock
    from hedge_agent.errors import AuthError, FatalError, HedgeError
    from hedge_agent.logs import LogDirError, default_data_dir, default_log_dir, setup_logging
    from hedge_agent.startup import sign_in_patiently
    from hedge_agent.trade_log import TradeLog

    log = structlog.get_logger(__name__)
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    data_dir = None
    log_dir = config.log_dir or default_log_dir()
    if args.simulate:
        problem = simulate_problem(config, args.against_live_cloud)
        if problem:
            alert.fatal(problem, "add --against-live-cloud if you really mean it", event="simulate.refused")
            return EXIT_CONFIG
        data_dir = default_data_dir() / "simulate"
        log_dir = log_dir / "simulate"
        config = config.model_copy(update={"journal_path": data_dir / "journal.sqlite3"})
    windowed = alert.windowed()
    try:
        log_file = setup_logging(
            config.log_level, log_dir if args.simulate else config.log_dir, console=not windowed
        )
    except LogDirError as e:
        alert.fatal(str(e), "set `log_dir` in the config to a folder you can write", event="logs.unwritable")
        return EXIT_CONFIG
    if args.simulate:
        banner = (
            f"SIMULATED (dry run): simulated terminals, nothing reaches a broker; journal and status in "
            f"{data_dir}, logs in {log_dir}"
        )
        log.warning("simulate.dry_run", message=banner)
        if not windowed:
            print(banner, file=sys.stderr)
    password = _read_password(True, "") if args.password_stdin else None
    control = LateControl(config.cognito.username, simulate=args.simulate)
    handlers = StopHandlers(control.request_stop).install()

    from hedge_agent.status_file import starting, status_path, write_atomic

    journal_path = Path(config.journal_path or (data_dir or default_data_dir()) / "journal.sqlite3")
    early_status = status_path(journal_path)

    async def show_phase() -> None:
        """status.json says "signing in" / "waiting for network" until the agent writes its own."""
        while control.agent is None:
            data = starting(
                config.cognito.username, control.phase, control.phase_detail, simulate=args.simulate
            )
            with contextlib.suppress(OSError):
                await asyncio.to_thread(write_atomic, early_status, data)
            await asyncio.sleep(1.0)

    async def main() -> int:
        control.bind(asyncio.get_running_loop(), asyncio.Event())
        phase_task = asyncio.create_task(show_phase(), name="status-while-starting")
        try:
            auth = await sign_in_patiently(
                lambda: sign_in(config, password), on_phase=control.set_phase, stop=control._stop_event
            )
        except AuthError as e:
            alert.fatal(
                f"sign-in refused: {e}",
                f"run `{cli_name()} login --config {args.config}` (it asks for the password once)",
                event="signin.refused",
            )
            return EXIT_AUTH
        finally:
            phase_task.cancel()
        if auth is None:
            log.info("agent.stopped_before_sign_in")
            from hedge_agent.status_file import mark_stopped

            mark_stopped(early_status)
            return EXIT_OK
        trades = TradeLog(log_dir, {t.name: t.symbols for t in config.terminals})
        agent = await assemble(
            config, simulate=args.simulate, auth=auth, data_dir=data_dir, trade_sink=trades
        )
        control.agent = agent
        if control.stop_requested:
            agent.request_stop()
        try:
            code = await agent.run()
        finally:
            trades.close()
        _say_stopped(agent, windowed)
        return code

    def run_agent() -> int:
        try:
            return asyncio.run(main())
        except FatalError as e:
            alert.fatal(
                f"hedge-agent cannot go on: {e}",
                "fix what it names, then start it again",
                event="agent.fatal",
            )
            return EXIT_FAILURE
        except HedgeError as e:
            alert.fatal(
                f"hedge-agent stopped: {e}", "see the log; start it again", event="agent.stopped_on_error"
            )
            return EXIT_FAILURE
        except Exception as e:
            return _unexpected(e)
        finally:
            handlers.done.set()

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
                control, run_agent, log_dir=log_dir, config_path=Path(args.config), autostart=autostart,
                stop_handlers=handlers,
            )  # fmt: skip
    except AlreadyRunning as e:
        alert.fatal(
            str(e), "use the running agent's tray icon, or quit it first", event="agent.already_running"
        )
        return EXIT_ALREADY_RUNNING
    finally:
        del log_file


def _say_stopped(agent: Agent, windowed: bool) -> None:
    names = agent.untrailed_at_stop
    if names:
        line = (
            f"hedge-agent stopped. {len(names)} positions are no longer trailed until it runs again: "
            + ", ".join(names)
        )
    else:
        line = "hedge-agent stopped."
    if not windowed:
        print(line, file=sys.stderr)


def _unexpected(e: BaseException) -> int:
    """Log the traceback; tell the user in one line where it is."""
    import structlog

    log_file = alert.ensure_log_file()
    structlog.get_logger(__name__).error("agent.crashed", error=f"{type(e).__name__}: {e}", exc_info=e)
    where = f"the traceback is in {log_file}" if log_file else "no log file could be written"
    problem = f"unexpected error {type(e).__name__}: {e}"
    if alert.windowed():
        alert.tell(problem, f"{where}; please report it", None)
    else:
        print(f"hedge-agent: {problem} ({where})", file=sys.stderr)
    return EXIT_FAILURE


def _login(args: argparse.Namespace) -> int:
    import asyncio

    from hedge_agent.cloud.login import login
    from hedge_agent.cloud.token_store import TokenStore
    from hedge_agent.errors import AuthError, HedgeError, RetryableError

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    password = _read_password(args.password_stdin, f"Password for {config.cognito.username}: ")
    try:
        sub = asyncio.run(login(config, password, TokenStore()))
    except RetryableError as e:
        alert.fatal(
            f"login failed: {e}", "check the network connection, then try again", event="login.failed"
        )
        return EXIT_FAILURE
    except AuthError as e:
        alert.fatal(
            f"login failed: {e}", "check the username in the config and the password", event="login.failed"
        )
        return EXIT_AUTH
    except HedgeError as e:
        alert.fatal(f"login failed: {e}", "", event="login.failed")
        return EXIT_AUTH
    print(f"signed in as {config.cognito.username} (sub {sub}); the refresh token is in the credential store")
    return EXIT_OK


def _logout(args: argparse.Namespace) -> int:
    from hedge_agent.cloud.login import logout
    from hedge_agent.cloud.token_store import TokenStore
    from hedge_agent.errors import HedgeError

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        removed = logout(config, TokenStore())
    except HedgeError as e:
        alert.fatal(
            f"logout failed: {e}",
            "no OS credential store is usable here, so nothing can be stored in it either",
            event="logout.failed",
        )
        return EXIT_UNAVAILABLE
    print("signed out: stored sign-in removed" if removed else "nothing stored: already signed out")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from hedge_agent.demo.requirements import demo_unavailable_message, missing_demo_modules

    missing = missing_demo_modules()
    if missing:
        print(demo_unavailable_message(missing), file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.serve:
        from hedge_agent.demo.serve import serve

        return serve(Path(args.dir) if args.dir else None)
    from hedge_agent.demo.run import main as demo_main

    return demo_main(args.duration, args.report, args.positions, args.seed)


def _status(args: argparse.Namespace) -> int:
    from hedge_agent.engine.journal import Journal
    from hedge_agent.errors import FatalError
    from hedge_agent.logs import default_data_dir
    from hedge_agent.status_file import describe, read, status_path

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    base = default_data_dir() / "simulate" if args.simulate else None
    path = (
        base / "journal.sqlite3"
        if base
        else Path(config.journal_path or default_data_dir() / "journal.sqlite3")
    )
    for line in describe(read(status_path(path))):
        print(line)
    if not path.exists():
        print(f"no journal yet at {path}: the agent has not run with this config")
        return EXIT_OK
    try:
        journal = Journal(path)
    except FatalError as e:
        alert.fatal(str(e), "", event="status.journal_unreadable")
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


def _init(args: argparse.Namespace) -> int:
    from hedge_agent.config_tools import STARTER

    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"hedge-agent init: {path} exists; use --force to overwrite it", file=sys.stderr)
        return EXIT_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER, encoding="utf-8")
    print(f"wrote {path}: fill in the values marked CHANGE ME, then `{cli_name()} check-config {path}`")
    return EXIT_OK


def _show_config(args: argparse.Namespace) -> int:
    from hedge_agent.config_tools import resolved_lines
    from hedge_agent.errors import ConfigError

    try:
        lines = resolved_lines(Path(args.path))
    except ConfigError as e:
        _print_config_error(e)
        return EXIT_CONFIG
    for line in lines:
        print(line)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from hedge_agent.preflight import run_preflight

    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    password = _read_password(True, "") if args.password_stdin else None
    return run_preflight(config, args.config, password=password)


def _autostart(args: argparse.Namespace) -> int:
    from hedge_agent.desktop.autostart import autostart_command

    return autostart_command(args.action, args.config, args.startup_dir)


class _Parser(argparse.ArgumentParser):
    """Usage errors reach the user in the windowed program too (a message box instead of stderr)."""

    def error(self, message: str) -> NoReturn:
        if alert.windowed():
            alert.fatal(
                f"{self.prog}: {message}", f"run `{cli_name()} --help` for the commands", event="cli.usage"
            )
            raise SystemExit(EXIT_CONFIG)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="hedge-agent",
        description="Executes your hedge positions on MetaTrader 4/5 and keeps the cloud in sync.",
    )
    p.add_argument("--version", action="version", version=f"hedge-agent {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check-config", help="validate a config file and print a summary (offline)")
    c.add_argument("path", help="the TOML config file")
    c.set_defaults(handler=_check_config)

    k = sub.add_parser("check", help="online pre-flight: sign-in, accounts, terminals, ports, symbols")
    k.add_argument("--config", required=True, help="the TOML config file")
    k.add_argument("--password-stdin", action="store_true", help="sign in with a password read from stdin")
    k.set_defaults(handler=_check)

    i = sub.add_parser("init", help="write a commented starter config")
    i.add_argument("path", help="where to write it, e.g. my.toml")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(handler=_init)

    sc = sub.add_parser("show-config", help="print the resolved config and where each value came from")
    sc.add_argument("path", help="the TOML config file")
    sc.set_defaults(handler=_show_config)

    r = sub.add_parser("run", help="run the agent")
    r.add_argument("--config", required=True, help="the TOML config file")
    r.add_argument(
        "--simulate", action="store_true",
        help="dry run: simulated terminals, its own journal and data dir; a local sandbox backend only",
    )  # fmt: skip
    r.add_argument(
        "--against-live-cloud", action="store_true",
        help="with --simulate: allow a real backend (simulated fills then appear in it)",
    )  # fmt: skip
    r.add_argument("--no-tray", action="store_true", help="run headless, without the tray icon")
    r.add_argument(
        "--password-stdin",
        action="store_true",
        help="sign in with a password read from stdin (unattended use)",
    )
    r.set_defaults(handler=_run)

    d = sub.add_parser("demo", help="the whole job on a local sandbox and simulated terminals")
    d.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    d.add_argument("--report", default=None, help="write the JSON report to this path")
    d.add_argument("--positions", type=int, default=6, help="hedged position pairs to play")
    d.add_argument("--seed", type=int, default=7, help="price walk seed")
    d.add_argument(
        "--serve", action="store_true",
        help="only start the sandbox, seed a user and accounts, write a ready config, and keep serving",
    )  # fmt: skip
    d.add_argument("--dir", default=None, help="with --serve: where to write the config (default: ./sandbox)")
    d.set_defaults(handler=_demo)

    li = sub.add_parser("login", help="sign in and keep the refresh token in the OS credential store")
    li.add_argument("--config", required=True)
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    li.set_defaults(handler=_login)

    lo = sub.add_parser("logout", help="forget the stored refresh token")
    lo.add_argument("--config", required=True)
    lo.set_defaults(handler=_logout)

    s = sub.add_parser("status", help="is it working? the running agent, its terminals, positions and stops")
    s.add_argument("--config", required=True)
    s.add_argument("--simulate", action="store_true", help="the status of a `run --simulate` agent")
    s.set_defaults(handler=_status)

    a = sub.add_parser("autostart", help="start the agent when you sign in to Windows: on | off | status")
    a.add_argument("action", choices=("on", "off", "status"))
    a.add_argument("--config", help="the TOML config file the agent starts with (required for on)")
    a.add_argument("--startup-dir", help="use this folder instead of the user's Startup folder")
    a.set_defaults(handler=_autostart)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # the frozen build re-enters here for MT5 worker processes
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        if alert.windowed():
            alert.fatal(
                "no command given", "start it as `hedge-agent.exe run --config my.toml`", event="cli.usage"
            )
        else:
            parser.print_help()
        return EXIT_CONFIG
    try:
        result: int = handler(args)
    except KeyboardInterrupt:
        if not alert.windowed():
            print("\nhedge-agent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the catch-all: never a bare traceback, never silence
        return _unexpected(e)
    return result
