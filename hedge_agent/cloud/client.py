"""The agent's link to AppSync: one stream of validated records, typed queries, conditional mutations.

``events()`` runs the link while it is iterated:

    connecting -> socket + 4 subscriptions acknowledged -> catch-up queries -> connected, CaughtUp(n) -> live
         ^                                                                                              |
         +---------------- backoff with jitter <- disconnected (any socket/subscription failure) <------+

- Live frames that arrive during the catch-up are held and delivered after the catch-up records, so the
  engine sees the server's current state first and then what changed since.
- Before the socket's token reaches its refresh point, a new session (fresh token, new socket, resubscribe,
  catch-up) is opened *before* the old one is closed: no gap, duplicates are dropped.
- Every record passes :class:`Deduper`: a version is delivered once, and never after a newer one.
- A payload that does not parse becomes a :class:`BadRecord` naming the record id (when the frame has one)
  and the field; the stream goes on. When the server flagged missing fields (a mutation elsewhere selected
  too few), the truth is read back (by id, or a catch-up of that type when null propagation removed the id),
  so a status change is not lost.
- Records of other users are dropped (counted) even though the server filter should never send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

import structlog
from graphql import ExecutionResult

from hedge_agent.config import AppSyncConfig
from hedge_agent.domain.enums import ActionStatus, PCStatus, PositionStatus
from hedge_agent.domain.lifecycle import ACTION_TRANSITIONS, POSITION_TRANSITIONS
from hedge_agent.domain.models import (
    Account,
    Action,
    Position,
    Record,
    User,
    parse_account,
    parse_action,
    parse_position,
    parse_user,
)
from hedge_agent.engine.events import BadRecord, CaughtUp, CloudEvent, LinkState, LinkStateName, RecordEvent
from hedge_agent.engine.outcomes import ConditionFailed, Failed, MutationOutcome, NotFound, Ok, Unauthorized
from hedge_agent.errors import AuthError, IllegalTransition, PermanentError, RecordError, RetryableError

from . import documents as docs
from .auth import CognitoAuth
from .dedupe import Deduper, Verdict
from .graphql_http import (
    AccessDenied,
    ConditionalCheckFailed,
    GraphQLErrorInfo,
    GraphQLHttp,
    GraphQLRejected,
    GraphQLResponse,
)
from .realtime import RealtimeSession, classify
from .redaction import describe, install_log_scrubbing
from .retry import LINK_BACKOFF, REQUEST_ATTEMPTS, REQUEST_BACKOFF, Backoff, Disposition

log = structlog.get_logger(__name__)

R = TypeVar("R", bound=Record)

_MAX_PAGES = 1_000
_MAX_REFETCHES_IN_FLIGHT = 32
_MIN_SESSION_S = 1.0


@dataclass
class LinkStats:
    """Counters for the tray/diagnostics (monotonic since the client was made)."""

    frames: int = 0
    delivered: int = 0
    duplicates: int = 0
    stale: int = 0
    foreign: int = 0
    bad: int = 0
    sessions: int = 0
    catchups: int = 0
    periodic_catchups: int = 0  # of ``catchups``: the ones run while connected, every catchup_interval_s


@dataclass(frozen=True)
class _Kind(Generic[R]):
    name: str
    parse: Callable[[Any], R]
    get_doc: str
    get_root: str


_POSITION = _Kind("Position", parse_position, docs.GET_POSITION, "getPosition")
_ACTION = _Kind("Action", parse_action, docs.GET_ACTION, "getAction")
_ACCOUNT = _Kind("Account", parse_account, docs.GET_ACCOUNT, "getAccount")
_USER = _Kind("User", parse_user, docs.GET_USER, "getUser")
_PARSERS: Mapping[str, Callable[[Any], Position | Action]] = {
    "Position": parse_position,
    "Action": parse_action,
}


class _Stop:
    pass


_STOP = _Stop()


def aws_datetime(value: datetime) -> str:
    """AWSDateTime as AppSync writes it (UTC, milliseconds, ``Z``). Naive datetimes are refused: a wrong
    time zone on a trade record is a silent error."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware datetime (e.g. UTC)")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _record_error_from(
    kind: str, record_id: str | None, errors: tuple[GraphQLErrorInfo, ...], root: str
) -> RecordError:
    """A RecordError from GraphQL errors such as ``Cannot return null for non-nullable field Position.accountId``
    (path ``[root, ("items", i,)? "accountId"]``)."""
    for err in errors:
        names = [p for p in err.path if isinstance(p, str) and p and p not in (root, "items")]
        if names:
            return RecordError(kind, record_id, names[-1], err.message or "invalid value")
    first = errors[0] if errors else GraphQLErrorInfo("empty payload")
    reason = first.message or str(first) or "no record and no error message"
    return RecordError(kind, record_id, "<record>", reason)


class CloudClient:
    """See the module docstring. One consumer of ``events()`` per client; queries and mutations may be used
    concurrently from any task, with or without the stream running."""

    def __init__(
        self,
        appsync: AppSyncConfig,
        auth: CognitoAuth,
        *,
        keep_alive_timeout_s: float | None = None,
        link_backoff: Backoff = LINK_BACKOFF,
        request_backoff: Backoff = REQUEST_BACKOFF,
        request_attempts: int = REQUEST_ATTEMPTS,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
        page_size: int = 100,
        dedupe_capacity: int = 10_000,
        healthy_after_s: float = 10.0,
        catchup_interval_s: float | None = None,
    ) -> None:
        install_log_scrubbing()
        self._auth = auth
        self._http = GraphQLHttp(
            appsync.graphql_url,
            auth,
            timeout_s=request_timeout_s,
            backoff=request_backoff,
            attempts=request_attempts,
        )
        self._realtime_url = appsync.effective_realtime_url
        self._host = urlparse(appsync.graphql_url).netloc
        self._keep_alive_timeout_s = keep_alive_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._link_backoff = link_backoff
        self._healthy_after_s = healthy_after_s
        self._page_size = page_size
        self._catchup_interval_s = (
            appsync.catchup_interval_s if catchup_interval_s is None else catchup_interval_s
        )
        self._dedupe = Deduper(dedupe_capacity)
        self._queue: asyncio.Queue[CloudEvent | _Stop] = asyncio.Queue()
        self._held: dict[RealtimeSession, list[CloudEvent]] = {}
        self._state: tuple[LinkStateName, str] | None = None
        self._generation = 0
        self._iterating = False
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        self._recycle_requested = asyncio.Event()
        self._wake = asyncio.Event()
        self._refetching: set[tuple[str, str]] = set()
        self._recovering: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = LinkStats()
        self.session: RealtimeSession | None = None  # the live one (for diagnostics and tests)

    @property
    def sub(self) -> str:
        return self._auth.sub

    # == the stream ===========================================================================================

    async def events(self) -> AsyncIterator[CloudEvent]:
        """Runs the link while iterated; reconnects forever until :meth:`close`."""
        if self._iterating:
            raise RuntimeError("CloudClient.events() is already being iterated: one consumer per client")
        if self._closed:
            return
        self._iterating = True
        self._supervisor = asyncio.create_task(self._supervise(), name="cloud.link")
        periodic = None
        if self._catchup_interval_s > 0:
            periodic = asyncio.create_task(
                self._periodic_catch_up(self._catchup_interval_s), name="cloud.periodic_catchup"
            )
        try:
            while True:
                event = await self._queue.get()
                if isinstance(event, _Stop):
                    return
                yield event
        finally:
            self._iterating = False
            if periodic is not None:
                periodic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await periodic
            await self._stop_supervisor()

    async def recycle(self) -> None:
        """Replace the socket now (after a PC resume): a fresh token, a new socket, resubscribe, catch up."""
        self._recycle_requested.set()
        self._wake.set()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        await self._stop_supervisor()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.close()
        self._queue.put_nowait(_STOP)

    async def _stop_supervisor(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _emit(self, event: CloudEvent) -> None:
        self._queue.put_nowait(event)

    def _set_state(self, state: LinkStateName, detail: str = "") -> None:
        if self._state is not None and self._state[0] == state:
            return
        self._state = (state, detail)
        log.info("cloud.link_state", state=state, detail=detail)
        self._emit(LinkState(state, detail))

    async def _supervise(self) -> None:
        delays = self._link_backoff.delays()
        current: RealtimeSession | None = None
        started = 0.0
        try:
            while not self._closed:
                if current is None:
                    self._set_state("connecting")
                    try:
                        current = await self._start_session()
                    except Exception as e:
                        await self._after_failure(e, delays)
                        continue
                    started = time.monotonic()
                reason = await self._wait_for_change(current)
                if reason == "closed":
                    break
                if reason == "failed":
                    exc = current.failed.result()
                    await current.close()
                    self.session = current = None
                    if time.monotonic() - started >= self._healthy_after_s:
                        delays = self._link_backoff.delays()  # it worked for a while: start over gently
                    await self._after_failure(exc, delays)
                    continue
                # "recycle": make before break
                self._recycle_requested.clear()
                try:
                    fresh = await self._start_session()
                except Exception as e:
                    delay = next(delays)
                    log.warning("cloud.recycle_failed", error=describe(e), retry_in_s=round(delay, 2))
                    await self._sleep(delay)
                    continue
                old, current = current, fresh
                started = time.monotonic()
                await old.close()
        finally:
            if current is not None:
                await current.close()
            self.session = None

    async def _wait_for_change(self, session: RealtimeSession) -> str:
        """ "failed" | "recycle" | "closed"."""
        while True:
            if self._closed:
                return "closed"
            if session.failed.done():
                return "failed"
            # a deadline already past (odd clocks, tiny token lifetimes) must not turn into a reconnect spin
            due = max(session.deadline, session.opened_at + _MIN_SESSION_S)
            if self._recycle_requested.is_set() or time.monotonic() >= due:
                return "recycle"
            self._wake.clear()
            wake: asyncio.Future[Any] = asyncio.ensure_future(self._wake.wait())
            waiters: set[asyncio.Future[Any]] = {wake, session.failed}
            try:
                await asyncio.wait(
                    waiters,
                    timeout=max(0.0, due - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                wake.cancel()

    async def _after_failure(self, exc: BaseException, delays: Iterator[float]) -> None:
        disposition = classify(exc)
        detail = describe(exc)
        if disposition is Disposition.REFRESH:
            try:
                await self._auth.force_refresh()
            except AuthError as e:
                disposition, detail = Disposition.CREDENTIALS, describe(e)
            except Exception as e:
                detail = describe(e)
        if disposition is Disposition.CREDENTIALS:
            self._set_state("auth_failed", detail)
            delay = self._link_backoff.max_s
        else:
            self._set_state("disconnected", detail)
            delay = next(delays)
        log.info("cloud.reconnect_in", delay_s=round(delay, 3), reason=detail)
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up for close() or recycle()."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _start_session(self) -> RealtimeSession:
        token, deadline = await self._auth.id_token_with_deadline()
        sub = self._auth.sub
        session: RealtimeSession

        def sink(doc: docs.SubscriptionDoc, result: ExecutionResult) -> None:
            self._on_frame(session, doc, result)

        session = RealtimeSession(
            url=self._realtime_url,
            host=self._host,
            token=token,
            deadline=deadline,
            docs=docs.SUBSCRIPTIONS,
            variables={"filter": {"userId": {"eq": sub}}},
            sink=sink,
            keep_alive_timeout_s=self._keep_alive_timeout_s,
            connect_timeout_s=self._connect_timeout_s,
            name=f"realtime-{self.stats.sessions + 1}",
        )
        self._held[session] = []
        try:
            await session.open()
            caught_up = await self._catch_up()
        except BaseException:
            self._held.pop(session, None)
            await session.close()
            raise
        self.stats.sessions += 1
        self.stats.catchups += 1
        # no await from here on: catch-up, then what arrived meanwhile, then live
        for event in caught_up:
            self._deliver(event)
        for event in self._held.pop(session):
            self._deliver(event)
        self.session = session
        self._generation += 1
        self._set_state("connected")
        self._emit(CaughtUp(self._generation))
        log.debug(
            "cloud.session_open",
            session=session.name,
            keep_alive_timeout_s=session.keep_alive_timeout_s,
            recycle_in_s=round(deadline - time.monotonic(), 1),
            generation=self._generation,
        )
        return session

    # == frames ================================================================================================

    def _on_frame(self, session: RealtimeSession, doc: docs.SubscriptionDoc, result: ExecutionResult) -> None:
        self.stats.frames += 1
        received_at = getattr(result, "received_at", None) or time.monotonic()
        data = result.data if isinstance(result.data, dict) else {}
        payload = data.get(doc.field)
        # gql hands ``errors`` over as the frame had it: only a list is a list of errors (a string would be
        # iterated character by character, a number not at all)
        raw_errors: Any = result.errors
        wire_errors = raw_errors if isinstance(raw_errors, list) else [raw_errors] if raw_errors else []
        errors = tuple(GraphQLErrorInfo.from_wire(e) for e in wire_errors)
        event: CloudEvent
        if isinstance(payload, dict):
            owner = payload.get("userId")
            if owner is not None and owner != self._auth.sub:
                self.stats.foreign += 1
                log.debug("cloud.foreign_record_dropped", field=doc.field, id=payload.get("id"))
                return
            try:
                record = _PARSERS[doc.record_type](payload)
                event = RecordEvent(record, "create" if doc.source == "create" else "update", received_at)
                if errors:
                    log.warning(
                        "cloud.frame_errors_ignored",
                        field=doc.field,
                        id=record.id,
                        errors=[str(e) for e in errors],
                    )
            except RecordError as e:
                event = BadRecord(e, doc.source)
                if errors:  # the server flagged missing fields: the stored record may well be fine
                    self._recover(doc.record_type, e.record_id)
        else:
            # null payload: the mutation selected too few fields, and null propagation took the id with it
            error = _record_error_from(doc.record_type, None, errors, doc.field)
            event = BadRecord(error, doc.source)
            self._recover(doc.record_type, None)
        held = self._held.get(session)
        if held is not None:
            held.append(event)
        else:
            self._deliver(event)

    def _deliver(self, event: CloudEvent) -> None:
        if isinstance(event, RecordEvent):
            verdict = self._dedupe.admit(event.record)
            if verdict is Verdict.DUPLICATE:
                self.stats.duplicates += 1
                return
            if verdict is Verdict.STALE:
                self.stats.stale += 1
                log.debug("cloud.stale_version_dropped", type=type(event.record).__name__, id=event.record.id)
                return
            self.stats.delivered += 1
        elif isinstance(event, BadRecord):
            self.stats.bad += 1
            log.warning("cloud.bad_record", source=event.source, error=str(event.error))
        self._emit(event)

    def _recover(self, record_type: str, record_id: str | None) -> None:
        """After an unreadable frame, read the truth back so a status change is not lost: the record by id
        when the frame named it, else every active record of that type (a partial catch-up). Bounded: one
        read per id in flight, one catch-up per type in flight plus one queued."""
        if record_id is not None:
            key = (record_type, record_id)
            if key in self._refetching or len(self._refetching) >= _MAX_REFETCHES_IN_FLIGHT:
                return
            self._refetching.add(key)
            self._spawn(self._refetch(key), name=f"cloud.refetch.{record_id}")
        elif record_type in self._recovering:
            self._recovering[record_type] = True  # run once more when the current one ends
        else:
            self._recovering[record_type] = False
            self._spawn(self._recover_type(record_type), name=f"cloud.recover.{record_type}")

    async def _refetch(self, key: tuple[str, str]) -> None:
        record_type, record_id = key
        try:
            record: Position | Action | None
            if record_type == "Position":
                record = await self._get(_POSITION, record_id)
            else:
                record = await self._get(_ACTION, record_id)
            if record is not None and record.user_id == self._auth.sub:
                self._deliver(RecordEvent(record, "catchup", time.monotonic()))
        except RecordError as e:
            self._deliver(BadRecord(e, "catchup"))
        except Exception as e:
            log.warning("cloud.refetch_failed", type=record_type, id=record_id, error=describe(e))
        finally:
            self._refetching.discard(key)

    async def _recover_type(self, record_type: str) -> None:
        try:
            while True:
                self._recovering[record_type] = False
                for event in await self._catch_up(
                    positions=record_type == "Position", actions=record_type == "Action"
                ):
                    self._deliver(event)
                if not self._recovering[record_type]:
                    return
        except Exception as e:
            log.warning("cloud.recover_failed", type=record_type, error=describe(e))
        finally:
            self._recovering.pop(record_type, None)

    async def _periodic_catch_up(self, interval_s: float) -> None:
        """The reconnect's catch-up queries, every ``interval_s`` while connected, fed through the deduper:
        AppSync does not deliver an owner-filtered update whose mutation selection set lacks ``userId``, so
        a subscription alone can miss an edit until the next reconnect."""
        while not self._closed:
            await asyncio.sleep(interval_s)
            if self.session is None or self._closed:
                continue
            try:
                events = await self._catch_up()
            except Exception as e:
                log.warning("cloud.periodic_catchup_failed", error=describe(e))
                continue
            self.stats.catchups += 1
            self.stats.periodic_catchups += 1
            for event in events:
                self._deliver(event)

    def _spawn(self, coro: Any, *, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # == catch-up ==============================================================================================

    async def _catch_up(self, *, positions: bool = True, actions: bool = True) -> list[CloudEvent]:
        """Every active record (positions OPENING/OPEN/CLOSING, actions PENDING/EXECUTING), positions first:
        the actions refer to them."""
        try:
            return await self._catch_up_all(positions=positions, actions=actions)
        except BaseExceptionGroup as group:  # report the first real cause, so it is classified as itself
            raise _first_leaf(group) from None

    async def _catch_up_all(self, *, positions: bool, actions: bool) -> list[CloudEvent]:
        async with asyncio.TaskGroup() as tg:
            position_tasks = [
                tg.create_task(self._positions(s))
                for s in (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING)
                if positions
            ]
            action_tasks = [
                tg.create_task(self._actions(s))
                for s in (ActionStatus.PENDING, ActionStatus.EXECUTING)
                if actions
            ]
        events: list[CloudEvent] = []
        results: list[
            tuple[list[Position], list[RecordError], float] | tuple[list[Action], list[RecordError], float]
        ]
        results = [t.result() for t in position_tasks] + [t.result() for t in action_tasks]
        for records, errors, received_at in results:
            events += [RecordEvent(r, "catchup", received_at) for r in records]
            events += [BadRecord(e, "catchup") for e in errors]
        return events

    async def _actions(self, status: ActionStatus) -> tuple[list[Action], list[RecordError], float]:
        sub = self._auth.sub
        variables = {"userId": sub, "status": {"eq": status.value}}  # a String here (Surprise 7)

        def keep(a: Action) -> bool:
            return a.status is status and a.user_id == sub

        return await self._pages(
            docs.ACTIONS_BY_USER_AND_STATUS, "getActionsByUserAndStatus", variables, _ACTION, keep
        )

    async def _positions(self, status: PositionStatus) -> tuple[list[Position], list[RecordError], float]:
        # beginsWith "OPEN" also matches "OPENING" (Surprise 3): the filter keeps the exact status
        sub = self._auth.sub
        variables = {
            "userId": sub,
            "statusUpdatedAt": {"beginsWith": {"status": status.value}},
            "filter": {"status": {"eq": status.value}},
        }

        def keep(p: Position) -> bool:  # the server filter did this already; a second look guards the trap
            return p.status is status and p.user_id == sub

        return await self._pages(
            docs.POSITIONS_BY_USER_AND_STATUS, "getPositionsByUserAndStatus", variables, _POSITION, keep
        )

    async def _pages(
        self, query: str, root: str, variables: dict[str, Any], kind: _Kind[R], keep: Callable[[R], bool]
    ) -> tuple[list[R], list[RecordError], float]:
        records: list[R] = []
        errors: list[RecordError] = []
        seen_tokens: set[str] = set()
        next_token: str | None = None
        received_at = time.monotonic()
        for _ in range(_MAX_PAGES):
            response = await self._http.execute(
                query, {**variables, "limit": self._page_size, "nextToken": next_token}, root=root
            )
            received_at = time.monotonic()
            connection = response.data[root]
            page_records, page_errors = self._items(connection, response, root, kind)
            errors += page_errors
            records += [r for r in page_records if keep(r)]
            next_token = connection.get("nextToken") if isinstance(connection, dict) else None
            if not next_token:
                return records, errors, received_at
            if next_token in seen_tokens:
                raise GraphQLRejected(f"{root}: the server repeated a nextToken; pagination would not end")
            seen_tokens.add(next_token)
        raise GraphQLRejected(f"{root}: more than {_MAX_PAGES} pages; refusing to read on")

    @staticmethod
    def _items(
        connection: Any, response: GraphQLResponse, root: str, kind: _Kind[R]
    ) -> tuple[list[R], list[RecordError]]:
        items = connection.get("items") if isinstance(connection, dict) else None
        if not isinstance(items, list):
            raise GraphQLRejected(f"{root}: the answer has no items list")
        by_index: dict[int, list[GraphQLErrorInfo]] = {}
        for err in response.errors:
            if len(err.path) >= 3 and err.path[1] == "items" and isinstance(err.path[2], int):
                by_index.setdefault(err.path[2], []).append(err)
        records: list[R] = []
        errors: list[RecordError] = []
        for i, item in enumerate(items):
            if isinstance(item, dict):
                try:
                    records.append(kind.parse(item))
                except RecordError as e:
                    errors.append(e)
            else:
                errors.append(_record_error_from(kind.name, None, tuple(by_index.get(i, ())), root))
        return records, errors

    # == queries ===============================================================================================
    # They raise: RecordError (malformed record), AccessDenied (not yours), AuthError (sign-in gone),
    # RequestRetriesExhausted (transient, after retries), GraphQLRejected (anything else).

    async def get_position(self, position_id: str) -> Position | None:
        return await self._get(_POSITION, position_id)

    async def get_action(self, action_id: str) -> Action | None:
        return await self._get(_ACTION, action_id)

    async def positions_by_status(self, status: PositionStatus) -> list[Position]:
        """This user's positions in ``status`` (malformed ones are logged and left out)."""
        records, errors, _ = await self._positions(status)
        for e in errors:
            log.warning("cloud.bad_record", source="query", error=str(e))
        return records

    async def actions_by_status(self, status: ActionStatus) -> list[Action]:
        records, errors, _ = await self._actions(status)
        for e in errors:
            log.warning("cloud.bad_record", source="query", error=str(e))
        return records

    async def accounts(self) -> list[Account]:
        sub = self._auth.sub
        records, errors, _ = await self._pages(
            docs.ACCOUNTS_BY_USER, "getAccountsByUser", {"userId": sub}, _ACCOUNT, lambda a: a.user_id == sub
        )
        for e in errors:
            log.warning("cloud.bad_record", source="query", error=str(e))
        return records

    async def _get(self, kind: _Kind[R], record_id: str) -> R | None:
        try:
            response = await self._http.execute(kind.get_doc, {"id": record_id}, root=kind.get_root)
        except GraphQLRejected as e:
            if e.errors and any(len(err.path) > 1 for err in e.errors):
                raise _record_error_from(kind.name, record_id, e.errors, kind.get_root) from None
            raise
        payload = response.data.get(kind.get_root)
        return None if payload is None else kind.parse(payload)

    # == mutations =============================================================================================

    async def claim_action(self, action_id: str) -> MutationOutcome[Action]:
        """PENDING -> EXECUTING, only if still PENDING. Losing the race is ConditionFailed."""
        return await self._set_action_status(action_id, ActionStatus.PENDING, ActionStatus.EXECUTING)

    async def finish_action(self, action_id: str, status: ActionStatus) -> MutationOutcome[Action]:
        """EXECUTING -> EXECUTED | FAILED."""
        if status not in (ActionStatus.EXECUTED, ActionStatus.FAILED):
            raise ValueError(f"finish_action takes EXECUTED or FAILED, not {status.value}")
        return await self._set_action_status(action_id, ActionStatus.EXECUTING, status)

    async def _set_action_status(
        self, action_id: str, expected: ActionStatus, status: ActionStatus
    ) -> MutationOutcome[Action]:
        if status not in {to for (frm, _), to in ACTION_TRANSITIONS.items() if frm is expected}:
            raise IllegalTransition(
                f"action {action_id}: {expected.value} -> {status.value} is not a transition"
            )

        def applied(current: Action) -> bool:
            return current.status is status

        return await self._mutate(
            _ACTION,
            action_id,
            docs.UPDATE_ACTION,
            "updateAction",
            {
                "input": {"id": action_id, "status": status.value},
                "condition": {"status": {"eq": expected.value}},
            },
            expected=expected.value,
            applied=applied,
        )

    async def update_position(
        self,
        position_id: str,
        expected: PositionStatus,
        status: PositionStatus,
        *,
        entry_price: float | None = None,
        entry_time: datetime | None = None,
        mt_ticket: str | None = None,
        exit_price: float | None = None,
        exit_time: datetime | None = None,
        exit_reason: str | None = None,
    ) -> MutationOutcome[Position]:
        """Set ``status`` (always sent: the sort key needs it, Surprise 2) and the given fields, only if the
        position is in ``expected``. ``expected == status`` updates fields without a transition."""
        if status is not expected and status not in {
            to for (frm, _), to in POSITION_TRANSITIONS.items() if frm is expected
        }:
            raise IllegalTransition(
                f"position {position_id}: {expected.value} -> {status.value} is not a transition"
            )
        fields: dict[str, Any] = {}
        if entry_price is not None:
            fields["entryPrice"] = _finite("entry_price", entry_price)
        if entry_time is not None:
            fields["entryTime"] = aws_datetime(entry_time)
        if mt_ticket is not None:
            fields["mtTicket"] = str(mt_ticket)
        if exit_price is not None:
            fields["exitPrice"] = _finite("exit_price", exit_price)
        if exit_time is not None:
            fields["exitTime"] = aws_datetime(exit_time)
        if exit_reason is not None:
            fields["exitReason"] = exit_reason

        def applied(current: Position) -> bool:
            wire = current.to_wire()
            return current.status is status and all(_same(wire.get(k), v) for k, v in fields.items())

        return await self._mutate(
            _POSITION,
            position_id,
            docs.UPDATE_POSITION,
            "updatePosition",
            {
                "input": {"id": position_id, "status": status.value, **fields},
                "condition": {"status": {"eq": expected.value}},
            },
            expected=expected.value,
            applied=applied,
        )

    async def update_account(
        self, account_id: str, *, balance: float, credit: float, equity: float, last_updated: datetime
    ) -> MutationOutcome[Account]:
        fields = {
            "balance": _finite("balance", balance),
            "credit": _finite("credit", credit),
            "equity": _finite("equity", equity),
            "lastUpdated": aws_datetime(last_updated),
        }
        # only an existing account of this user (the server's own condition also requires it to exist)
        return await self._mutate(
            _ACCOUNT,
            account_id,
            docs.UPDATE_ACCOUNT,
            "updateAccount",
            {"input": {"id": account_id, **fields}, "condition": {"userId": {"eq": self._auth.sub}}},
            expected=None,
            applied=lambda current: all(_same(current.to_wire().get(k), v) for k, v in fields.items()),
        )

    async def set_pc_status(self, status: PCStatus) -> MutationOutcome[User]:
        sub = self._auth.sub
        return await self._mutate(
            _USER,
            sub,
            docs.UPDATE_USER,
            "updateUser",
            {"input": {"id": sub, "pcStatus": status.value}},
            expected=None,
            applied=lambda current: current.pc_status is status,
        )

    async def _mutate(
        self,
        kind: _Kind[R],
        record_id: str,
        query: str,
        root: str,
        variables: dict[str, Any],
        *,
        expected: str | None,
        applied: Callable[[R], bool],
    ) -> MutationOutcome[R]:
        what = f"{kind.name} {record_id}"
        try:
            response = await self._http.execute(query, variables, root=root)
        except ConditionalCheckFailed as e:
            return await self._condition_failed(kind, record_id, expected, applied, after_retry=e.after_retry)
        except AccessDenied as e:
            return Unauthorized(f"{what}: {e}")
        except AuthError as e:  # our sign-in lapsed: worth retrying once it is back, unlike a denial
            return Failed(f"{what}: sign-in lapsed: {e}", retryable=True)
        except RetryableError as e:
            return Failed(f"{what}: {e}", retryable=True)
        except PermanentError as e:
            return Failed(f"{what}: {e}", retryable=False)
        payload = response.data.get(root)
        if payload is None:
            return NotFound(f"{what} does not exist")
        try:
            return Ok(kind.parse(payload))
        except RecordError as e:
            return Failed(
                f"{what}: the write was applied but the returned record is malformed: {e}", retryable=False
            )

    async def _condition_failed(
        self,
        kind: _Kind[R],
        record_id: str,
        expected: str | None,
        applied: Callable[[R], bool],
        *,
        after_retry: bool,
    ) -> MutationOutcome[R]:
        """Read the record to tell "not there", "moved by someone else" and "our own lost answer" apart."""
        what = f"{kind.name} {record_id}"
        try:
            current = await self._get(kind, record_id)
        except Exception as e:  # the read is only to explain; the condition failure stands
            return ConditionFailed(
                f"{what}: condition failed (expected {expected}); re-read failed: {describe(e)}"
            )
        if current is None:
            return NotFound(f"{what} does not exist")
        if after_retry and applied(current):
            # an earlier attempt whose answer was lost did the write; for a claim this may also be another
            # agent's identical claim, which leads to the same state and the same next step
            log.info("cloud.write_already_applied", type=kind.name, id=record_id)
            return Ok(current)
        status = getattr(current, "status", None)
        now = f"is {status.value}" if isinstance(status, StrEnum) else "did not match"
        return ConditionFailed(f"{what} {now}, expected {expected}", current=current)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _same(wire_value: Any, sent: Any) -> bool:
    if isinstance(sent, float) and isinstance(wire_value, int | float):
        return float(wire_value) == sent
    if isinstance(sent, str) and isinstance(wire_value, str) and sent.endswith("Z"):
        try:
            return datetime.fromisoformat(wire_value.replace("Z", "+00:00")) == datetime.fromisoformat(
                sent.replace("Z", "+00:00")
            )
        except ValueError:
            return wire_value == sent
    return bool(wire_value == sent)
