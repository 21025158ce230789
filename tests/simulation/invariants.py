"""The invariants checked at quiescence (after faults stop, crashed agents restart and the agents settle).

1. no duplicate order: per intent tag (magic), the broker executed at most one opening and one closing order;
2. no lost action: no action of a bound account stays EXECUTING; an EXECUTED ENTRY has its open fill on the
   broker and an EXECUTED CLOSE its position closed;
3. no stuck record: no position of a bound account stays OPENING or CLOSING;
4. the cloud agrees with the broker: status, mtTicket, entry price, exit price/time of each position, from
   the broker's trade carrying its open tag. One disagreement is tolerated only when it was said loudly
   (an error notice naming the position): a fill the cloud moved away from (canceled while the order was
   at the broker, a late fill after the agent gave up);
5. every fire's triggers claimed: no journal fire has unsettled claims, and no valid own trigger action of
   a fired position is still PENDING; every STOPPED position has a fire in its agent's journal;
6. trail semantics: a trail fire happens only with a width > 0, and at least the current width away from
   the best close-side price since the open (widths edited more than a few seconds before the fire).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from hedge_agent.domain.enums import ActionStatus, ActionType, PositionStatus, Side
from hedge_agent.domain.models import Action, Position
from hedge_agent.domain.symbols import DEFAULT_PIP, DEFAULT_POINT
from hedge_agent.domain.tags import MT4_MAGIC_BITS, IntentKind, intent_id, order_tag

from .terminal_model import Trade
from .world import USER, World

S = PositionStatus
EDIT_SETTLE_S = 1.0  # a record version the agent received this long before a fire must be in effect


@dataclass(frozen=True)
class Violation:
    invariant: str
    record: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.record}: {self.detail}"


open_magic = World.open_magic


def close_magics(position_id: str, n: int = 12) -> set[int]:
    base = intent_id(position_id, IntentKind.CLOSE)
    return {order_tag(f"{base}:{i}", MT4_MAGIC_BITS, 0).magic for i in range(1, n + 1)}


def loud(world: World, position_id: str) -> bool:
    return any(n.level == "error" and position_id in n.message for n in world.notices) or any(
        level == "error" and position_id in repr(ev) for _t, level, _m, ev in world.logs
    )


def _loud_magic(world: World, magic: int, kind: str) -> bool:
    """An error notice names the position whose tag (open, or one of its closes) is ``magic``."""
    for broker in world.brokers.values():
        for t in broker.trades.values():
            if (t.magic if kind == "open" else t.close_magic) == magic and t.intent:
                return loud(world, t.intent.split(":")[1])
    return False


def check(world: World, trail_edits: dict[str, list[tuple[float, float]]]) -> list[Violation]:
    out: list[Violation] = []
    cloud = world.cloud
    # a lost journal forgets an order whose outcome was unknown; if the broker executes it late (after the
    # new journal's lookup found nothing), a second order is unavoidable: it must then be said loudly
    # one account bound on two PCs: both may open and close; what cannot be prevented must be said loudly
    double_bound = {
        a for a, n in Counter(a for s in world.specs.values() for a in s.accounts).items() if n > 1
    }
    lost_journal = double_bound | {
        a for name, paths in world.journals_used.items() if len(paths) > 1 for a in world.specs[name].accounts
    }
    # 1. duplicates
    for acc, broker in world.brokers.items():
        for (kind, magic), n in Counter((k, m) for k, m, _t in broker.orders).items():
            if n > 1 and not (acc in lost_journal and _loud_magic(world, magic, kind)):
                tickets = [t for k, m, t in broker.orders if (k, m) == (kind, magic)]
                out.append(
                    Violation("no-duplicate-order", acc, f"{n} {kind} orders with magic {magic}: {tickets}")
                )
    trades_by_magic: dict[int, list[Trade]] = {}
    for broker in world.brokers.values():
        for t in broker.trades.values():
            trades_by_magic.setdefault(t.magic, []).append(t)

    positions = {
        pid: p for pid, p in cloud.positions.items() if p.user_id == USER and p.account_id in world.bound
    }
    # 3 + 4. positions
    for pid, p in positions.items():
        if p.status in (S.OPENING, S.CLOSING):
            out.append(
                Violation(
                    "no-stuck-record", pid, f"still {p.status.value} (history {cloud.history.get(pid)})"
                )
            )
            continue
        trades = trades_by_magic.get(open_magic(pid), [])
        if not trades:
            if p.status not in (S.PENDING, S.CANCELED):
                out.append(
                    Violation(
                        "cloud-agrees-with-broker", pid, f"{p.status.value} but never filled on the broker"
                    )
                )
            continue
        t = trades[0]
        if p.status in (S.PENDING, S.CANCELED):
            # a lost journal forgets an order the UI then canceled; once the broker closed it, nothing is left
            # on the terminal to notice
            forgotten = p.account_id in lost_journal and not t.open
            if not loud(world, pid) and not forgotten:
                state = "live" if t.open else "closed"
                out.append(Violation("cloud-agrees-with-broker", pid,
                                     f"{p.status.value} in the cloud, but its order filled (#{t.ticket}, {state}) and nobody said so"))  # fmt: skip
            continue
        if p.mt_ticket != t.ticket:
            out.append(
                Violation("cloud-agrees-with-broker", pid, f"mtTicket {p.mt_ticket} != broker #{t.ticket}")
            )
        if p.entry_price is not None and abs(p.entry_price - t.open_price) > 1e-9:
            out.append(
                Violation("cloud-agrees-with-broker", pid, f"entryPrice {p.entry_price} != {t.open_price}")
            )
        if t.open:
            if p.status is not S.OPEN:
                out.append(
                    Violation(
                        "cloud-agrees-with-broker",
                        pid,
                        f"{p.status.value} but #{t.ticket} is live on the broker",
                    )
                )
            continue
        if p.status is S.OPEN:
            out.append(
                Violation(
                    "cloud-agrees-with-broker", pid, f"OPEN but #{t.ticket} was closed ({t.close_reason})"
                )
            )
            continue
        ours = t.close_magic is not None and t.close_magic in close_magics(pid)
        want = S.CLOSED if ours else S.STOPPED
        if p.status is not want:
            out.append(
                Violation(
                    "cloud-agrees-with-broker",
                    pid,
                    f"{p.status.value}, expected {want.value} (closed: {t.close_reason})",
                )
            )
        if p.exit_price is None or t.close_price is None or abs(p.exit_price - t.close_price) > 1e-9:
            out.append(
                Violation(
                    "cloud-agrees-with-broker", pid, f"exitPrice {p.exit_price} != broker {t.close_price}"
                )
            )
        if p.exit_time != t.close_time:
            out.append(
                Violation("cloud-agrees-with-broker", pid, f"exitTime {p.exit_time} != broker {t.close_time}")
            )
    # 2. actions
    for aid, a in cloud.actions.items():
        if a.user_id != USER or a.account_id not in world.bound:
            continue
        if a.status is ActionStatus.EXECUTING:
            out.append(Violation("no-lost-action", aid, f"{a.type.value} on {a.position_id} still EXECUTING"))
        elif a.status is ActionStatus.EXECUTED:
            trades = trades_by_magic.get(open_magic(a.position_id), [])
            if a.type is ActionType.ENTRY and not trades:
                out.append(
                    Violation("no-lost-action", aid, f"ENTRY EXECUTED but {a.position_id} never filled")
                )
            # one account bound on two PCs: each may hold its own copy of the open; the executing PC closes
            # its copy, the other copy is left open and must be said loudly (as cloud-agrees-with-broker)
            two_copies = a.account_id in double_bound and any(not t.open for t in trades)
            if (
                a.type is ActionType.CLOSE
                and (not trades or trades[0].open)
                and not (two_copies and loud(world, a.position_id))
            ):
                out.append(
                    Violation("no-lost-action", aid, f"CLOSE EXECUTED but {a.position_id} is not closed")
                )
    # 5. fires
    fired: set[str] = set()
    for name in world.specs:
        for j in world.journals(name)[-1:]:  # a lost journal's fires are lost with it
            try:
                for pid in [r[0] for r in j._db.execute("SELECT position_id FROM fires").fetchall()]:
                    fire = j.get_fire(pid)
                    assert fire is not None
                    fired.add(pid)
                    if fire.pending_ids:
                        out.append(
                            Violation(
                                "fire-triggers-claimed",
                                pid,
                                f"claims never settled: {list(fire.pending_ids)}",
                            )
                        )
                    for aid in fire.trigger_ids:
                        act = cloud.actions.get(aid)
                        if act is not None and act.user_id == USER and act.status is ActionStatus.PENDING:
                            out.append(
                                Violation("fire-triggers-claimed", pid, f"trigger {aid} still PENDING")
                            )
            finally:
                j.close()
    for pid, p in positions.items():
        if p.status is S.STOPPED and pid not in fired and p.account_id not in lost_journal:
            out.append(
                Violation(
                    "fire-triggers-claimed", pid, "STOPPED but no fire was recorded (its triggers never ran)"
                )
            )
    # 6. trail semantics
    for f in world.fires:
        if f.cause != "trail":
            continue
        fp = cloud.positions.get(f.position_id)
        # judge the fire by the newest version of the record the firing agent had been told (a frame the
        # cloud dropped is not the agent's fault), at least EDIT_SETTLE_S before the fire
        view = world.views.get(f.agent)
        told = [e for e in (view.seen.get(f.position_id, []) if view else []) if e[0] <= f.at - EDIT_SETTLE_S]
        if fp is None or not told:
            continue
        newest = max(told, key=lambda e: e[1])
        # any version at least as new as that one, told before the fire, may already be in effect
        later = (
            [e for e in view.seen.get(f.position_id, []) if e[0] <= f.at and e[1] >= newest[1]]
            if view
            else []
        )
        widths = sorted({e[2] for e in [newest, *later]})
        if all(w <= 0 for w in widths):
            out.append(
                Violation(
                    "trail-semantics",
                    f.position_id,
                    f"fired at {f.at:.2f} with trailWidth 0 (told at {newest[0]:.2f})",
                )
            )
            continue
        if f.best is None or f.price is None:
            continue
        drawdown = f.best - f.price if fp.side is Side.BUY else f.price - f.best
        per_pip = float(DEFAULT_PIP[fp.symbol] / DEFAULT_POINT[fp.symbol])
        if not any(w > 0 and drawdown >= int(w * per_pip) for w in widths):
            w = min(w for w in widths if w > 0)
            out.append(Violation("trail-semantics", f.position_id,
                                 f"fired {drawdown} points from the best price, width is {w:g} pips = {int(w * per_pip)} points"))  # fmt: skip
    # after a lost journal the agent cannot know everything it did: a disagreement must then be said loudly
    return [
        v
        for v in out
        if not (
            v.invariant == "cloud-agrees-with-broker"
            and v.record in positions
            and positions[v.record].account_id in lost_journal
            and loud(world, v.record)
        )
    ]


def describe(p: Position | Action) -> str:
    return json.dumps(p.to_wire(), sort_keys=True)
