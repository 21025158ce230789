"""What every fuzz target shares: the case/outcome contract, JSON-ish junk and the "nearly valid" mutator.

A target is a strategy of cases plus ``check(case) -> Outcome``. ``check`` returns "accepted" or "rejected"
when the code under test kept its promise, raises :class:`Violation` when it answered but broke a promise
(a rejection without a reason, an accepted value that is not usable), and lets anything else escape: that
escape is the crash the fuzzer is looking for. ``make test`` runs a few hundred cases per target through
pytest; ``bench/fuzz.py`` runs 10,000 per target with the same strategies and counts.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from hypothesis import strategies as st

Outcome = Literal["accepted", "rejected"]
C = TypeVar("C")


class Violation(AssertionError):
    """The code under test answered, but broke the promise the target checks."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Violation(what)


@dataclass(frozen=True)
class Target(Generic[C]):
    name: str
    cases: st.SearchStrategy[C]
    check: Callable[[C], Outcome]


def scratch_dir() -> str:
    """Where file-based targets write: tmpfs when there is one (fsync-heavy SQLite would dominate on disk)."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="hedge-fuzz-", dir=base)


# -- JSON-ish values ----------------------------------------------------------------------------------------

#: any code point, lone surrogates included: a JSON "\ud800" escape decodes to one
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
NASTY_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\udfff",
        "é",
        "日本語",
        "\u202e",
        "null",
        "NaN",
        "Infinity",
        "-0",
        "1e999",
        "0x10",
        "[]",
        "{}",
        '["a"',
        "9" * 5000,
        "USDJPY ",
        "usdjpy",
        "2025-13-45T99:99:99Z",
        "2025-01-01T00:00:00",
    ]
)
LONG_STRINGS = st.integers(1_000, 300_000).map(lambda n: "x" * n)
BIG_NUMBERS = st.sampled_from(
    [0, -1, 2**31, 2**31 - 1, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, 1e308, -1e308]
    + [5e-324, -0.0, math.inf, -math.inf, math.nan]
)
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and +-inf included: Python's json reads the NaN/Infinity literals
    ANY_TEXT,
    NASTY_STRINGS,
    BIG_NUMBERS,
)
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(["id", "type", "__typename", "", "userId", "q"]))
JSONISH: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)


def nested(depth: int, kind: str = "list") -> Any:
    """A value nested ``depth`` levels deep, built without recursion (the point is to find who recurses)."""
    value: Any = []
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def nested_text(depth: int, opener: str = "[") -> str:
    """JSON text nested ``depth`` levels deep; json.loads raises RecursionError on it past ~1,000 levels."""
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def deep(max_depth: int) -> st.SearchStrategy[Any]:
    return st.builds(nested, st.integers(1, max_depth), st.sampled_from(["list", "dict"]))


#: as deep as json.loads can build in a running program (its limit is the interpreter's, ~1,000)
DEEP = deep(900)
DEEP_TEXT = st.builds(nested_text, st.integers(1, 200_000), st.sampled_from(["[", "{"]))
#: values worth putting where a valid one was
JUNK: st.SearchStrategy[Any] = st.one_of(JSONISH, LONG_STRINGS, DEEP)
#: junk that json.dumps can still write from inside a test (depth-limited); deeper frames come as DEEP_TEXT
SERIALIZABLE_JUNK: st.SearchStrategy[Any] = st.one_of(JSONISH, LONG_STRINGS, deep(300))


def dumps(value: Any) -> str:
    """JSON as a peer might send it: NaN/Infinity literals allowed, lone surrogates as escapes."""
    return json.dumps(value, allow_nan=True)


# -- "nearly valid": one to three edits of a valid document ------------------------------------------------

Path_ = tuple[str | int, ...]


def paths(doc: Any, limit: int = 400) -> list[Path_]:
    """Every path into a JSON document (breadth first, at most ``limit``), the root included."""
    out: list[Path_] = [()]
    todo: list[tuple[Path_, Any]] = [((), doc)]
    while todo and len(out) < limit:
        path, node = todo.pop(0)
        children: list[tuple[str | int, Any]] = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        )
        for key, child in children:
            out.append((*path, key))
            todo.append(((*path, key), child))
    return out


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def neighbours(value: Any) -> list[Any]:
    """Values close to ``value`` but of another type or just out of range: what a buggy peer sends."""
    near: list[Any] = [None, [value], {"value": value}]
    if isinstance(value, dict | list):
        return near
    near.append(str(value))
    if isinstance(value, bool):
        near += [int(value), "true" if value else "false"]
    elif isinstance(value, int | float):
        near += [-value, value * 10**6, math.nan, math.inf, -math.inf, 0, -1, 2**63, 1e308, bool(value)]
        if isinstance(value, float) and math.isfinite(value):
            near.append(int(value))
        else:
            near.append(float(value))
    elif isinstance(value, str):
        near += ["", value.lower(), value + " ", value + "\x00", value * 100, value[:-1], "\ud800" + value]
    return near


@st.composite
def mutated(draw: st.DrawFn, valid: Any, junk: st.SearchStrategy[Any] = JUNK) -> Any:
    """``valid`` with one to three edits: a value removed, retyped, replaced by junk, or a key added."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        targets = paths(doc)
        path = draw(st.sampled_from(targets))
        how = draw(st.sampled_from(["drop", "near", "junk", "add"]))
        if not path:
            if how in ("near", "junk"):
                doc = draw(st.sampled_from(neighbours(doc))) if how == "near" else draw(junk)
            elif isinstance(doc, dict):
                doc[draw(KEYS)] = draw(junk)
            continue
        parent = _parent(doc, path)
        key = path[-1]
        if how == "drop":
            del parent[key]
        elif how == "near":
            parent[key] = draw(st.sampled_from(neighbours(parent[key])))
        elif how == "junk":
            parent[key] = draw(junk)
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(junk)
        else:
            parent.append(draw(junk))
    return doc


def text_edits(text: str) -> st.SearchStrategy[str]:
    """Byte-level damage to a serialized frame: truncated, a character dropped, swapped or inserted."""
    n = len(text)
    return st.one_of(
        st.integers(0, n).map(lambda i: text[:i]),
        st.integers(0, max(n - 1, 0)).map(lambda i: text[:i] + text[i + 1 :]),
        st.tuples(st.integers(0, n), st.sampled_from(list('{}[]":,\\0e-. \x00\ud800'))).map(
            lambda t: text[: t[0]] + t[1] + text[t[0] :]
        ),
    )
