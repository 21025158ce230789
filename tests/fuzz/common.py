"""What every fuzz target shares: the case/outcome contract, a seeded generator of hostile input, and the
"nearly valid" mutator.

A target is ``generate(gen) -> case`` plus ``check(case) -> Outcome``. ``check`` returns "accepted" or
"rejected" when the code under test kept its promise, raises :class:`Violation` when it answered but broke
a promise (a rejection without a reason, an accepted value that is unusable), and lets anything else escape:
that escape is the crash the fuzzer is looking for.

Cases come from a seed (``Gen(seed)``), so every case is reproducible from one integer. ``make test`` lets
hypothesis pick a few hundred seeds per target (it remembers failing ones in .hypothesis/); ``bench/fuzz.py``
runs seeds 0..9,999 per target. Why seeds and not hypothesis strategies for the structure: on the reference
machine hypothesis spends ~1 ms per example plus ~70 us per draw, so a nearly-valid payload (60+ draws)
costs ~30 ms and 10,000 cases per target would not fit the bench's budget; the generator below builds one
in ~0.1 ms, biased (like hypothesis) toward boundaries, odd Unicode and odd shapes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

Outcome = Literal["accepted", "rejected"]
C = TypeVar("C")
T = TypeVar("T")


class Violation(AssertionError):
    """The code under test answered, but broke the promise the target checks."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Violation(what)


@dataclass(frozen=True)
class Target(Generic[C]):
    name: str
    generate: Callable[[Gen], C]
    check: Callable[[C], Outcome]

    def case(self, seed: int) -> C:
        return self.generate(Gen(seed))


#: ``make test``: a few hundred seeds per target (bench/fuzz.py runs 10,000). A failing seed is printed and
#: kept in .hypothesis/ to be tried first next time; shrinking a seed would not make its case any smaller.
FUZZ = settings(
    max_examples=300,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def nested_in_stack(depth: int, fn: Callable[[], T]) -> T:
    """``fn()`` called ``depth`` frames down, as deep as the event loop and gql's receive loop sit."""
    return fn() if depth <= 0 else nested_in_stack(depth - 1, fn)


def scratch_dir() -> str:
    """Where file-based targets write: tmpfs when there is one (fsync-heavy SQLite would dominate on disk)."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="hedge-fuzz-", dir=base)


INTS: tuple[int, ...] = (0, 1, -1, 2, 255, 256, 1024, 65535, 65536, 2**31 - 1, 2**31, -(2**31), 2**32)
INTS += (2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400)
FLOATS: tuple[float, ...] = (0.0, -0.0, 0.5, 1e-9, 5e-324, 1.7976931348623157e308, -1e308, 1e16, 0.1 + 0.2)
FLOATS += (math.inf, -math.inf, math.nan)
NASTY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "\ud800",
    "\udfff",
    "é",
    "日本語",
    "\u202e",
    "\U0001f4b8",
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
    "${HOME}",
    "a\nb",
    "'; DROP TABLE intents; --",
)
#: code point ranges to draw characters from: ASCII, controls, Latin-1, CJK, RTL marks, astral, specials
_RANGES: tuple[tuple[int, int], ...] = ((0x20, 0x7E), (0x00, 0x1F), (0xA0, 0xFF), (0x4E00, 0x4E40))
_RANGES += ((0x2028, 0x202E), (0x1F300, 0x1F320), (0xFFF0, 0xFFFF))
_KEYS = ("id", "type", "__typename", "", "userId", "q", "a", "value", "x" * 64)


class Gen:
    """Seeded source of hostile values (one ``random.Random`` per case)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.r = random.Random(seed)

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.r.randrange(len(seq))]

    def between(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def integer(self) -> int:
        if self.chance(0.4):
            return self.pick(INTS)
        return self.r.randint(-1000, 1000) if self.chance(0.7) else self.r.getrandbits(70) - (1 << 69)

    def real(self) -> float:
        if self.chance(0.4):
            return self.pick(FLOATS)
        return (
            self.r.uniform(-1e6, 1e6)
            if self.chance(0.8)
            else self.r.uniform(-1, 1) * 10 ** self.between(-300, 300)
        )

    def text(self, max_size: int = 24) -> str:
        if self.chance(0.2):
            return self.pick(NASTY_STRINGS)
        if self.chance(0.5):  # plain ASCII: the most frequent shape of real junk
            return "".join(chr(self.r.randint(0x20, 0x7E)) for _ in range(self.between(0, max_size)))
        out = []
        for _ in range(self.between(0, max_size)):
            lo, hi = self.pick(_RANGES)
            out.append(chr(self.r.randint(lo, hi)))
        if self.chance(0.1):  # a lone surrogate: what a JSON "\udXXX" escape decodes to
            out.insert(self.between(0, len(out)), chr(self.r.randint(0xD800, 0xDFFF)))
        return "".join(out)

    def long_text(self, max_size: int = 300_000) -> str:
        return self.pick('x\u00e9\ud800"\\[') * self.between(1_000, max_size)

    def scalar(self) -> Any:
        return self.pick((None, True, False, self.integer(), self.real(), self.text(), self.text()))

    def json(self, budget: int = 12) -> Any:
        """A random JSON-ish tree with at most ``budget`` nodes (few levels deep; see :meth:`deep`)."""
        if budget <= 1 or self.chance(0.35):
            return self.scalar()
        budget -= 1
        if self.chance(0.5):
            return [self.json(budget // 3) for _ in range(self.between(0, 4))]
        return {self.key(): self.json(budget // 3) for _ in range(self.between(0, 4))}

    def key(self) -> str:
        return self.pick(_KEYS) if self.chance(0.5) else self.text(12)

    def deep(self, max_depth: int = 990) -> Any:
        """A value nested up to ``max_depth`` levels (990: about what json.loads builds in a running
        program before its recursion limit), built without recursion: the point is to find who recurses."""
        value: Any = self.scalar()
        as_list = self.chance(0.5)
        for _ in range(self.between(1, max_depth)):
            value = [value] if as_list else {"a": value}
        return value

    def deep_text(self) -> str:
        """JSON text nested up to 200,000 levels: json.loads itself fails past ~1,000."""
        depth = self.between(1, 200_000)
        if self.chance(0.5):
            return "[" * depth + "]" * depth
        return '{"a":' * depth + "1" + "}" * depth

    def junk(self, max_depth: int = 990) -> Any:
        """What a broken or hostile peer puts where a valid value belongs."""
        roll = self.r.random()
        if roll < 0.7:
            return self.json()
        if roll < 0.85:
            return self.long_text()
        return self.deep(max_depth)

    def serializable_junk(self) -> Any:
        """Junk that json.dumps can still write from inside a test; deeper frames come from deep_text."""
        return self.junk(max_depth=300)

    def neighbour(self, value: Any) -> Any:
        """A value close to ``value`` but of another type or just out of range: what a buggy peer sends."""
        near: list[Any] = [None, [value], {"value": value}]
        if isinstance(value, bool):
            near += [int(value), "true" if value else "false", str(value)]
        elif isinstance(value, int | float):
            near += [-value, value * 10**6, math.nan, math.inf, -math.inf, 0, -1, 2**63, 1e308, str(value)]
            near.append(bool(value))
            if isinstance(value, float) and math.isfinite(value):
                near.append(int(value))
            elif isinstance(value, int) and abs(value) < 2**1023:
                near.append(float(value))
        elif isinstance(value, str):
            near += [
                "",
                value.lower(),
                value + " ",
                value + "\n",
                value + "\x00",
                value[:-1],
                "\ud800" + value,
            ]
            short = value[:1_000]  # long strings come from long_text; these edits must stay cheap
            near += [short * 100, len(value), short.encode("utf-8", "surrogatepass").hex()]
        return self.pick(near)

    def mutate(self, valid: Any, junk: Callable[[], Any] | None = None) -> Any:
        """``valid`` with one to three edits: a value removed, retyped, replaced by junk, or a key added."""
        junk = junk or self.junk
        doc = copy.deepcopy(valid)
        for _ in range(self.between(1, 3)):
            path = self.pick(paths(doc))
            how = self.pick(("drop", "near", "near", "junk", "add"))
            if not path:
                if how == "near":
                    doc = self.neighbour(doc)
                elif how == "junk":
                    doc = junk()
                elif isinstance(doc, dict):
                    doc[self.key()] = junk()
                continue
            parent = _parent(doc, path)
            key = path[-1]
            if how == "drop":
                del parent[key]
            elif how == "near":
                parent[key] = self.neighbour(parent[key])
            elif how == "junk":
                parent[key] = junk()
            elif isinstance(parent, dict):
                parent[self.key()] = junk()
            else:
                parent.append(junk())
        return doc

    def damage(self, text: str) -> str:
        """Byte-level damage to a serialized frame: truncated, a character dropped, inserted or doubled."""
        i = self.between(0, len(text))
        how = self.between(0, 3)
        if how == 0:
            return text[:i]
        if how == 1:
            return text[:i] + text[i + 1 :]
        if how == 2:
            return text[:i] + self.pick('{}[]":,\\0e-. \x00\ud800') + text[i:]
        return text[:i] + text[i:] * 2


Path_ = tuple[str | int, ...]


def paths(doc: Any, limit: int = 400) -> list[Path_]:
    """Every path into a JSON document (breadth first, at most ``limit``), the root included."""
    out: list[Path_] = [()]
    todo: list[tuple[Path_, Any]] = [((), doc)]
    while todo and len(out) < limit:
        path, node = todo.pop(0)
        if isinstance(node, dict):
            children: list[tuple[str | int, Any]] = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            children = []
        for key, child in children:
            out.append((*path, key))
            todo.append(((*path, key), child))
    return out


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def dumps(value: Any) -> str:
    """JSON as a peer might send it: NaN/Infinity literals allowed, lone surrogates as escapes."""
    return json.dumps(value, allow_nan=True)
