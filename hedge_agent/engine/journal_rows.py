"""Reading journal rows back: every stored value is checked, so damage is a FatalError naming the table,
the row and the field instead of a bad value travelling on; SQLite errors after opening are fatal too."""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.intents import Intent, IntentState
from hedge_agent.domain.trailing import TrailState
from hedge_agent.errors import FatalError

INTENT_COLS = [f for f in Intent.__dataclass_fields__]


def intent_values(i: Intent) -> tuple[object, ...]:
    return (
        i.intent_id, i.kind, i.position_id, i.account_id, i.terminal, i.symbol.value, i.side.value, i.volume,
        i.magic, i.comment, i.ticket, i.state.value, i.price, i.fill_time, i.code, i.reason, int(i.reported),
    )  # fmt: skip


_DAMAGED = (
    "The journal is damaged: stop the agent, move the file aside (a new one is started), and check in-flight "
    "orders by hand on the terminal."
)
E = TypeVar("E", bound=StrEnum)


class Row:
    """Reads one stored row. A value the agent cannot have written (SQLite keeps whatever type it is given)
    is a FatalError naming the table, the row and the field, instead of a bad value travelling on."""

    def __init__(self, table: str, row: sqlite3.Row, key: str) -> None:
        self.table, self.row = table, row
        self.key = row[key] if key in row.keys() else None

    def _get(self, field: str) -> object:
        try:
            return self.row[field]
        except IndexError:
            raise self._bad(field, "missing", "a column of that name") from None

    def _bad(self, field: str, value: object, expected: str) -> FatalError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return FatalError(
            f"journal table {self.table!r}, row {self.key!r}: field {field!r} holds {shown}, expected "
            f"{expected}. {_DAMAGED}"
        )

    def text(self, field: str) -> str:
        value = self._get(field)
        if not isinstance(value, str):
            raise self._bad(field, value, "text")
        return value

    def opt_text(self, field: str) -> str | None:
        return None if self._get(field) is None else self.text(field)

    def integer(self, field: str) -> int:
        value = self._get(field)
        if not isinstance(value, int):
            raise self._bad(field, value, "an integer")
        return value

    def opt_integer(self, field: str) -> int | None:
        return None if self._get(field) is None else self.integer(field)

    def real(self, field: str) -> float:
        value = self._get(field)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise self._bad(field, value, "a finite number")
        return float(value)

    def opt_real(self, field: str) -> float | None:
        return None if self._get(field) is None else self.real(field)

    def enum(self, field: str, cls: type[E]) -> E:
        value = self._get(field)
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        raise self._bad(field, value, f"one of {', '.join(cls)}")

    def ids(self, field: str) -> tuple[str, ...]:
        value = self._get(field)
        try:
            ids = json.loads(value) if isinstance(value, str) else None
        except (ValueError, RecursionError):
            ids = None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise self._bad(field, value, "a JSON array of action ids")
        return tuple(ids)

    def trail(self, field: str) -> TrailState:
        value = self._get(field)
        try:
            return TrailState.from_json(json.loads(self.text(field)))
        except FatalError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as e:
            raise self._bad(field, value, f"a trail state ({type(e).__name__}: {e})") from None


def intent_from(row: sqlite3.Row) -> Intent:
    r = Row("intents", row, "intent_id")
    return Intent(
        r.text("intent_id"), r.text("kind"), r.text("position_id"), r.text("account_id"), r.text("terminal"),
        r.enum("symbol", Symbol), r.enum("side", Side), r.real("volume"), r.integer("magic"),
        r.text("comment"), r.opt_text("ticket"), r.enum("state", IntentState), r.opt_real("price"), r.opt_text("fill_time"),
        r.opt_integer("code"), r.opt_text("reason"), bool(r.integer("reported")),
    )  # fmt: skip


_P = ParamSpec("_P")
_T = TypeVar("_T")


def fatal_on_failure(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """An SQLite error after opening (damage quick_check did not see, text that is not UTF-8, a lock held
    past busy_timeout, a full disk) is the FatalError the constructor raises: the journal is not to be
    trusted any more."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise FatalError(
                f"journal {getattr(args[0], 'path', '')} failed ({e}). Stop every other hedge-agent; if this "
                "persists the file is damaged: move it aside and check in-flight orders by hand on the "
                "terminal."
            ) from e

    return guarded
