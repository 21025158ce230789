"""Sans-I/O codec of the MT4 bridge protocol (ea/PROTOCOL.md, version 2): messages, parse, serialize.

No sockets, no clock: the server and the EA emulator move bytes; this module only says what a frame
means or why it is wrong. Every parse error is a :class:`FrameError` that names the frame type and the
field, so a bad frame is rejected with a reason the EA's log can show.

Unknown keys are ignored (a newer EA may add fields within version 1); types are strict (``"1.5"`` is not
a number, ``1`` is not ``true``); ``null`` and a missing key mean the same (§1).

Version 2 authenticates both ends (§3): ``hello`` carries the EA's nonce, ``challenge`` the bridge's nonce
and its proof, ``auth`` the EA's proof; the token itself never crosses the socket (:func:`proof`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from enum import IntEnum
from typing import Annotated, Any, Final, Literal, Self, TypeAlias, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

PROTOCOL_VERSION: Final = 2
#: the largest frame either side accepts (UTF-8 bytes of one WebSocket message)
MAX_FRAME_BYTES: Final = 1 << 20
#: MT4's OrderComment holds 31 characters; the server may still shorten it
MAX_COMMENT: Final = 31
MAX_MAGIC: Final = (1 << 31) - 1  # MQL4 MagicNumber is a signed 32-bit int
MIN_MAGIC: Final = -(1 << 31)  # other EAs' trades may carry negative magics; ours are never negative
MAX_WATCH: Final = 256

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
SideName = Literal["BUY", "SELL"]
Magic = Annotated[int, Field(ge=0, le=MAX_MAGIC)]
#: the magic of any trade on the terminal (foreign EAs included): the whole signed 32-bit range
AnyMagic = Annotated[int, Field(ge=MIN_MAGIC, le=MAX_MAGIC)]
#: a fresh random nonce of the handshake: 32 bytes as 64 lowercase hex digits
Nonce = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
#: HMAC-SHA256 as 64 lowercase hex digits
Proof = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Volume = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]
#: UTC seconds since 1970, before year 3000: the adapter makes datetimes of them (Windows' limit is 3001), and
#: milliseconds sent by mistake must be a FrameError, not a crash on the fill
MAX_EPOCH: Final = 32_503_680_000.0
Epoch = Annotated[float, Field(ge=0, le=MAX_EPOCH, allow_inf_nan=False)]
BrokerSymbol = Annotated[str, Field(min_length=1, max_length=32)]


class CloseCode(IntEnum):
    """WebSocket close codes the bridge uses (4000-4999 are the application's range)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the agent shuts down
    MESSAGE_TOO_BIG = 1009  # sent by the websockets library itself on a frame over MAX_FRAME_BYTES
    UNAUTHORIZED = 4001  # the peer failed the challenge (wrong or no proof): it does not hold the token
    HELLO_TIMEOUT = 4002  # no hello (or no auth after the challenge) in time
    PROTOCOL_ERROR = 4003  # the first frame is not a valid hello / auth
    UNSUPPORTED_VERSION = 4004
    REPLACED = 4005  # the same EA (same session) connected again; this older socket is dropped
    BUSY = 4006  # another EA is already connected for this terminal
    DEAD_PEER = 4007  # no frame within dead_after_s
    WRONG_ACCOUNT = 4008  # the EA runs on another login than the terminal is configured for


class FrameError(ValueError):
    """A frame that cannot be accepted; ``frame`` is its type (when known), ``field`` the offending key."""

    def __init__(self, reason: str, *, frame: str | None = None, field: str | None = None) -> None:
        self.reason = reason
        self.frame = frame
        self.field = field
        where = f"frame {frame!r}" if frame else "frame"
        if field:
            where += f": field {field!r}"
        super().__init__(f"{where}: {reason}")


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


def _or(default: Any) -> BeforeValidator:
    """PROTOCOL §1: ``null`` and a missing key mean the same, so ``null`` takes the field's default.
    (Fields whose default is None need nothing: None is their value.)"""
    return BeforeValidator(lambda v: default if v is None else v)


# -- both directions ----------------------------------------------------------------------------------


class Heartbeat(_Msg):
    type: Literal["hb"] = "hb"


class ErrorMsg(_Msg):
    """A complaint about a frame or a request the sender could not act on; the connection stays open."""

    type: Literal["error"] = "error"
    code: str = Field(min_length=1, max_length=64)
    reason: str = Field(max_length=2048)
    ref: str | None = Field(default=None, max_length=64)  # the request id it refers to, if any


# -- EA -> agent --------------------------------------------------------------------------------------


class Hello(_Msg):
    """The EA's first frame: the protocol version and a fresh nonce, nothing else (an impostor server
    learns nothing from it: no login, no server, no token)."""

    type: Literal["hello"] = "hello"
    v: int
    nonce: Nonce


class Auth(_Msg):
    """The EA's answer to the bridge's ``challenge``: its proof, then who it is."""

    type: Literal["auth"] = "auth"
    proof: Proof
    terminal: Annotated[Literal["MT4", "MT5"], _or("MT4")] = "MT4"
    build: int = Field(ge=0)
    login: int = Field(ge=0)
    server: str = Field(max_length=128)
    company: Annotated[str, _or("")] = Field(default="", max_length=128)
    ea_version: str = Field(min_length=1, max_length=32)
    #: random per EA run (OnInit); names the EA in logs and in the "busy" reason
    instance: str = Field(min_length=1, max_length=64)
    #: the session of this EA's previous welcome, if any: lets the bridge tell a reconnect from a second EA
    session: str | None = Field(default=None, max_length=64)


class Ticks(_Msg):
    type: Literal["ticks"] = "ticks"
    #: [broker symbol, bid, ask, broker time in ms since 1970 UTC]
    q: list[tuple[BrokerSymbol, Price, Price, int]] = Field(max_length=MAX_WATCH)


class Account(_Msg):
    type: Literal["account"] = "account"
    login: int = Field(ge=0)
    balance: float = Field(allow_inf_nan=False)
    credit: float = Field(allow_inf_nan=False)
    equity: float = Field(allow_inf_nan=False)
    margin: float = Field(allow_inf_nan=False)
    margin_level: float | None = Field(default=None, allow_inf_nan=False)
    currency: Annotated[str, _or("USD")] = Field(default="USD", max_length=8)
    #: terminal "AutoTrading" on, EA "Allow live trading" on, account allows expert trading
    trade_allowed: bool
    #: the terminal is connected to its trade server
    connected: Annotated[bool, _or(True)] = True


class Watching(_Msg):
    type: Literal["watching"] = "watching"
    symbols: list[BrokerSymbol] = Field(max_length=MAX_WATCH)
    missing: Annotated[list[BrokerSymbol], _or([])] = Field(default_factory=list, max_length=MAX_WATCH)


class Ack(_Msg):
    type: Literal["ack"] = "ack"
    id: RequestId
    dup: Annotated[bool, _or(False)] = (
        False  # the EA had seen this id before: the stored result follows, no new order
    )


ResultStatus = Literal["done", "rejected", "unknown"]


class Result(_Msg):
    type: Literal["result"] = "result"
    id: RequestId
    status: ResultStatus
    ticket: int | None = Field(default=None, ge=0)
    price: Price | None = None
    volume: Volume | None = None
    time: Epoch | None = None
    code: Annotated[int, _or(0)] = 0  # MT4 GetLastError() of the last attempt (0 when done)
    reason: Annotated[str, _or("")] = Field(default="", max_length=512)
    #: the account right after the trade (saves a separate ``account`` frame on every order)
    account: Account | None = None

    @model_validator(mode="after")
    def _done_has_fill(self) -> Self:
        if self.status == "done":
            for name in ("ticket", "price", "volume", "time"):
                if getattr(self, name) is None:
                    raise ValueError(f"field {name!r}: required when status is 'done'")
        return self


class Stored(_Msg):
    """The EA's de-duplication record of a request id (``pending``: written before OrderSend, never
    finished: the EA stopped mid-order)."""

    status: Literal["pending", "done", "rejected", "unknown"]
    op: Literal["open", "close"]
    ticket: int | None = Field(default=None, ge=0)
    price: Price | None = None
    volume: Volume | None = None
    time: Epoch | None = None
    code: Annotated[int, _or(0)] = 0
    reason: Annotated[str, _or("")] = Field(default="", max_length=512)


class Trade(_Msg):
    ticket: int = Field(ge=0)
    symbol: BrokerSymbol
    side: SideName
    volume: Volume
    open_price: Price
    open_time: Epoch
    magic: AnyMagic
    comment: Annotated[str, _or("")] = Field(default="", max_length=64)
    state: Literal["open", "closed"]
    close_price: Price | None = None
    close_time: Epoch | None = None
    close_magic: AnyMagic | None = None
    close_reason: str | None = Field(default=None, max_length=64)


class Trades(_Msg):
    type: Literal["trades"] = "trades"
    id: RequestId
    trades: list[Trade]
    stored: Stored | None = None


class Positions(_Msg):
    type: Literal["positions"] = "positions"
    id: RequestId
    positions: list[Trade]


# -- agent -> EA --------------------------------------------------------------------------------------


class Challenge(_Msg):
    """The bridge's answer to ``hello``: its own nonce and its proof that it holds the token."""

    type: Literal["challenge"] = "challenge"
    v: int = PROTOCOL_VERSION
    nonce: Nonce
    proof: Proof


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    v: int = PROTOCOL_VERSION
    session: str = Field(min_length=1, max_length=64)
    heartbeat_s: float = Field(gt=0)
    dead_after_s: float = Field(gt=0)
    max_frame: int = Field(gt=0)


class Watch(_Msg):
    type: Literal["watch"] = "watch"
    symbols: list[BrokerSymbol] = Field(max_length=MAX_WATCH)


class Order(_Msg):
    type: Literal["order"] = "order"
    id: RequestId
    op: Literal["open", "close"]
    symbol: BrokerSymbol | None = None  # open: required
    side: SideName | None = None  # open: required
    ticket: int | None = Field(default=None, ge=0)  # close: required
    volume: Volume
    deviation: int = Field(ge=0, le=100_000)  # points
    magic: Magic
    comment: Annotated[str, _or("")] = Field(default="", max_length=MAX_COMMENT)
    #: open only, optional: a protective stop-loss price (OrderSend's stoploss); absent = none
    sl: Price | None = None

    @model_validator(mode="after")
    def _op_fields(self) -> Self:
        needed = ("symbol", "side") if self.op == "open" else ("ticket",)
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"field {name!r}: required when op is {self.op!r}")
        return self


class Query(_Msg):
    """Look trades up: by ``magic`` (opened or closed by an order with it), by ``ticket``, and the stored
    result of request ``req``. At least one of them."""

    type: Literal["query"] = "query"
    id: RequestId
    magic: Magic | None = None
    ticket: int | None = Field(default=None, ge=0)
    req: RequestId | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.magic is None and self.ticket is None and self.req is None:
            raise ValueError("field 'magic': a query needs 'magic', 'ticket' or 'req'")
        return self


class GetPositions(_Msg):
    type: Literal["get_positions"] = "get_positions"
    id: RequestId


FromEa: TypeAlias = (
    Hello | Auth | Heartbeat | Ticks | Account | Watching | Ack | Result | Trades | Positions | ErrorMsg
)
FromAgent: TypeAlias = Challenge | Welcome | Heartbeat | Watch | Order | Query | GetPositions | ErrorMsg
Message: TypeAlias = FromEa | FromAgent

_FROM_EA: TypeAdapter[FromEa] = TypeAdapter(Annotated[FromEa, Field(discriminator="type")])
_FROM_AGENT: TypeAdapter[FromAgent] = TypeAdapter(Annotated[FromAgent, Field(discriminator="type")])
_T = TypeVar("_T")
_EA_TYPES = (
    "hello",
    "auth",
    "hb",
    "ticks",
    "account",
    "watching",
    "ack",
    "result",
    "trades",
    "positions",
    "error",
)
_AGENT_TYPES = ("challenge", "welcome", "hb", "watch", "order", "query", "get_positions", "error")


def parse_from_ea(raw: str | bytes) -> FromEa:
    """A frame the EA sent. Raises :class:`FrameError`."""
    if isinstance(raw, str):
        if raw.startswith(TICKS_PREFIX) and not _SURROGATE.search(raw):
            return Ticks.model_construct(q=parse_ticks(raw))
    return _parse(_FROM_EA, raw, _EA_TYPES)


def parse_from_agent(raw: str | bytes) -> FromAgent:
    """A frame the agent sent (the EA emulator's side). Raises :class:`FrameError`."""
    return _parse(_FROM_AGENT, raw, _AGENT_TYPES)


def encode(msg: Message) -> str:
    """One text frame. ``None`` fields are left out (the EA reads a missing key as "not given")."""
    return msg.model_dump_json(exclude_none=True)


#: domain separation of the two proofs: the bridge's proof can never pass as the EA's, and vice versa
BRIDGE_ROLE: Final = "bridge"
EA_ROLE: Final = "ea"


def proof(token: str, role: str, ea_nonce: str, bridge_nonce: str) -> str:
    """HMAC-SHA256 with the token as key of ``"HB2|<role>|<ea nonce>|<bridge nonce>"`` (ASCII), as 64
    lowercase hex digits (PROTOCOL §3). Both nonces are fresh per connection, so a proof is never valid
    twice, and the role label keeps one side's proof from being replayed as the other's."""
    msg = f"HB2|{role}|{ea_nonce}|{bridge_nonce}".encode("ascii")
    return hmac.new(token.encode("ascii"), msg, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """32 bytes from the OS's CSPRNG, as hex."""
    return secrets.token_hex(32)


def peek_version(raw: str | bytes) -> object:
    """The ``v`` of a JSON object frame (anything else: None): checked before the rest of a hello, so an
    EA of another version is told so (4004) rather than that its hello is malformed."""
    if isinstance(raw, bytes):
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return obj.get("v") if isinstance(obj, dict) else None


def _parse(adapter: TypeAdapter[_T], raw: str | bytes, types: tuple[str, ...]) -> _T:
    if isinstance(raw, bytes):
        raise FrameError("binary frame: frames are JSON objects in text frames")
    try:
        return adapter.validate_json(raw)
    except ValidationError as e:
        raise _frame_error(e, raw, types) from None


def _frame_error(e: ValidationError, raw: str, types: tuple[str, ...]) -> FrameError:
    err = e.errors(include_url=False, include_input=False)[0]
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "json_invalid":
        return FrameError(f"not valid JSON ({msg})")
    if kind in ("union_tag_not_found", "model_attributes_type", "dict_type", "model_type"):
        return FrameError("expected a JSON object with a 'type' key", field="type")
    if kind == "union_tag_invalid":
        got = _peek_type(raw)
        return FrameError(f"unknown type {got!r}; expected one of {', '.join(types)}", field="type")
    frame = str(loc[0]) if loc else None
    field = _loc_path(loc[1:])
    if kind == "value_error":  # our model validators say "field 'x': why"
        msg = msg.removeprefix("Value error, ")
        m = _FIELD_MSG.match(msg)
        if m:
            field, msg = (f"{field}.{m[1]}" if field else m[1]), m[2]
    return FrameError(msg, frame=frame, field=field or None)


_FIELD_MSG = re.compile(r"^field '([\w.]+)': (.*)$", re.S)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
    return out


def _peek_type(raw: str) -> object:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    return obj.get("type") if isinstance(obj, dict) else None


# -- fast paths -----------------------------------------------------------------------------------------
# Ticks are most of the traffic (thousands a second): json.loads plus a hand check of the few fields; the
# rules are the same as the model's. A frame the fast path does not like goes through the model, which then
# names the bad field. Every other frame (acks and results included) goes straight to the validated model:
# pydantic-core parses and checks an ack in ~2 us and a result in ~5 us, faster than json.loads plus
# model_construct, so a hand-written path there would only add code.

TICKS_PREFIX: Final = '{"type":"ticks"'
# json.loads takes a lone surrogate escape such as \ud800 (or a raw surrogate), the model's parser refuses it:
# such a frame takes the model's path, so both paths accept the same frames
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")

RawTick: TypeAlias = tuple[str, float, float, int]


def parse_ticks(raw: str) -> list[RawTick]:
    """The ``q`` of a ticks frame, checked like :class:`Ticks`. Raises :class:`FrameError`."""
    try:
        obj: Any = json.loads(raw)
    except ValueError as e:
        raise FrameError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise FrameError("not valid JSON (nested too deeply)") from None
    if not isinstance(obj, dict) or obj.get("type") != "ticks":
        raise FrameError("expected a JSON object with 'type': 'ticks'", field="type")
    q = obj.get("q")
    if not isinstance(q, list):
        raise FrameError("must be a list of [symbol, bid, ask, time_ms]", frame="ticks", field="q")
    if len(q) > MAX_WATCH:
        raise FrameError(f"at most {MAX_WATCH} entries", frame="ticks", field="q")
    out: list[RawTick] = []
    for i, t in enumerate(q):
        if not (isinstance(t, list) and len(t) == 4):
            raise FrameError("must be [symbol, bid, ask, time_ms]", frame="ticks", field=f"q[{i}]")
        sym, bid, ask, ms = t
        if not isinstance(sym, str) or not 0 < len(sym) <= 32:
            raise FrameError("symbol must be a string of 1-32 characters", frame="ticks", field=f"q[{i}][0]")
        for j, price in ((1, bid), (2, ask)):
            if type(price) not in (float, int) or not 0 <= price < float("inf"):
                raise FrameError("price must be a finite number >= 0", frame="ticks", field=f"q[{i}][{j}]")
        if type(ms) is not int:
            raise FrameError("time must be an integer (ms since 1970 UTC)", frame="ticks", field=f"q[{i}][3]")
        out.append((sym, float(bid), float(ask), ms))
    return out
