"""Account sync (design §1.7): balance, credit and equity of each bound account, pushed only when changed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from hedge_agent.engine.outcomes import Ok

from .binding import Binding
from .ports import CloudPort

log = structlog.get_logger(__name__)


class AccountSync:
    def __init__(self, cloud: CloudPort, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cloud = cloud
        self.now = now
        self._last: dict[str, tuple[float, float, float]] = {}
        self.pushed = 0

    async def sync(self, b: Binding) -> bool:
        """One pass for one terminal; True when an update was sent and accepted."""
        try:
            info = await b.terminal.account_info()
        except Exception as e:
            log.debug("account info unavailable", terminal=b.name, error=repr(e))
            return False
        values = (round(info.balance, 2), round(info.credit, 2), round(info.equity, 2))
        if self._last.get(b.account_id) == values:
            return False
        outcome = await self.cloud.update_account(
            b.account_id, balance=values[0], credit=values[1], equity=values[2], last_updated=self.now()
        )
        if isinstance(outcome, Ok):
            self._last[b.account_id] = values
            self.pushed += 1
            return True
        log.warning("account update not accepted", account=b.account_id, outcome=repr(outcome))
        return False
