"""``Mt4BridgeTerminal``: the Terminal protocol for one MT4 terminal, spoken through its EA.

``connect()`` starts listening on 127.0.0.1:port; the EA connects whenever it likes (before or after the
agent), and health stays DISCONNECTED until it is welcomed. Orders are serialized per terminal (MT4 has
one trade thread) and each carries a fresh request id the EA de-duplicates; the rules for timeouts,
reconnects and repeated ids are ea/PROTOCOL.md §7:

- no EA connected: wait up to ``connect_wait_s`` for one, else ``Rejected(retryable)`` (nothing was sent);
- no result within ``order_timeout_s``: ``query`` the request id (and the tag's magic) and answer from the
  EA's stored result; when that fails too, ``Unknown``, never a failure. The adapter does not look the tag
  up by itself: the engine does that one lookup (``find``);
- "busy" (exempt from the dead-peer rule) lasts from an order's ``ack`` to its ``result`` or until the
  bridge gives up on it; a link that is silent past ``dead_after_s`` when that happens is closed at once, so
  health turns DISCONNECTED, no order goes into a dead socket, and a restarted EA is admitted;
- the EA reconnects while an order is in flight: the same query on the new link, and the order is sent
  again with the *same* id only if the EA never saw it (its de-dup store makes a repeat harmless anyway);
- a result that comes after the caller got its answer, or twice, is logged and dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from hedge_agent.domain.enums import Side, Symbol
from hedge_agent.domain.protective import digits_of, protective_stop_price
from hedge_agent.domain.symbols import SymbolTable
from hedge_agent.domain.tags import OrderTag
from hedge_agent.errors import FatalError, RetryableError
from hedge_agent.terminals import retcodes
from hedge_agent.terminals.base import (
    AccountInfo,
    Connection,
    Filled,
    Health,
    OpenPosition,
    OrderResult,
    Rejected,
    TerminalQuote,
    TradeRecord,
    TradeState,
    Unknown,
)
from hedge_agent.terminals.quotes import QuoteChannel

from .codec import (
    MAX_FRAME_BYTES,
    Account,
    Ack,
    ErrorMsg,
    FromEa,
    GetPositions,
    Order,
    Positions,
    Query,
    Result,
    Stored,
    Ticks,
    Trade,
    Trades,
    Watch,
    Watching,
)
from .server import BridgeServer, Link
from .tokenfile import ea_token_input

log = structlog.get_logger(__name__)

# Agent-side codes of results the EA never produced (they never travel on the wire).
NO_EA = -1  # no EA connected: the order was not sent
BAD_REQUEST = -2  # the request cannot be expressed in MT4 (magic over 31 bits, ticket not a number)
NO_ANSWER = -3  # sent, but neither a result nor a query answer came back


@dataclass(frozen=True, slots=True)
class BridgeStats:
    """Counters for the tray, the demo summary and tests."""

    welcomed: int  # EA connections admitted
    refused: int  # connections closed before a welcome (token, hello, busy, ...)
    bad_frames: int  # malformed frames from admitted EAs, each answered with an error
    late_results: int  # results that came after the caller had its answer, or twice
    conflated_quotes: int  # quotes superseded before the consumer took them


@dataclass
class _InFlight:
    order: Order
    #: resolved by the EA's result; by None when the order timeout fires (which puts a fresh future here,
    #: so a result that comes during the lookup that follows still lands)
    result: asyncio.Future[Result | None]
    sent_on: Link | None = None
    acked: bool = False

    def expire(self) -> None:
        expired, self.result = self.result, self.result.get_loop().create_future()
        if not expired.done():
            expired.set_result(None)


@dataclass
class _Call:
    reply: asyncio.Future[Trades | Positions]
    link: Link
    started: float = field(default_factory=time.monotonic)


class Mt4BridgeTerminal:
    """One MT4 terminal behind its EA. See the module docstring and ea/PROTOCOL.md."""

    def __init__(
        self,
        name: str,
        port: int,
        token: str,
        symbols: SymbolTable,
        *,
        host: str = "127.0.0.1",
        order_timeout_s: float = 10.0,
        query_timeout_s: float = 3.0,
        connect_wait_s: float = 2.0,
        hello_timeout_s: float = 0.8,
        heartbeat_s: float = 1.0,
        dead_after_s: float = 5.0,
        max_frame: int = MAX_FRAME_BYTES,
        login: int | None = None,
        deviation_points: int = 20,
        token_file: Path | None = None,
    ) -> None:
        self.name = name
        self._token_file = token_file
        self._symbols = symbols
        self._order_timeout_s = order_timeout_s
        self._query_timeout_s = query_timeout_s
        self._connect_wait_s = connect_wait_s
        self._deviation = deviation_points
        self._server = BridgeServer(
            name=name,
            host=host,
            port=port,
            token=token,
            on_link=self._on_link,
            on_frame=self._on_frame,
            on_unlink=self._on_unlink,
            busy=self._busy,
            expected_login=login,
            hello_timeout_s=hello_timeout_s,
            heartbeat_s=heartbeat_s,
            dead_after_s=dead_after_s,
            max_frame=max_frame,
        )
        self._link: Link | None = None
        self._linked = asyncio.Event()
        self._order_lock = asyncio.Lock()
        self._in_flight: dict[str, _InFlight] = {}
        self._calls: dict[str, _Call] = {}
        self._acked: dict[str, float] = {}  # request id -> when acked, until its result (even a late one)
        self._tasks: set[asyncio.Task[None]] = set()
        self._account: Account | None = None
        self._account_seen = asyncio.Event()
        self._watched: dict[str, Symbol] = {}  # broker name -> symbol
        #: the last bid/ask the EA sent per broker symbol (the protective stop is priced from it), and the
        #: symbols streamed only for that (not published as quotes)
        self._prices: dict[str, tuple[float, float]] = {}
        self._price_seen: dict[str, asyncio.Event] = {}
        self._stop_symbols: set[str] = set()
        self._missing: list[str] = []
        self._channel = QuoteChannel()
        self._started = False
        self.late_results = 0  # results that came after the caller had its answer, or twice

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0`` in tests and the demo)."""
        return self._server.bound_port

    async def connect(self) -> None:
        try:
            await self._server.start()
        except OSError as e:
            raise FatalError(
                f"terminal {self.name}: cannot listen on {self._server.host}:{self._server.port} ({e}); "
                "is another hedge-agent running, or is the port taken?"
            ) from e
        self._started = True
        if self._channel.closed:
            self._channel = QuoteChannel()
        self._announce_ea_inputs()

    def ea_inputs(self) -> str | None:
        """What to type into the EA's Inputs tab for this terminal, or None when the token file is outside
        MetaTrader's common files folder (the EA cannot read it there)."""
        if self._token_file is None:
            return f"BridgePort={self.port}"
        name = ea_token_input(self._token_file)
        return None if name is None else f"BridgePort={self.port}, TokenFile={name}"

    def _token_problem(self) -> str | None:
        if self._token_file is None or ea_token_input(self._token_file) is not None:
            return None
        return (
            f"the token file {self._token_file} is outside MetaTrader's common files folder: the EA cannot "
            "read it; remove `token_file` from the config to use the default"
        )

    def _announce_ea_inputs(self) -> None:
        inputs = self.ea_inputs()
        if inputs is None:
            log.error("bridge.token_unreachable", terminal=self.name, why=self._token_problem())
            return
        message = f"set the EA inputs {inputs}"
        log.info("bridge.ea_inputs", terminal=self.name, message=message, token_file=str(self._token_file))

    async def shutdown(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._server.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for p in self._in_flight.values():
            if not p.result.done():
                p.result.set_exception(ConnectionError("the bridge is shutting down"))
        self._fail_calls(None, "the bridge is shutting down")
        self._channel.close()

    def stats(self) -> BridgeStats:
        s = self._server
        return BridgeStats(s.welcomed, s.refused, s.bad_frames, self.late_results, self._channel.conflated)

    # -- Terminal: state --------------------------------------------------------------------------------

    def health(self) -> Health:
        where = f"{self._server.host}:{self.port}"
        if not self._started:
            return Health(Connection.DISCONNECTED, False, f"bridge on {where} not started")
        link = self._link
        if link is None:
            last = f" (last EA: {self._server.last_close})" if self._server.last_close else ""
            inputs = self.ea_inputs()
            hint = f"; set the EA inputs {inputs}" if inputs else ""
            problem = self._token_problem()
            return Health(
                Connection.DISCONNECTED,
                False,
                f"waiting for the EA on {where}{last}{hint}",
                (problem,) if problem else (),
            )
        h = link.hello
        problems: list[str] = []
        acc = self._account
        if acc is None:
            problems.append("no account report from the EA yet")
        else:
            if not acc.connected:
                problems.append("the terminal is not connected to its trade server")
            if not acc.trade_allowed:
                problems.append("trading is off: enable AutoTrading and the EA's 'Allow live trading'")
        if self._missing:
            problems.append(f"symbols not available on the terminal: {', '.join(self._missing)}")
        # an EA that passed the challenge holds the token: wherever the file is, this EA could read it
        silent = self._server.silent_s(link)
        if silent > self._server.dead_after_s:  # only while busy: otherwise the link is closed
            problems.append(f"the EA has been inside an order for {silent:.0f} s")
        trade_ok = acc is not None and acc.trade_allowed and acc.connected
        detail = f"EA {h.ea_version} on login {h.login} ({h.server}), build {h.build}"
        # the EA is here but its terminal has lost the trade server: it is reconnecting by itself
        state = Connection.CONNECTING if acc is not None and not acc.connected else Connection.CONNECTED
        return Health(state, trade_ok, detail, tuple(problems))

    async def account_info(self) -> AccountInfo:
        link = await self._wait_link()
        if link is None:
            raise RetryableError(f"terminal {self.name}: no EA connected, no account information")
        if self._account is None:
            try:
                async with asyncio.timeout(self._connect_wait_s):
                    await self._account_seen.wait()
            except TimeoutError:
                raise RetryableError(
                    f"terminal {self.name}: the EA has not reported the account yet"
                ) from None
        a = self._account
        assert a is not None
        return AccountInfo(
            login=a.login,
            balance=a.balance,
            credit=a.credit,
            equity=a.equity,
            margin=a.margin,
            margin_level=a.margin_level,
            trade_allowed=a.trade_allowed and a.connected,
            currency=a.currency,
        )

    async def watch(self, symbols: Iterable[Symbol]) -> None:
        wanted = set(symbols)
        self._watched = {self._symbols.broker_name(s): s for s in wanted}
        self._channel.retain(wanted)
        link = self._link
        if link is not None:
            await link.send(self._watch_frame())

    def _watch_frame(self) -> Watch:
        return Watch(symbols=sorted(set(self._watched) | self._stop_symbols))

    def quotes(self) -> AsyncIterator[TerminalQuote]:
        return self._channel.stream()

    # -- Terminal: orders -------------------------------------------------------------------------------

    async def open_position(
        self,
        symbol: Symbol,
        side: Side,
        volume: float,
        tag: OrderTag,
        *,
        stop_distance: float | None = None,
    ) -> OrderResult:
        """``stop_distance``: the order's ``sl`` (PROTOCOL §5: OrderSend's stoploss, normalised to the
        symbol's digits by the EA) is priced from the last bid/ask the EA streamed; the broker refuses one
        inside MODE_STOPLEVEL with 130 (a permanent rejection naming protective_stop_pips)."""
        name = self._symbols.broker_name(symbol)
        sl: float | None = None
        if stop_distance:
            if await self._wait_link() is None:
                return self._no_ea()
            price = await self._price_of(name)
            if price is None:
                return Rejected(
                    136,  # ERR_OFF_QUOTES: retryable
                    f"no price of {name} from the EA within {self._stop_quote_wait_s:g} s to place the "
                    "protective stop (protective_stop_pips) from: is the symbol in Market Watch?",
                    retryable=True,
                )
            bid, ask = price
            digits = digits_of(self._symbols.spec(symbol).point)
            sl = protective_stop_price(side, ask if side is Side.BUY else bid, stop_distance, digits)
        try:
            order = Order(
                id=_new_id(),
                op="open",
                symbol=name,
                side=side.value,
                volume=volume,
                deviation=self._deviation,
                magic=tag.magic,
                comment=tag.comment,
                sl=sl,
            )
        except ValidationError as e:
            return Rejected(BAD_REQUEST, f"cannot send this order to MT4: {_first_error(e)}", retryable=False)
        return await self._execute(order)

    _stop_quote_wait_s = 3.0

    async def _price_of(self, name: str) -> tuple[float, float] | None:
        """The last bid/ask of ``name``; if none yet, stream it and wait for its first tick."""
        if name in self._prices:
            return self._prices[name]
        seen = self._price_seen.setdefault(name, asyncio.Event())
        if name not in self._stop_symbols:
            self._stop_symbols.add(name)
            link = self._link
            if link is not None:
                await link.send(self._watch_frame())
        try:
            await asyncio.wait_for(seen.wait(), self._stop_quote_wait_s)
        except TimeoutError:
            return None
        return self._prices.get(name)

    async def close_position(self, ticket: str, volume: float, tag: OrderTag) -> OrderResult:
        try:
            order = Order(
                id=_new_id(),
                op="close",
                ticket=int(ticket),
                volume=volume,
                deviation=self._deviation,
                magic=tag.magic,
                comment=tag.comment,
            )
        except ValueError as e:  # ValidationError is a ValueError; so is int("x")
            reason = (
                _first_error(e) if isinstance(e, ValidationError) else f"ticket {ticket!r} is not a number"
            )
            return Rejected(BAD_REQUEST, f"cannot send this close to MT4: {reason}", retryable=False)
        return await self._execute(order)

    async def find(self, tag: OrderTag) -> list[TradeRecord]:
        """Every trade opened, or closed, by an order with ``tag``'s magic (the EA's ``query`` by magic:
        open trades, the history tab, and the closes its store attributes to that magic)."""
        reply = await self._ask(Query(id=_new_id(), magic=tag.magic))
        assert isinstance(reply, Trades)
        return [self._record(t) for t in reply.trades]

    async def positions(self) -> list[OpenPosition]:
        reply = await self._ask(GetPositions(id=_new_id()))
        assert isinstance(reply, Positions)
        return [
            OpenPosition(
                ticket=str(t.ticket),
                symbol=self._symbols.from_broker(t.symbol),
                side=Side(t.side),
                volume=t.volume,
                open_price=t.open_price,
                open_time=_utc(t.open_time),
                magic=t.magic,
                comment=t.comment,
            )
            for t in reply.positions
        ]

    async def _execute(self, order: Order) -> OrderResult:
        async with self._order_lock:
            link = self._link
            server = self._server
            if (
                link is not None
                and server.silent_s(link) > server.dead_after_s  # the rule's own test, without an await
                and await server.drop_if_silent(link)
            ):
                link = None  # silent past dead_after_s: never send an order into it
            link = link or await self._wait_link()
            if link is None:
                return self._no_ea()
            # written first: the bookkeeping below then overlaps the EA's work, and no frame is read (so no
            # result can come) before the next await
            sent = link.send_now(order)
            loop = asyncio.get_running_loop()
            p = _InFlight(order, loop.create_future(), link)
            self._in_flight[order.id] = p
            timer = loop.call_later(self._order_timeout_s, p.expire)
            result: Result | None
            try:
                # one INFO line per order, with its result (below): in production each line is rendered and
                # written to the log file
                log.debug(
                    "bridge.order_sent", terminal=self.name, id=order.id, op=order.op, magic=order.magic
                )
                if not sent:
                    await link.send(order)  # a dead link is fine: the resume or the timeout path takes over
                result = await p.result
                if result is None:  # timed out
                    result = await self._settle_after_timeout(p)
            except ConnectionError as e:  # shutdown while waiting
                return Unknown(f"{e} while order {order.id} was in flight", NO_ANSWER)
            finally:
                timer.cancel()
                del self._in_flight[order.id]
                if self._acked.pop(order.id, None) is not None:
                    # the bridge gives up on this order: "busy" ends, and an EA that stayed silent all
                    # along is dead or hung (the dead-peer rule applies again, now)
                    current = self._link
                    if current is not None:
                        await self._server.drop_if_silent(current)
            if result is None:
                return Unknown(
                    f"no result for order {order.id} within {self._order_timeout_s:g} s and the EA could not "
                    "say what became of it (acknowledged: " + ("yes" if p.acked else "no") + ")",
                    NO_ANSWER,
                )
            log.info(
                "bridge.order_result", terminal=self.name, id=order.id, op=order.op, magic=order.magic,
                status=result.status, code=result.code,
            )  # fmt: skip
            return _order_result(result)

    async def _settle_after_timeout(self, p: _InFlight) -> Result | None:
        """Ask the EA what became of ``p``; a result that arrives meanwhile wins."""
        link = self._link or await self._wait_link()
        if link is None:
            return None
        ask = asyncio.ensure_future(self._lookup(link, p.order))
        either: set[asyncio.Future[Any]] = {ask, p.result}
        try:
            await asyncio.wait(either, timeout=self._query_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ask.cancel()
        if p.result.done():
            return p.result.result()
        if ask.done() and not ask.cancelled() and ask.exception() is None:
            found = ask.result()
            return found if isinstance(found, Result) else None
        return None

    async def _lookup(self, link: Link, order: Order) -> Result | str | None:
        """What the EA knows of ``order``: its result, ``"pending"`` (the EA stopped mid-order; the trade
        may exist), ``None`` (never seen: not placed). Raises on a dead link or no answer."""
        query = Query(
            id=_new_id(),
            req=order.id,
            magic=order.magic if order.op == "open" else None,
            ticket=order.ticket if order.op == "close" else None,
        )
        reply = await self._call(link, query)
        assert isinstance(reply, Trades)
        if reply.stored is not None and reply.stored.status != "pending":
            return _stored_result(order.id, reply.stored)
        # The store lost it or never finished it: a trade on the terminal still tells the truth.
        for t in reply.trades:
            if order.op == "open" and t.magic == order.magic:
                return Result(id=order.id, status="done", ticket=t.ticket, price=t.open_price, volume=t.volume, time=t.open_time, reason="found by magic")  # fmt: skip
            # closed by *this* close (the EA's store says so), not by a stop-out meanwhile
            closed_by_us = t.close_magic == order.magic and t.close_price and t.close_time
            if order.op == "close" and t.ticket == order.ticket and closed_by_us:
                return Result(id=order.id, status="done", ticket=t.ticket, price=t.close_price, volume=t.volume, time=t.close_time, reason="found closed")  # fmt: skip
        return "pending" if reply.stored is not None else None

    async def _resume(self, link: Link) -> None:
        """On a new link: stream the watched symbols again, settle orders from the previous link."""
        await link.send(self._watch_frame())
        for p in list(self._in_flight.values()):
            if p.result.done() or p.sent_on is link:
                continue
            try:
                found = await self._lookup(link, p.order)
            except (ConnectionError, TimeoutError) as e:
                log.warning("bridge.resume_query_failed", terminal=self.name, id=p.order.id, why=str(e))
                continue  # the order's own timeout path asks again
            if p.result.done():
                continue
            if isinstance(found, Result):
                p.result.set_result(found)
            elif found == "pending":
                reason = "the EA stopped during this order: look the trade up by its tag"
                p.result.set_result(Result(id=p.order.id, status="unknown", code=128, reason=reason))
            else:
                log.info("bridge.order_resent", terminal=self.name, id=p.order.id)
                p.sent_on = link
                await link.send(p.order)

    # -- request/reply ----------------------------------------------------------------------------------

    async def _ask(self, msg: Query | GetPositions) -> Trades | Positions:
        link = await self._wait_link()
        if link is None:
            raise RetryableError(f"terminal {self.name}: no EA connected to the bridge")
        try:
            return await self._call(link, msg)
        except (ConnectionError, TimeoutError) as e:
            raise RetryableError(f"terminal {self.name}: the EA did not answer ({e})") from e

    async def _call(self, link: Link, msg: Query | GetPositions) -> Trades | Positions:
        fut: asyncio.Future[Trades | Positions] = asyncio.get_running_loop().create_future()
        self._calls[msg.id] = _Call(fut, link)
        try:
            if not await link.send(msg):
                raise ConnectionError("the EA link closed")
            async with asyncio.timeout(self._query_timeout_s):
                return await fut
        finally:
            self._calls.pop(msg.id, None)

    def _fail_calls(self, link: Link | None, why: str) -> None:
        for call in list(self._calls.values()):
            if (link is None or call.link is link) and not call.reply.done():
                call.reply.set_exception(ConnectionError(why))

    def _no_ea(self) -> Rejected:
        return Rejected(
            NO_EA,
            f"no EA connected to the bridge on {self._server.host}:{self.port} "
            f"(waited {self._connect_wait_s:g} s): is HedgeBridge attached and AutoTrading on?",
            retryable=True,
        )

    async def _wait_link(self) -> Link | None:
        if self._link is None and self._started:
            try:
                async with asyncio.timeout(self._connect_wait_s):
                    await self._linked.wait()
            except TimeoutError:
                return None
        return self._link

    # -- server callbacks -------------------------------------------------------------------------------

    def _busy(self) -> bool:
        """PROTOCOL §4 "busy": an order is acknowledged, its result is not in, and the bridge has not
        given up on it yet: the EA is inside OrderSend, silent by design."""
        return bool(self._acked)

    def _on_link(self, link: Link) -> None:
        self._link = link
        self._channel.forget()  # the first quotes of a new link pass even if unchanged: they are fresh
        self._linked.set()
        self._spawn(self._resume(link), "resume")

    def _on_unlink(self, link: Link, why: str) -> None:
        if self._link is link:
            self._link = None
            self._linked.clear()
            self._account = None
            self._account_seen.clear()
            self._prices.clear()  # the next EA streams its own
        self._acked.clear()
        self._fail_calls(link, f"the EA link closed ({why})")

    def _on_frame(self, link: Link, msg: FromEa) -> None:
        if link is not self._link:
            return  # a frame from a link that was just replaced
        if isinstance(msg, Ticks):
            self._on_ticks(msg)
        elif isinstance(msg, Result):
            self._acked.pop(msg.id, None)
            if msg.account is not None:  # before the caller resumes: a balance read next is current
                self._on_account(msg.account)
            p = self._in_flight.get(msg.id)
            if p is None or p.result.done():
                self.late_results += 1
                log.warning(
                    "bridge.late_result", terminal=self.name, id=msg.id, status=msg.status, ticket=msg.ticket
                )
            else:
                p.result.set_result(msg)
        elif isinstance(msg, Ack):
            p = self._in_flight.get(msg.id)
            if p is not None:
                p.acked = True
                if not msg.dup:
                    self._acked[msg.id] = time.monotonic()
        elif isinstance(msg, Trades | Positions):
            call = self._calls.get(msg.id)
            if call is not None and not call.reply.done():
                call.reply.set_result(msg)
        elif isinstance(msg, Account):
            self._on_account(msg)
        elif isinstance(msg, Watching):
            if msg.missing != self._missing:
                log.warning("bridge.symbols_missing", terminal=self.name, missing=msg.missing)
            self._missing = list(msg.missing)
        elif isinstance(msg, ErrorMsg):
            log.warning("bridge.ea_error", terminal=self.name, code=msg.code, why=msg.reason, ref=msg.ref)
            call = self._calls.get(msg.ref or "")
            if call is not None and not call.reply.done():
                call.reply.set_exception(ConnectionError(f"the EA refused the request: {msg.reason}"))
            p = self._in_flight.get(msg.ref or "")
            if p is not None and not p.result.done() and not p.acked:
                # the EA refused the order frame itself (it never stored or executed it)
                why = f"the EA refused the order: {msg.reason}"
                p.result.set_result(Result(id=p.order.id, status="rejected", code=BAD_REQUEST, reason=why))

    def _on_account(self, msg: Account) -> None:
        self._account = msg
        self._account_seen.set()

    def _on_ticks(self, msg: Ticks) -> None:
        now = time.monotonic()
        watched, publish = self._watched, self._channel.publish
        for name, bid, ask, _ms in msg.q:
            if bid <= 0 or ask < bid:
                continue  # no price yet (MT4 reports 0 for a symbol without quotes)
            self._prices[name] = (bid, ask)
            seen = self._price_seen.pop(name, None)
            if seen is not None:
                seen.set()
            symbol = watched.get(name)
            if symbol is not None:
                publish(TerminalQuote(symbol, bid, ask, now))

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, name=f"mt4-{self.name}-{what}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "bridge.task_failed", terminal=self.name, task=task.get_name(), exc_info=task.exception()
            )

    def _record(self, t: Trade) -> TradeRecord:
        return TradeRecord(
            ticket=str(t.ticket),
            symbol=self._symbols.from_broker(t.symbol),
            side=Side(t.side),
            volume=t.volume,
            open_price=t.open_price,
            open_time=_utc(t.open_time),
            state=TradeState.OPEN if t.state == "open" else TradeState.CLOSED,
            magic=t.magic,
            close_price=t.close_price,
            close_time=_utc(t.close_time) if t.close_time is not None else None,
            close_magic=t.close_magic,
            close_reason=t.close_reason,
        )


def _order_result(r: Result) -> OrderResult:
    if r.status == "done":
        assert r.ticket is not None and r.price is not None and r.volume is not None and r.time is not None
        return Filled(str(r.ticket), r.price, _utc(r.time), r.volume, r.code)
    if r.code == BAD_REQUEST:  # refused before any trade call: nothing exists
        return Rejected(BAD_REQUEST, r.reason, retryable=False)
    info = retcodes.mt4(r.code)
    if r.status == "unknown" or info.outcome is retcodes.Outcome.OK:
        # "rejected" with a success code is contradictory: treat it as not known, never as a failure
        return Unknown(f"{r.reason or info.reason} [code {r.code}]", r.code)
    return info.result(r.reason)


def _stored_result(req: str, s: Stored) -> Result:
    status = "unknown" if s.status == "pending" else s.status
    return Result(id=req, status=status, ticket=s.ticket, price=s.price, volume=s.volume, time=s.time, code=s.code, reason=s.reason)  # fmt: skip


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


_ID_PREFIX = secrets.token_hex(4)  # per process: ids never repeat across agent restarts
_ID_COUNTER = itertools.count(1)


def _new_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


def _first_error(e: ValidationError) -> str:
    err = e.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(x) for x in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]
