"""``status.json``: what the running agent is doing, for ``hedge-agent status`` ("is it working?").

The agent rewrites it atomically (temp file + ``os.replace``) every second, next to its journal: pid, when
written, cloud link, each terminal, the positions per terminal with their trailing stop (price and pips),
the last warnings and errors, and the records skipped because their account is not bound on this PC (with
their ids: a one-character wrong ``account_id`` shows here instead of leaving positions PENDING forever).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedge_agent.display import fmt_lots, fmt_pips, fmt_points, fmt_price
from hedge_agent.domain.enums import PositionStatus
from hedge_agent.domain.models import Action, Position

if TYPE_CHECKING:
    from hedge_agent.app import Agent

FILE_NAME = "status.json"
STALE_AFTER_S = 5.0  # written every second: older than this, the agent is not running (or hung)
MAX_SKIPPED_IDS = 20
MAX_ERRORS = 8


def status_path(journal_path: Path) -> Path:
    return journal_path.parent / FILE_NAME


class SkippedRecords:
    """This user's records on accounts not bound on this PC: account id -> the newest record ids."""

    def __init__(self) -> None:
        self.by_account: OrderedDict[str, list[str]] = OrderedDict()
        self.count = 0

    def observe(self, event: object, sub: str, bound: set[str] | dict[str, Any]) -> None:
        """Any cloud event; only record events (``.record``: a Position or an Action) count."""
        record = getattr(event, "record", None)
        if not isinstance(record, Position | Action):
            return
        if record.user_id != sub or record.account_id in bound:
            return
        ids = self.by_account.setdefault(record.account_id, [])
        if record.id not in ids:
            self.count += 1
            ids.append(record.id)
            del ids[:-MAX_SKIPPED_IDS]
        self.by_account.move_to_end(record.account_id)
        while len(self.by_account) > MAX_SKIPPED_IDS:
            self.by_account.popitem(last=False)


def positions_of(agent: Agent) -> list[dict[str, Any]]:
    """The owned, non-final positions, with their trail state, as the status shows them."""
    rows = []
    by_account = agent.executor.bindings
    for p in list(agent.executor.positions.values()):
        if p.status not in (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING):
            continue
        b = by_account.get(p.account_id)
        if b is None:
            continue
        spec = b.symbols.spec(p.symbol)
        trail = agent.monitor.state(p.id)
        row: dict[str, Any] = {
            "terminal": b.name,
            "position_id": p.id,
            "symbol": p.symbol.value,
            "side": p.side.value,
            "lots": fmt_lots(p.volume),
            "status": p.status.value,
            "ticket": p.mt_ticket or "",
            "entry": fmt_price(spec, p.entry_price) if p.entry_price is not None else "-",
            "trail_pips": p.trail_width,
            "trail": "off",
            "stop": "-",
            "stop_pips": "-",
        }
        if trail is not None:
            row["trail"] = "fired" if trail.fired else ("armed" if trail.armed else "waiting to arm")
            if trail.stop is not None:
                row["stop"] = fmt_points(spec, trail.stop)
                row["stop_pips"] = fmt_pips(spec, trail.stop - trail.entry if trail.side.value == "BUY"
                                            else trail.entry - trail.stop)  # fmt: skip
            else:
                arm = trail.entry + trail.width if trail.side.value == "BUY" else trail.entry - trail.width
                row["arms_at"] = fmt_points(spec, arm)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["terminal"], r["position_id"]))


def trailed_names(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """Short names of the trailed positions (for the Quit question and the shutdown line)."""
    return tuple(
        f"{r['terminal']} {r['symbol']} {r['side']} {r['lots']}"
        for r in rows
        if r["trail"] in ("armed", "waiting to arm")
    )


def collect(
    agent: Agent, skipped: SkippedRecords, *, started_at: float, simulate: bool = False
) -> dict[str, Any]:
    st = agent.status()
    return {
        "pid": os.getpid(),
        "written_at": time.time(),
        "started_at": started_at,
        "simulate": simulate,
        "user": st.user,
        "cloud": st.cloud,
        "paused": st.paused,
        "terminals": [asdict(t) for t in st.terminals],
        "positions": positions_of(agent),
        "errors": [asdict(n) for n in st.notices if n.level in ("warning", "error")][-MAX_ERRORS:],
        "last_error": st.last_error,
        "skipped_not_bound": {"count": skipped.count, "accounts": dict(skipped.by_account)},
        "stopped": False,
    }


def starting(user: str, phase: str, detail: str, *, simulate: bool = False) -> dict[str, Any]:
    """The status before the agent exists: signing in, or waiting for the network."""
    return {
        "pid": os.getpid(), "written_at": time.time(), "simulate": simulate, "user": user, "cloud": phase,
        "phase": phase, "phase_detail": detail, "paused": False, "terminals": [], "positions": [],
        "errors": [], "skipped_not_bound": {"count": 0, "accounts": {}}, "stopped": False,
    }  # fmt: skip


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(data: dict[str, Any] | None, *, now: float | None = None) -> list[str]:
    """The lines ``hedge-agent status`` prints about the running agent."""
    if data is None:
        return ["agent: not running (no status file: it has not run with this config)"]
    now = time.time() if now is None else now
    age = now - float(data.get("written_at", 0))
    pid = int(data.get("pid", 0))
    if data.get("stopped"):
        head = f"agent: not running (stopped cleanly {_ago(age)})"
    elif age <= STALE_AFTER_S and pid_alive(pid):
        head = f"agent: running (pid {pid}{', SIMULATED' if data.get('simulate') else ''})"
    elif pid_alive(pid):
        head = f"agent: not answering (pid {pid}, last status {_ago(age)}): it may be hung; see the log"
    else:
        head = f"agent: not running (pid {pid} is gone; last status {_ago(age)})"
    lines = [head, f"  user {data.get('user', '?')}; cloud {data.get('cloud', '?')}"
             + ("; execution PAUSED" if data.get("paused") else "")]  # fmt: skip
    if data.get("phase"):
        lines.append(f"  {data['phase']}: {data.get('phase_detail') or '...'}")
    positions: list[dict[str, Any]] = list(data.get("positions", []))
    for t in data.get("terminals", []):
        trade = "" if t.get("trade_allowed", True) else ", trading disabled"
        detail = f" - {t['detail']}" if t.get("detail") else ""
        mine = [p for p in positions if p["terminal"] == t["name"]]
        lines.append(
            f"  terminal {t['name']} ({t['kind']}, account {t['account_id']}): {t['connection']}{trade}{detail}; "
            f"{len(mine)} position(s)"
        )
        for p in mine:
            stop = (
                f"stop {p['stop']} ({p['stop_pips']} pips from entry)"
                if p["stop"] != "-"
                else (f"arms at {p['arms_at']}" if p.get("arms_at") else "")
            )
            lines.append(
                f"    {p['symbol']:<6} {p['side']:<4} {p['lots']} lots {p['status']:<7} #{p['ticket'] or '-':<8} "
                f"entry {p['entry']}  trail {p['trail']} {stop}".rstrip()
            )
    skipped = data.get("skipped_not_bound", {})
    if skipped.get("count"):
        lines.append(
            f"  skipped {skipped['count']} record(s) of yours whose account is not bound on this PC "
            "(check account_id in the config):"
        )
        for account, ids in skipped.get("accounts", {}).items():
            lines.append(f"    account {account}: {', '.join(ids[-5:])}")
    errors = data.get("errors", [])
    if errors:
        lines.append("  last warnings and errors:")
        lines += [f"    [{e['level']}] {e['title']}: {e['message']}" for e in errors]
    return lines


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def mark_stopped(path: Path) -> None:
    data = read(path)
    if data is not None:
        data["stopped"] = True
        data["written_at"] = time.time()
        with contextlib.suppress(OSError):
            write_atomic(path, data)
