"""Deterministic order tags: the same intent always yields the same magic number and comment, so an order
whose outcome is unknown can be found again on the terminal (design §3)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

MT5_MAGIC_BITS = 63  # MT5 magic is a 64-bit (signed use: keep it positive)
MT4_MAGIC_BITS = 31  # MT4 MagicNumber is a signed 32-bit int
#: well inside every terminal build's comment limit (MT5 builds differ: 29 and 28 have been seen); the magic
#: number is the key every lookup uses, the comment only a helper for people (servers may alter it)
COMMENT_MAX = 16


class IntentKind(StrEnum):
    OPEN = "open"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class OrderTag:
    intent_id: str
    magic: int
    comment: str


def intent_id(record_id: str, kind: IntentKind) -> str:
    """One intent per (record, kind): a position is opened at most once and closed at most once."""
    return f"{kind.value}:{record_id}"


def order_tag(intent: str, magic_bits: int = MT4_MAGIC_BITS, magic_base: int = 0) -> OrderTag:
    """Every magic is > ``magic_base``, so the user can keep other EAs' magic numbers below it.
    The smallest terminal (MT4, 31 bits) bounds every tag so one journal works for every kind."""
    digest = hashlib.sha256(intent.encode()).digest()
    span = 1 << magic_bits
    if not 0 <= magic_base < span // 2:
        raise ValueError(f"magic_base must be in [0, {span // 2}) for {magic_bits}-bit magic numbers")
    magic = magic_base + 1 + int.from_bytes(digest[:8], "big") % (span - magic_base - 1)
    comment = "ha:" + digest[:13].hex()[: COMMENT_MAX - 3]
    return OrderTag(intent, magic, comment)


def close_intent_id(record_id: str, attempt: int) -> str:
    """The intent of a position's ``attempt``-th close (1, 2, ...): one per attempt, the same on every PC."""
    return f"{intent_id(record_id, IntentKind.CLOSE)}:{attempt}"


#: close attempts of one position searched beyond this PC's own when a closing deal's tag is identified
#: (another PC trading the account may have made more attempts than this one)
CLOSE_ATTEMPTS_SEARCHED = 32


def close_intent_of(
    record_id: str, magic: int, attempts: int, magic_bits: int = MT4_MAGIC_BITS, magic_base: int = 0
) -> str | None:
    """The close intent of ``record_id`` whose tag is ``magic``, among attempts 1 to this PC's ``attempts``
    + ``CLOSE_ATTEMPTS_SEARCHED``; None: not a close hedge-agent made of this position (tags are
    deterministic, so a close sent for this position by any agent carries one of these)."""
    for n in range(1, attempts + CLOSE_ATTEMPTS_SEARCHED + 1):
        iid = close_intent_id(record_id, n)
        if order_tag(iid, magic_bits, magic_base).magic == magic:
            return iid
    return None
