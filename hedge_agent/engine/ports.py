"""What the engine needs from the cloud link, as a protocol (``cloud.client.CloudClient`` implements it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from hedge_agent.domain.enums import ActionStatus, PCStatus, PositionStatus, Side, Symbol
from hedge_agent.domain.models import Account, Action, Position, User
from hedge_agent.engine.events import CloudEvent
from hedge_agent.engine.outcomes import MutationOutcome


class CloudPort(Protocol):
    @property
    def sub(self) -> str: ...

    def events(self) -> AsyncIterator[CloudEvent]: ...

    async def get_position(self, position_id: str) -> Position | None: ...

    async def get_action(self, action_id: str) -> Action | None: ...

    async def positions_by_status(self, status: PositionStatus) -> list[Position]:
        """This user's positions in ``status`` (read only to name the owner of a stray tagged trade)."""
        ...

    async def claim_action(self, action_id: str) -> MutationOutcome[Action]: ...

    async def finish_action(self, action_id: str, status: ActionStatus) -> MutationOutcome[Action]: ...

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
    ) -> MutationOutcome[Position]: ...

    async def update_account(
        self, account_id: str, *, balance: float, credit: float, equity: float, last_updated: datetime
    ) -> MutationOutcome[Account]: ...

    async def set_pc_status(self, status: PCStatus) -> MutationOutcome[User]: ...


TradeKind = Literal["fill", "close", "failure", "refusal"]


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One thing a trader would want to read about: an order filled, a position closed, a failure, a refusal.

    The engine emits one per fill/close/failure/refusal through :class:`TradeSink`; the trade log
    (``trades.log``, one readable line each) and the tray are sinks.
    """

    kind: TradeKind
    terminal: str
    account_id: str
    position_id: str
    symbol: Symbol
    side: Side  # side of the position (not of the closing order)
    volume: float
    price: float | None  # fill / exit price, None for a failure or refusal
    ticket: str | None
    why: str  # "trail", "by hand", "stop-out", "risk cap", "action", "pause", or the failure's reason
    at: datetime  # UTC


class TradeSink(Protocol):
    def trade(self, event: TradeEvent) -> None: ...
