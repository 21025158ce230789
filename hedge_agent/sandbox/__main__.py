"""``python -m hedge_agent.sandbox [--port P] [--db PATH] [--no-user-rows] [--print-json]``: serve until
SIGTERM/SIGINT.

With ``--print-json`` the first line on stdout is the sandbox info as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from .sandbox import Sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hedge_agent.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="AppSync port (default: a free port)")
    parser.add_argument("--cognito-port", type=int, default=0, help="Cognito port (default: a free port)")
    parser.add_argument("--db", default=None, help="SQLite file to keep state in (default: in memory)")
    parser.add_argument("--id-token-ttl", type=int, default=3600, help="ID token lifetime in seconds")
    parser.add_argument("--ka-interval", type=float, default=10.0, help="seconds between keep-alive frames")
    parser.add_argument(
        "--no-user-rows",
        action="store_true",
        help="seed no User records (as on AWS before the admin UI creates them: pcStatus updates are refused)",
    )
    parser.add_argument("--print-json", action="store_true", help="print the sandbox info as JSON first")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    async with Sandbox(
        host=args.host,
        port=args.port,
        cognito_port=args.cognito_port,
        db_path=args.db,
        id_token_ttl_s=args.id_token_ttl,
        ka_interval_s=args.ka_interval,
        user_rows=not args.no_user_rows,
    ) as sandbox:
        info = sandbox.info
        if args.print_json:
            print(json.dumps(info.to_json()), flush=True)
        else:
            print(f"AppSync  {info.graphql_url}  (realtime {info.realtime_url})", flush=True)
            print(f"Cognito  {info.cognito_endpoint}  pool {info.user_pool_id}  client {info.client_id}")
            for user in info.users:
                groups = ",".join(user.groups) or "-"
                print(f"  {user.username:<8} {user.password:<20} sub {user.sub}  groups {groups}")
            print("Ctrl-C to stop.", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
