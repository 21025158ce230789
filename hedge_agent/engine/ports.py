"""What the engine needs from the cloud link, as a protocol (``cloud.client.CloudClient`` implements it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from hedge_agent.cloud.events import CloudEvent
from hedge_agent.cloud.outcomes import MutationOutcome
from hedge_agent.domain.enums import ActionStatus, PCStatus, PositionStatus
from hedge_agent.domain.models import Account, Action, Position, User


class CloudPort(Protocol):
    @property
    def sub(self) -> str: ...

    def events(self) -> AsyncIterator[CloudEvent]: ...

    async def get_position(self, position_id: str) -> Position | None: ...

    async def get_action(self, action_id: str) -> Action | None: ...

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
