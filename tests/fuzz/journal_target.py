"""Fuzz target: opening and replaying a journal that is damaged.

Each case starts from a real journal (written through the Journal API: intents in every state, trails,
fires, actions) and damages it: rows changed with raw sqlite3 (wrong types, unknown states, symbols and
sides, bad JSON in trails and fires, odd meta), rows added, a table replaced by one with other columns,
bytes flipped or cut, or a file of random bytes. Then the journal is opened and every read and replay
method is called.

Promise checked: each call returns values of the declared types, or raises FatalError whose message says
what to do; nothing else escapes (no sqlite3 error, ValueError, KeyError or json error).
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import shutil
import sqlite3
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.trailing import TrailState, new_trail
from hedge_agent.engine.journal import ActionRecord, FireRecord, Intent, IntentState, Journal
from hedge_agent.errors import FatalError

from .common import Gen, Outcome, Target, Violation, dumps, expect, scratch_dir

POSITIONS = ("p1", "p2", "p3", "p4")
ACTIONS = ("a1", "a2", "a3")
TABLES: dict[str, tuple[str, ...]] = {
    "intents": (*(f.name for f in dataclasses.fields(Intent)), "created", "updated", "closed"),
    "trails": ("position_id", "state", "updated"),
    "fires": ("position_id", "cause", "fired_at"),
    "claims": ("position_id", "action_id", "seq", "settled"),
    "actions": ("action_id", "position_id", "type", "outcome", "reason", "reported", "updated"),
    "meta": ("key", "value"),
}
#: words a FatalError uses to tell the user what to do
_ADVICE = ("move", "upgrade", "stop", "check")


@cache
def _scratch() -> Path:
    root = Path(scratch_dir())
    atexit.register(shutil.rmtree, root, True)
    return root


@cache
def template() -> bytes:
    """A journal with a bit of everything, as the agent writes it."""
    path = _scratch() / "template.sqlite3"
    j = Journal(path, clock=iter(range(1_000_000)).__next__)
    for n, pid in enumerate(POSITIONS):
        opened = Intent(
            f"open:{pid}", "open", pid, "acc-1", "sim", Symbol.USDJPY, Side.BUY, 0.1, 100 + n, "ha:x"
        )
        j.add_intent(opened)
        if n < 3:
            j.record_result(
                opened.intent_id, IntentState.FILLED, ticket=str(7000 + n), price=150.1, fill_time="t"
            )
        if n == 1:
            j.mark_reported(opened.intent_id)
        if n == 2:
            close = dataclasses.replace(opened, intent_id=f"close:{pid}:1", kind="close", side=Side.SELL)
            j.add_intent(close)
            j.record_result(close.intent_id, IntentState.UNKNOWN, code=128, reason="timeout")
    j.save_trails([new_trail(pid, Symbol.EURUSD, Side.SELL, 110_000, 50) for pid in POSITIONS[:2]])
    j.add_fire("p1", "trail", ACTIONS[:2])
    j.settle_claim("p1", "a1")
    j.add_fire("p3", "stopped", ACTIONS[2:])
    for aid in ACTIONS:
        j.begin_action(aid, "p1", "CLOSE")
    j.decide_action("a1", "EXECUTED", None)
    j.close()
    data = path.read_bytes()
    path.unlink()
    return data


# -- damage -------------------------------------------------------------------------------------------------


def _trail_json(g: Gen) -> str:
    state = new_trail(g.pick(POSITIONS), Symbol.EURUSD, Side.SELL, 110_000, 50).to_json()
    return dumps(g.mutate(state, lambda: g.junk(300)))


def _value(g: Gen, column: str) -> Any:
    """A value that SQLite will store in that column (its affinity may convert it) and that may be wrong."""
    roll = g.between(0, 9)
    if roll == 0:
        return None
    if roll == 1:
        return g.pick(
            (g.integer() if abs(g.integer()) < 2**63 else 1, -1, 0, 2**63 - 1, 1.5, math.inf, -math.inf)
        )
    if roll == 2:
        return bytes(g.r.getrandbits(8) for _ in range(g.between(0, 8)))
    if roll == 3 and column == "state":
        return _trail_json(g)
    if roll == 4:
        return "[" * g.between(1, 5_000)
    if roll <= 6:
        return g.pick(
            ("usdjpy", "BUY ", "buy", "FILLED", "weird", "open", "close", "", "99", "1.5", "NaN", "a1")
        )
    return g.text(12)


def _rowids(db: sqlite3.Connection, table: str) -> list[int]:
    return [r[0] for r in db.execute(f"SELECT rowid FROM {table}")]


def _damage_rows(g: Gen, db: sqlite3.Connection) -> None:
    for _ in range(g.between(1, 4)):
        table = g.pick(tuple(TABLES))
        column = g.pick(TABLES[table])
        how = g.between(0, 9)
        try:
            if how <= 6 and (rowids := _rowids(db, table)):
                db.execute(
                    f"UPDATE {table} SET {column}=? WHERE rowid=?", (_value(g, column), g.pick(rowids))
                )
            elif how <= 8:
                values = [_value(g, c) for c in TABLES[table]]
                db.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(values))})", values)
            else:  # a table of the same name with other columns: a foreign or far older file
                db.execute(f"DROP TABLE {table}")
                db.execute(f"CREATE TABLE {table} (x TEXT, {column} TEXT)")
        except (sqlite3.IntegrityError, sqlite3.OperationalError, OverflowError, UnicodeEncodeError):
            pass  # refused (NOT NULL, primary key, a replaced table, a lone surrogate): no journal holds that
    db.commit()


def _damage_bytes(g: Gen, data: bytes) -> bytes:
    roll = g.between(0, 3)
    if roll == 0:
        return bytes(g.r.getrandbits(8) for _ in range(g.between(0, 9000)))
    if roll == 1:
        return data[: g.between(0, len(data))]
    out = bytearray(data)
    for _ in range(g.between(1, 20)):
        out[g.between(0, len(out) - 1)] = g.r.getrandbits(8)
    return bytes(out)


Case = bytes  # the journal file


def _fresh(name: str) -> Path:
    path = _scratch() / name
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return path


def generate(g: Gen) -> Case:
    if g.chance(0.25):
        return _damage_bytes(g, template())
    path = _fresh("damaged.sqlite3")
    path.write_bytes(template())
    db = sqlite3.connect(path)
    try:
        _damage_rows(g, db)
    finally:
        db.close()  # the last connection: SQLite folds its WAL back into the file
    return path.read_bytes()


# -- the promise --------------------------------------------------------------------------------------------


def _typed(obj: Any, types: dict[str, Any]) -> None:
    for name, expected in types.items():
        value = getattr(obj, name)
        expect(isinstance(value, expected), f"{type(obj).__name__}.{name} = {value!r}: not {expected}")


_INTENT = {
    **dict.fromkeys(("intent_id", "kind", "position_id", "account_id", "terminal", "comment"), str),
    "symbol": Symbol,
    "side": Side,
    "volume": float,
    "magic": int,
    "ticket": str | None,
    "state": IntentState,
    "price": float | None,
    "fill_time": str | None,
    "code": int | None,
    "reason": str | None,
    "reported": bool,
}


def _check_intent(i: Intent) -> None:
    _typed(i, _INTENT)
    expect(
        math.isfinite(i.volume) and (i.price is None or math.isfinite(i.price)), f"non-finite numbers: {i}"
    )


def _check_fire(f: FireRecord, position_id: str | None = None) -> None:
    _typed(f, {"position_id": str, "cause": str, "trigger_ids": tuple, "pending_ids": tuple})
    expect(
        all(isinstance(a, str) for a in f.trigger_ids + f.pending_ids), f"action ids that are not text: {f}"
    )
    expect(position_id is None or f.position_id == position_id, f"asked for {position_id}, got {f}")


def _check_action(a: ActionRecord) -> None:
    _typed(
        a, {"action_id": str, "position_id": str, "type": str, "outcome": str | None, "reason": str | None}
    )
    _typed(a, {"reported": bool})


def _check_trail(t: TrailState, position_id: str) -> None:
    _typed(t, {"position_id": str, "symbol": Symbol, "side": Side, "entry": int, "width": int, "armed": bool})
    _typed(t, {"peak": int | None, "fired": bool})
    expect(
        t.position_id == position_id, f"load_trail({position_id!r}) returned the trail of {t.position_id!r}"
    )


Call = tuple[str, Callable[[], Any], Callable[[Any], None]]


def _each(check: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(items: Any) -> None:
        expect(isinstance(items, list), f"not a list: {items!r}")
        for item in items:
            check(item)

    return run


def _maybe(check: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(item: Any) -> None:
        if item is not None:
            check(item)

    return run


def _count(n: Any) -> None:
    expect(type(n) is int, f"a count that is not an int: {n!r}")


def _nothing(result: Any) -> None:
    expect(result is None, f"returned {result!r}")


def _calls(j: Journal) -> list[Call]:
    calls: list[Call] = [
        ("unreported_intents", j.unreported_intents, _each(_check_intent)),
        ("intents", j.intents, _each(_check_intent)),
        ("open_tickets", j.open_tickets, _each(_check_intent)),
        ("unsettled_fires", j.unsettled_fires, _each(_check_fire)),
        ("unreported_actions", j.unreported_actions, _each(_check_action)),
        ("orders_in_window", partial(j.orders_in_window, "sim", 0.0), _count),
    ]
    for pid in POSITIONS:
        calls += [
            (f"get_intent(open:{pid})", partial(j.get_intent, f"open:{pid}"), _maybe(_check_intent)),
            (f"close_attempts({pid})", partial(j.close_attempts, pid), _each(_check_intent)),
            (
                f"load_trail({pid})",
                partial(j.load_trail, pid),
                _maybe(partial(_check_trail, position_id=pid)),
            ),
            (f"get_fire({pid})", partial(j.get_fire, pid), _maybe(partial(_check_fire, position_id=pid))),
        ]
    calls += [(f"get_action({a})", partial(j.get_action, a), _maybe(_check_action)) for a in ACTIONS]
    # the replay's writes that read back what is stored
    calls += [
        ("settle_claim(p1,a2)", partial(j.settle_claim, "p1", "a2"), _nothing),
        ("add_fire(p3)", partial(j.add_fire, "p3", "trail", ("a9",)), partial(_check_fire, position_id="p3")),
        ("begin_action(a2)", partial(j.begin_action, "a2", "p1", "CLOSE"), _check_action),
    ]
    return calls


def _fatal_says_what_to_do(e: FatalError, where: str) -> None:
    message = str(e)
    expect("journal" in message, f"{where}: a FatalError that does not say it is the journal: {message}")
    expect(any(w in message.lower() for w in _ADVICE), f"{where}: a FatalError with no advice: {message}")


def check(case: Case) -> Outcome:
    path = _fresh("journal.sqlite3")
    path.write_bytes(case)
    try:
        j = Journal(path)
    except FatalError as e:
        _fatal_says_what_to_do(e, "open")
        return "rejected"
    outcome: Outcome = "accepted"
    try:
        for name, call, check_result in _calls(j):
            try:
                result = call()
            except FatalError as e:
                _fatal_says_what_to_do(e, name)
                outcome = "rejected"
                continue
            try:
                check_result(result)
            except Violation as v:
                raise Violation(f"{name}: {v}") from None
    finally:
        j.close()
    return outcome


TARGET: Target[Case] = Target("journal", generate, check)
