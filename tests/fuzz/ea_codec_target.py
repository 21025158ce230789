"""Fuzz target: the MT4 bridge codec (``parse_from_ea`` / ``parse_from_agent`` / ``encode``).

Cases are frames in either direction: valid frames of every message type, nearly valid ones (a field
removed, retyped, out of range), damaged text, oversized frames, deep nesting, binary and non-UTF-8 frames.

Promise checked: a message of that direction, or a FrameError with a reason (and, when it names a field,
a non-empty one); an accepted message encodes and parses back to itself; what the fast paths (ticks, ack)
accept, the validated model accepts too, with the same value; an accepted time converts to a datetime the
way the terminal adapter converts it. Nothing else escapes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from hedge_agent.terminals.mt4 import codec

from .common import Gen, Outcome, Target, Violation, dumps, expect

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"
_SYMBOLS = ("EURUSD", "USDJPY.raw", "XAUUSDm", "EURGBP", "#US30")
_EPOCH_FIELDS = ("time", "open_time", "close_time")


def _rid(g: Gen) -> str:
    return "".join(g.pick(_ID_CHARS) for _ in range(g.between(1, 64 if g.chance(0.1) else 12)))


def _price(g: Gen) -> float:
    return round(g.r.uniform(0, 5000), g.between(0, 6))


def _volume(g: Gen) -> float:
    return round(g.r.uniform(0.01, 100), 2)


def _epoch(g: Gen) -> float:
    return float(g.between(0, 4_000_000_000)) + g.pick((0.0, 0.5, 0.123))


def _name(g: Gen, max_size: int) -> str:
    return g.text(max_size)[:max_size] if g.chance(0.3) else g.pick(_SYMBOLS)[:max_size]


def _trade(g: Gen) -> dict[str, Any]:
    closed = g.chance(0.5)
    t: dict[str, Any] = {
        "ticket": g.between(0, 2**31),
        "symbol": g.pick(_SYMBOLS),
        "side": g.pick(("BUY", "SELL")),
        "volume": _volume(g),
        "open_price": _price(g),
        "open_time": _epoch(g),
        "magic": g.between(codec.MIN_MAGIC, codec.MAX_MAGIC),  # foreign EAs: signed
        "comment": g.text(20)[:64],
        "state": "closed" if closed else "open",
    }
    if closed:
        t |= {
            "close_price": _price(g),
            "close_time": _epoch(g),
            "close_magic": g.between(codec.MIN_MAGIC, codec.MAX_MAGIC),
        }
        t["close_reason"] = g.pick(("closed by expert", "stop out", "[sl]"))
    return t


def _fill(g: Gen) -> dict[str, Any]:
    return {"ticket": g.between(0, 2**31), "price": _price(g), "volume": _volume(g), "time": _epoch(g)}


def _hex64(g: Gen) -> str:
    return f"{g.r.getrandbits(256):064x}"


def from_ea(g: Gen) -> dict[str, Any]:
    kind = g.pick(codec._EA_TYPES)
    if kind == "hello":
        return {"type": "hello", "v": codec.PROTOCOL_VERSION, "nonce": _hex64(g)}
    if kind == "auth":
        return {
            "type": "auth",
            "proof": _hex64(g),
            "terminal": g.pick(("MT4", "MT5")),
            "build": g.between(0, 2000),
            "login": g.between(0, 10**9),
            "server": _name(g, 128),
            "company": _name(g, 128),
            "ea_version": "1.0.0",
            "instance": _rid(g),
            **({"session": _rid(g)} if g.chance(0.5) else {}),
        }
    if kind == "ticks":
        q = [[g.pick(_SYMBOLS), _price(g), _price(g), g.between(0, 2**41)] for _ in range(g.between(0, 5))]
        return {"type": "ticks", "q": q}
    if kind == "account":
        money = {k: round(g.r.uniform(-1e6, 1e7), 2) for k in ("balance", "credit", "equity", "margin")}
        return {"type": "account", "login": g.between(0, 10**9), **money, "trade_allowed": g.chance(0.5)}
    if kind == "watching":
        return {"type": "watching", "symbols": list(_SYMBOLS[: g.between(0, 5)]), "missing": ["XAUUSD"]}
    if kind == "ack":
        return {"type": "ack", "id": _rid(g), "dup": g.chance(0.2)}
    if kind == "result":
        status = g.pick(("done", "rejected", "unknown"))
        fill = _fill(g) if status == "done" else {}
        return {"type": "result", "id": _rid(g), "status": status, **fill, "code": g.between(0, 150)}
    if kind == "trades":
        stored = {"status": g.pick(("pending", "done")), "op": g.pick(("open", "close"))}
        if stored["status"] == "done":
            stored |= _fill(g)
        trades = [_trade(g) for _ in range(g.between(0, 3))]
        return {
            "type": "trades",
            "id": _rid(g),
            "trades": trades,
            **({"stored": stored} if g.chance(0.5) else {}),
        }
    if kind == "positions":
        return {"type": "positions", "id": _rid(g), "positions": [_trade(g) for _ in range(g.between(0, 3))]}
    if kind == "error":
        return {"type": "error", "code": "bad_frame", "reason": g.text(40), "ref": _rid(g)}
    return {"type": "hb"}


def from_agent(g: Gen) -> dict[str, Any]:
    kind = g.pick(codec._AGENT_TYPES)
    if kind == "challenge":
        return {"type": "challenge", "v": 2, "nonce": _hex64(g), "proof": _hex64(g)}
    if kind == "welcome":
        return {"type": "welcome", "v": 2, "session": _rid(g), "heartbeat_s": 1.0, "dead_after_s": 5.0}
    if kind == "watch":
        return {"type": "watch", "symbols": list(_SYMBOLS[: g.between(0, 5)])}
    if kind == "order":
        order: dict[str, Any] = {"type": "order", "id": _rid(g), "op": g.pick(("open", "close"))}
        if order["op"] == "open":
            order |= {"symbol": g.pick(_SYMBOLS), "side": g.pick(("BUY", "SELL"))}
        else:
            order["ticket"] = g.between(0, 2**31)
        order |= {
            "volume": _volume(g),
            "deviation": g.between(0, 100),
            "magic": g.between(0, codec.MAX_MAGIC),
        }
        return order | {"comment": g.text(10)[: codec.MAX_COMMENT]}
    if kind == "query":
        return {"type": "query", "id": _rid(g), "magic": g.between(0, codec.MAX_MAGIC)}
    if kind == "get_positions":
        return {"type": "get_positions", "id": _rid(g)}
    if kind == "error":
        return {"type": "error", "code": "unexpected", "reason": g.text(40)}
    return {"type": "hb"}


def _compact(frame: Any) -> str:
    """As the EA writes frames: no spaces, ``type`` first (that routes ticks and acks to the fast paths)."""
    return json.dumps(frame, separators=(",", ":"), allow_nan=True)


Case = tuple[str, str | bytes]


def generate(g: Gen) -> Case:
    direction = g.pick(("ea", "ea", "agent"))
    valid = from_ea(g) if direction == "ea" else from_agent(g)
    roll = g.between(0, 19)
    raw: str | bytes
    if roll <= 4:
        raw = _compact(valid) if g.chance(0.7) else dumps(valid)
    elif roll <= 11:
        raw = _compact(g.mutate(valid, g.serializable_junk))
    elif roll <= 13:
        raw = g.damage(_compact(valid))
    elif roll == 14:  # oversized: more than the bridge's frame cap, still well-formed
        raw = _compact(valid | {"pad": "x" * (codec.MAX_FRAME_BYTES + g.between(0, 1000))})
    elif roll == 15:  # deep nesting behind a fast-path prefix, or alone
        prefix = g.pick(('{"type":"ticks","q":', '{"type":"ack","id":', '{"type":"result","x":', ""))
        raw = prefix + g.deep_text()
    elif roll == 16:
        raw = g.pick((_compact(valid).encode(), bytes(g.r.getrandbits(8) for _ in range(g.between(0, 64)))))
    elif roll == 17:
        raw = _compact(valid).encode("utf-8", "surrogatepass").decode("latin-1")  # mojibake
    else:
        raw = g.pick((g.text(), dumps(g.serializable_junk()), g.long_text()))
    return direction, raw


_FAST_PREFIXES = ('{"type":"ticks"', '{"type":"ack"')
_EA_CLASSES: tuple[type[BaseModel], ...] = (
    codec.Hello,
    codec.Auth,
    codec.Heartbeat,
    codec.Ticks,
    codec.Account,
    codec.Watching,
    codec.Ack,
    codec.Result,
    codec.Trades,
    codec.Positions,
    codec.ErrorMsg,
)
_AGENT_CLASSES: tuple[type[BaseModel], ...] = (codec.Challenge, codec.Welcome, codec.Heartbeat, codec.Watch)
_AGENT_CLASSES += (codec.Order,)
_AGENT_CLASSES += (codec.Query, codec.GetPositions, codec.ErrorMsg)


def _epochs(msg: BaseModel) -> list[float]:
    """Every epoch-seconds value in a message (results, trades and the EA's stored results)."""
    found: list[float] = []
    todo: list[Any] = [msg]
    while todo:
        node = todo.pop()
        if isinstance(node, BaseModel):
            for name, value in node:
                if name in _EPOCH_FIELDS and isinstance(value, float):
                    found.append(value)
                todo.append(value)
        elif isinstance(node, list | tuple):
            todo.extend(node)
    return found


def check(case: Case) -> Outcome:
    direction, raw = case
    parse = codec.parse_from_ea if direction == "ea" else codec.parse_from_agent
    try:
        msg = parse(raw)
    except codec.FrameError as e:
        expect(isinstance(e.reason, str) and bool(e.reason.strip()), f"a FrameError without a reason: {e!r}")
        expect(e.field is None or bool(e.field), f"a FrameError naming an empty field: {e!r}")
        expect(str(e).startswith("frame"), f"a FrameError message that does not say which frame: {e}")
        return "rejected"
    expected = _EA_CLASSES if direction == "ea" else _AGENT_CLASSES
    expect(isinstance(msg, expected), f"a {direction} frame parsed into a {type(msg).__name__}")
    again = parse(codec.encode(msg))
    expect(again == msg, f"{msg!r} does not survive encode -> parse: {again!r}")
    if direction == "ea" and isinstance(raw, str) and raw.startswith(_FAST_PREFIXES):
        try:
            validated = codec._FROM_EA.validate_json(raw)
        except ValidationError as e:
            if "recursion limit" in str(e):  # the model's JSON parser stops at ~200 levels, json.loads
                return (
                    "accepted"  # at ~1,000: an ignored key nested 200+ deep is no disagreement worth a cost
                )
            raise Violation(f"the fast path accepted {raw[:120]!r}; the model rejects it: {e}") from None
        expect(validated == msg, f"fast path gave {msg!r}, the model {validated!r}")
    for epoch in _epochs(msg):
        try:
            datetime.fromtimestamp(epoch, UTC)  # what the terminal adapter does with it
        except (OverflowError, ValueError, OSError) as e:
            raise Violation(f"accepted a time the terminal cannot convert ({epoch!r}): {e}") from None
    return "accepted"


TARGET: Target[Case] = Target("ea_codec", generate, check)
