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
