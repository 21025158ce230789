"""Command line: ``hedge-agent run | demo | login | logout | check-config | status | --version``.

Each command imports what it needs lazily, so ``--version`` and ``check-config`` start instantly and never
touch the network or the terminals.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from hedge_agent import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3


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


def _not_yet(what: str) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        print(f"hedge-agent {what}: not yet available in this build.", file=sys.stderr)
        return EXIT_UNAVAILABLE

    return handler


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
    r.set_defaults(handler=_not_yet("run"))

    d = sub.add_parser("demo", help="the whole job on a local sandbox and simulated terminals")
    d.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    d.add_argument("--report", default=None, help="write a JSON report to this path")
    d.add_argument("--positions", type=int, default=6, help="hedged position pairs to play")
    d.add_argument("--seed", type=int, default=7, help="price walk seed")
    d.set_defaults(handler=_not_yet("demo"))

    li = sub.add_parser("login", help="sign in and keep the refresh token in the OS credential store")
    li.add_argument("--config", required=True)
    li.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    li.set_defaults(handler=_not_yet("login"))

    lo = sub.add_parser("logout", help="forget the stored refresh token")
    lo.add_argument("--config", required=True)
    lo.set_defaults(handler=_not_yet("logout"))

    s = sub.add_parser("status", help="show the journal's view: in-flight intents, trails, last results")
    s.add_argument("--config", required=True)
    s.set_defaults(handler=_not_yet("status"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_CONFIG
    result: int = handler(args)
    return result
