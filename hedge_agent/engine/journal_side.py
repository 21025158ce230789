"""The journal's side tables: trail states, fires with their trigger claims, and action outcomes.

A mixin of :class:`~hedge_agent.engine.journal.Journal` (same connection, same transactions); split out only
to keep each module small.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from hedge_agent.domain.intents import Intent
from hedge_agent.domain.trailing import TrailState

from .journal_rows import Row, fatal_on_failure


@dataclass(frozen=True, slots=True)
class FireRecord:
    position_id: str
    cause: str
    trigger_ids: tuple[str, ...]
    pending_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActionRecord:
    action_id: str
    position_id: str
    type: str
    outcome: str | None
    reason: str | None
    reported: bool


class SideTables:
    _db: sqlite3.Connection
    _clock: Callable[[], float]
    _tx: Callable[[], AbstractContextManager[None]]

    def _insert(self, intent: Intent) -> None:  # Journal's
        raise NotImplementedError

    def get_intent(self, intent_id: str) -> Intent | None:  # Journal's
        raise NotImplementedError

    # -- trails ------------------------------------------------------------------------------------------

    def _save_trails(self, states: list[TrailState]) -> None:
        self._db.executemany(
            "INSERT INTO trails VALUES (?, ?, ?) ON CONFLICT(position_id) DO UPDATE SET state=excluded.state, "
            "updated=excluded.updated",
            [(s.position_id, _json(s), self._clock()) for s in states],
        )

    @fatal_on_failure
    def save_trails(self, states: list[TrailState]) -> None:
        if not states:
            return
        with self._tx():
            self._save_trails(states)

    @fatal_on_failure
    def load_trail(self, position_id: str) -> TrailState | None:
        row = self._db.execute("SELECT * FROM trails WHERE position_id=?", (position_id,)).fetchone()
        if row is None:
            return None
        r = Row("trails", row, "position_id")
        state = r.trail("state")
        if state.position_id != position_id:
            raise r._bad("state", state.position_id, f"the trail of {position_id!r}")
        return state

    @fatal_on_failure
    def delete_trail(self, position_id: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM trails WHERE position_id=?", (position_id,))

    # -- fires (trail fired / stopped out) -> trigger claims --------------------------------------------

    def _add_fire(self, position_id: str, cause: str, trigger_ids: tuple[str, ...]) -> None:
        if self._db.execute("SELECT 1 FROM fires_done WHERE position_id=?", (position_id,)).fetchone():
            return  # archived: one fire per position, ever
        cur = self._db.execute(
            "INSERT OR IGNORE INTO fires VALUES (?, ?, ?)", (position_id, cause, self._clock())
        )
        if cur.rowcount:
            self._db.executemany(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, 0)",
                [(position_id, a, n) for n, a in enumerate(trigger_ids)],
            )

    @fatal_on_failure
    def add_fire(
        self,
        position_id: str,
        cause: str,
        trigger_ids: tuple[str, ...],
        trails: list[TrailState] | None = None,
    ) -> FireRecord:
        """Record a fire once, with its pending claims and (for a trail) the changed trail states, latch
        included, in one transaction; a second fire of the same position returns the first record."""
        with self._tx():
            if trails:
                self._save_trails(trails)
            self._add_fire(position_id, cause, trigger_ids)
        fire = self.get_fire(position_id)
        assert fire is not None
        return fire

    @fatal_on_failure
    def add_stop_out(self, intent: Intent, trigger_ids: tuple[str, ...]) -> tuple[Intent, FireRecord]:
        """A position gone from the terminal: its close fact and its fire (with claims), one transaction,
        before the STOPPED report leaves."""
        with self._tx():
            self._insert(intent)
            self._add_fire(intent.position_id, "stopped", trigger_ids)
        stored, fire = self.get_intent(intent.intent_id), self.get_fire(intent.position_id)
        assert stored is not None and fire is not None
        return stored, fire

    @fatal_on_failure
    def get_fire(self, position_id: str) -> FireRecord | None:
        done = ""
        row = self._db.execute("SELECT * FROM fires WHERE position_id=?", (position_id,)).fetchone()
        if row is None:  # a finished position's fire is in the archive
            done = "_done"
            row = self._db.execute("SELECT * FROM fires_done WHERE position_id=?", (position_id,)).fetchone()
        if row is None:
            return None
        r = Row("fires", row, "position_id")
        claims = self._db.execute(
            f"SELECT action_id, settled FROM claims{done} WHERE position_id=? ORDER BY seq", (position_id,)
        ).fetchall()
        ids = tuple(Row("claims", c, "action_id").text("action_id") for c in claims)
        pending = tuple(c["action_id"] for c in claims if not c["settled"])
        return FireRecord(r.text("position_id"), r.text("cause"), ids, pending)

    @fatal_on_failure
    def settle_claim(self, position_id: str, action_id: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE claims SET settled=1 WHERE position_id=? AND action_id=?", (position_id, action_id)
            )

    @fatal_on_failure
    def unsettled_fires(self) -> list[FireRecord]:
        rows = self._db.execute("SELECT DISTINCT position_id FROM claims WHERE settled=0").fetchall()
        return [f for r in rows if (f := self.get_fire(r["position_id"])) is not None]

    # -- actions -----------------------------------------------------------------------------------------

    @fatal_on_failure
    def get_action(self, action_id: str) -> ActionRecord | None:
        row = self._db.execute("SELECT * FROM actions WHERE action_id=?", (action_id,)).fetchone()
        if row is None:  # a finished position's action is in the archive
            row = self._db.execute("SELECT * FROM actions_done WHERE action_id=?", (action_id,)).fetchone()
        if row is None:
            return None
        r = Row("actions", row, "action_id")
        return ActionRecord(
            r.text("action_id"),
            r.text("position_id"),
            r.text("type"),
            r.opt_text("outcome"),
            r.opt_text("reason"),
            bool(r.integer("reported")),
        )

    @fatal_on_failure
    def begin_action(self, action_id: str, position_id: str, type_: str) -> ActionRecord:
        with self._tx():
            rec = self.get_action(action_id)  # the existing one wins (an archived one too)
            if rec is None:
                self._db.execute(
                    "INSERT INTO actions (action_id, position_id, type, updated) VALUES (?, ?, ?, ?)",
                    (action_id, position_id, type_, self._clock()),
                )
                rec = self.get_action(action_id)
        assert rec is not None
        return rec

    @fatal_on_failure
    def decide_action(self, action_id: str, outcome: str, reason: str | None) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE actions SET outcome=?, reason=?, updated=? WHERE action_id=? AND outcome IS NULL",
                (outcome, reason, self._clock(), action_id),
            )

    @fatal_on_failure
    def mark_action_reported(self, action_id: str) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE actions SET reported=1, updated=? WHERE action_id=?", (self._clock(), action_id)
            )

    @fatal_on_failure
    def unreported_actions(self) -> list[ActionRecord]:
        rows = self._db.execute("SELECT action_id FROM actions WHERE reported=0").fetchall()
        return [a for r in rows if (a := self.get_action(r["action_id"])) is not None]


def _json(state: TrailState) -> str:
    return json.dumps(state.to_json())
