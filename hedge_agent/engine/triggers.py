"""Fires (a trail fired, or the position was stopped out) and their trigger claims.

The fire and its pending claims are one journal row set, written in one transaction (with the trail latch
for a trail fire, with the close fact for a stop-out) before any claim or report leaves; claims are settled
one by one, and every fire's unsettled claims are retried by reconciliation after any restart.

Bounds (issue 16): a position's ``triggerActionIds`` holds at most ``MAX_TRIGGER_IDS`` ids; a longer list
is bad input: a trigger failure naming the position, the count and the cap (a log line and a notice, said
as soon as the position is tracked and again at the fire), and nothing of it is claimed, so nothing else
waits behind it. At most ``MAX_CONCURRENT_CLAIMS`` claim requests are in flight at once (all fires
together); settling a claim is one primary-key update of its own row.
"""

from __future__ import annotations

import asyncio

import structlog

from hedge_agent.domain.models import Position, trigger_action_ids
from hedge_agent.errors import RecordError

from .context import Core
from .journal import FireRecord
from .outcomes import ConditionFailed, NotFound, Ok, Unauthorized

log = structlog.get_logger(__name__)

MAX_TRIGGER_IDS = 100  # trigger actions one position may claim
MAX_CONCURRENT_CLAIMS = 8  # claim requests in flight at once, every fire together


class Triggers:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._in_flight = asyncio.Semaphore(MAX_CONCURRENT_CLAIMS)

    def trigger_ids(self, p: Position | None, position_id: str) -> tuple[str, ...]:
        if p is None:
            return ()
        try:
            ids = trigger_action_ids(p)
        except RecordError as e:
            self.failure(position_id, str(e))
            return ()
        if len(ids) > MAX_TRIGGER_IDS:
            self.failure(
                position_id,
                f"triggerActionIds holds {len(ids)} action ids, more than the {MAX_TRIGGER_IDS} one position "
                "may trigger: none of them is claimed. Fix the record (fewer trigger actions, or split them "
                "over several positions).",
            )
            return ()
        return ids

    async def fire(self, position_id: str, cause: str) -> None:
        """Claim a fire's triggers; records the fire first if the caller did not (the monitor does)."""
        core = self.core
        core.counters.fires += 1
        fire = await core.journal.call(core.j.get_fire, position_id)
        if fire is None:
            p = core.positions.get(position_id) or await core.cloud.get_position(position_id)
            ids = self.trigger_ids(p, position_id)
            fire = await core.journal.call(core.j.add_fire, position_id, cause, ids)
        now = core.clock()
        for aid in fire.trigger_ids:
            core.timing.fired.setdefault(aid, now)
        log.info("fired", position=position_id, cause=fire.cause, triggers=list(fire.trigger_ids))
        await self.claim(fire)

    async def claim(self, fire: FireRecord) -> None:
        core = self.core
        position_id = fire.position_id

        async def one(aid: str) -> None:
            async with self._in_flight:
                outcome = await core.cloud.claim_action(aid)
            if isinstance(outcome, Ok):
                core.counters.claims_won += 1
                log.info("trigger claimed", position=position_id, action=aid)
            elif isinstance(outcome, ConditionFailed):
                core.counters.claims_lost += 1
                log.info("trigger already claimed", position=position_id, action=aid)
            elif isinstance(outcome, Unauthorized | NotFound):
                self.failure(position_id, f"action {aid}: {outcome.message}")
            else:
                log.warning("claim failed; will retry", action=aid, error=outcome.message)
                return
            await core.journal.call(core.j.settle_claim, position_id, aid)

        await asyncio.gather(*(one(aid) for aid in fire.pending_ids))

    def failure(self, position_id: str, message: str) -> None:
        self.core.counters.trigger_failures += 1
        self.core.board.notice("error", "trigger failed", f"position {position_id}: {message}")
