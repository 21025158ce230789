"""One directed, scripted schedule per scenario of issue 11's "Why", through the same simulated world as the
random seeds (real engine, cloud and broker models, virtual time), so each is provably reachable and covered.
Every test also checks the full invariant set at quiescence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hedge_agent.domain.enums import ActionStatus, ActionType, PositionStatus
from hedge_agent.domain.models import Position
from hedge_agent.domain.tags import close_intent_id, order_tag
from hedge_agent.engine.outcomes import ConditionFailed
from hedge_agent.errors import RetryableError

from .invariants import open_magic
from .scheduler import Outcome, Script, run_script
from .world import OTHER_USER, AgentSpec, Incarnation, World

# a crash cancels tasks that never started: their coroutines are never awaited (as in a killed process)
pytestmark = pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")

S = PositionStatus
A = ActionStatus


def position(world: World, pid: str) -> Position:
    return world.cloud.positions[pid]


def opens(world: World, pid: str) -> list[str]:
    magic = open_magic(pid)
    return [t for b in world.brokers.values() for k, m, t in b.orders if k == "open" and m == magic]


def errors_about(world: World, pid: str) -> list[str]:
    return [f"{n.title}: {n.message}" for n in world.notices if n.level == "error" and pid in n.message]


def logged_about(world: World, pid: str) -> list[str]:
    return [m for _t, level, m, ev in world.logs if level in ("warning", "error") and pid in repr(ev)]


def on_every_call(inc: Incarnation, hook: Callable[[str], str | None]) -> None:
    """Route every port call of ``inc`` (cloud, terminals, journal) through ``hook``."""
    setattr(inc, "on_call", hook)  # noqa: B010 - the journal reads it from the incarnation
    inc.view.on_call = hook
    for term in inc.terminals.values():
        term.on_call = hook


def clean(out: Outcome) -> None:
    assert not out.violations, "\n".join(str(v) for v in out.violations)
    assert not out.world.fatal, out.world.fatal


# -- fast admin edits leave records stuck ---------------------------------------------------------------


def test_opening_pending_opening_while_the_first_open_is_at_the_broker() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        s.world.terminal_faults.order_delay = 3.0  # the open sits at the broker
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.wait(0.5)
        s.admin.set(pid, status=S.PENDING)  # the fill lands while the record is PENDING
        await s.wait(4)
        s.world.terminal_faults.order_delay = 0.0
        s.admin.set(pid, status=S.OPENING)  # ... and the user opens it again
        await s.until(lambda: position(s.world, pid).status is S.OPEN, timeout=40)

    out = run_script(body)
    clean(out)
    assert position(out.world, pid).status is S.OPEN
    assert len(opens(out.world, pid)) == 1


def test_open_closing_open_closing_ends_closed() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.world.terminal_faults.order_delay = 2.0
        s.admin.set(pid, status=S.CLOSING)
        await s.wait(0.3)
        s.admin.set(pid, status=S.OPEN)  # the close fills while the record is OPEN again
        await s.wait(4)
        s.world.terminal_faults.order_delay = 0.0
        s.admin.set(pid, status=S.CLOSING)  # ... and the user closes it again
        await s.until(lambda: position(s.world, pid).status is S.CLOSED, timeout=40)

    out = run_script(body)
    clean(out)
    assert position(out.world, pid).status is S.CLOSED


def test_late_second_closing_after_closed_is_answered_closed() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.admin.set(pid, status=S.CLOSING)
        await s.until(lambda: position(s.world, pid).status is S.CLOSED)
        s.admin.set(pid, status=S.CLOSING)  # a late second close
        await s.until(lambda: position(s.world, pid).status is S.CLOSED, timeout=40)

    out = run_script(body)
    clean(out)
    closes = [t for b in out.world.brokers.values() for k, _m, t in b.orders if k == "close"]
    assert len(closes) == 1


def test_a_re_answer_whose_report_and_next_read_fail_is_retried() -> None:
    """Seed 1126: a late second CLOSING is answered CLOSED again from the journal; that report fails
    (retryable), and the reconcile pass that should retry it fails its read too. The journal has nothing
    unreported for the position, so only the retry set remembers it: a failed read must keep it there."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.admin.set(pid, status=S.CLOSING)
        await s.until(lambda: position(s.world, pid).status is S.CLOSED)
        faults = s.world.cloud.faults
        faults.mutation_fails = faults.read_fails = 1.0  # the re-answer fails, then the retry's read
        s.admin.set(pid, status=S.CLOSING)  # a late second close
        await s.wait(25)  # two reconcile passes fail their read
        faults.mutation_fails = faults.read_fails = 0.0
        await s.until(lambda: position(s.world, pid).status is S.CLOSED, timeout=40)

    out = run_script(body, catch_up_every_s=None)
    clean(out)


def test_a_re_answer_that_raises_in_the_live_path_is_retried() -> None:
    """The live-event twin of the test above: the re-answer's report loses a race without the current
    record (its read failed) and the read that follows raises. The step raised, the journal has nothing
    unreported: the position must be left for the next reconcile pass, not forgotten."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.admin.set(pid, status=S.CLOSING)
        await s.until(lambda: position(s.world, pid).status is S.CLOSED)
        view = s.world.agents["A"].view
        real_update, real_get = view.update_position, view.get_position

        async def lost_race(position_id: str, *a: Any, **kw: Any) -> ConditionFailed:
            return ConditionFailed(f"{position_id}: condition failed (simulated, no current record)")

        async def unreadable(position_id: str) -> Position | None:
            raise RetryableError(f"get {position_id}: connection reset (simulated)")

        view.update_position, view.get_position = lost_race, unreadable  # type: ignore[method-assign,assignment]
        s.admin.set(pid, status=S.CLOSING)  # a late second close
        await s.wait(5)
        view.update_position, view.get_position = real_update, real_get  # type: ignore[method-assign]
        await s.until(lambda: position(s.world, pid).status is S.CLOSED, timeout=40)

    out = run_script(body, catch_up_every_s=None)
    clean(out)


# -- trail edits ------------------------------------------------------------------------------------------


def _trailed_open(s: Script, width: float) -> str:
    pid = s.admin.position("acc-1", trail=width)
    s.admin.set(pid, status=S.OPENING)
    return pid


def test_trail_width_set_to_zero_stops_trailing() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = _trailed_open(s, 5)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.move("acc-1", 80)  # armed: 8 pips in profit
        await s.wait(1)
        s.admin.set(pid, trail_width=0)
        await s.wait(6)
        for _ in range(6):  # 12 pips back down: the old 5-pip stop is crossed
            s.move("acc-1", -20)
            await s.wait(0.5)

    out = run_script(body)
    clean(out)
    assert [f for f in out.world.fires if f.position_id == pid] == []


def test_trail_widened_from_5_to_50_pips_does_not_fire_at_the_old_stop() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = _trailed_open(s, 5)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.move("acc-1", 80)
        await s.wait(1)
        s.admin.set(pid, trail_width=50)
        await s.wait(6)
        for _ in range(6):
            s.move("acc-1", -20)
            await s.wait(0.5)

    out = run_script(body)
    clean(out)
    assert [f for f in out.world.fires if f.position_id == pid] == []


def test_trail_fires_at_the_configured_width() -> None:
    """The positive control of the two above: the same moves fire a 5-pip trail."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = _trailed_open(s, 5)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.move("acc-1", 80)
        await s.wait(1)
        for _ in range(6):
            s.move("acc-1", -20)
            await s.wait(0.5)

    out = run_script(body)
    clean(out)
    assert [f.cause for f in out.world.fires if f.position_id == pid] == ["trail"]


def test_a_width_edit_learned_from_the_agents_own_report_is_in_effect() -> None:
    """Seeds 800, 479, 1575: the admin narrows the trail while the open is at the broker and that frame is
    lost; the agent learns the new width from the record its OPEN report returns and trails at it. The
    trail check must judge the fire by that version too (it did not: a false "fired closer than W")."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = _trailed_open(s, 5)
        s.world.terminal_faults.order_delay = 2.0  # the open sits at the broker
        await s.wait(0.5)
        s.world.cloud.faults.drop = 1.0  # neither the edit's frame nor the echo of the OPEN report arrives
        s.admin.set(pid, trail_width=2)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.world.terminal_faults.order_delay = 0.0
        await s.wait(1)
        s.world.cloud.faults.drop = 0.0
        s.move("acc-1", 40)  # 4 pips in profit: armed at 2 pips, not at 5
        await s.wait(1)
        s.move("acc-1", -30)  # 3 pips back: past the 2-pip stop
        await s.wait(2)

    out = run_script(body, catch_up_every_s=None)
    clean(out)
    assert [f.cause for f in out.world.fires if f.position_id == pid] == ["trail"]


def test_a_width_edit_learned_from_a_reconcile_read_is_in_effect() -> None:
    """Seed 4779: the OPEN report's answer is lost (its echo then marks it reported), so reconcile reads the
    record again with no step left to do; the frame of a trailWidth edit made before that read was lost. The
    read brings the new width: it must be in effect (it was only cached: the trail kept the old width)."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        s.world.cloud.faults.mutation_times_out = 1.0  # the OPEN report applies; its answer is lost
        pid = _trailed_open(s, 5)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        await s.wait(0.3)  # the report's echo arrives
        s.world.cloud.faults.mutation_times_out = 0.0
        s.world.cloud.faults.drop = 1.0  # no frame from here on: only the reconcile read tells the edit
        s.admin.set(pid, trail_width=2)
        await s.wait(11)  # a reconcile period
        s.move("acc-1", 40)  # 4 pips in profit: armed at 2 pips, not at 5
        await s.wait(1)
        s.move("acc-1", -30)  # 3 pips back: past the 2-pip stop
        await s.wait(2)

    out = run_script(body, catch_up_every_s=None)
    clean(out)
    assert [f.cause for f in out.world.fires if f.position_id == pid] == ["trail"]


async def _opened_with_trigger(s: Script, trail: float = 0.0) -> tuple[str, str, str]:
    """A position on acc-1 whose trigger list holds one ENTRY action (of another position), opened:
    (the action's position, the action, the position)."""
    target = s.admin.position("acc-1")
    aid = s.admin.action(target, ActionType.ENTRY)
    pid = s.admin.position("acc-1", trail=trail, triggers=f'["{aid}"]')
    s.admin.set(pid, status=S.OPENING)
    await s.until(lambda: position(s.world, pid).status is S.OPEN)
    return target, aid, pid


# -- stop-out racing the user's close -------------------------------------------------------------------


def test_stop_out_racing_the_close_ends_stopped_with_exit_data_and_its_trigger() -> None:
    pid = target = aid = ""

    async def body(s: Script) -> None:
        nonlocal pid, target, aid
        target, aid, pid = await _opened_with_trigger(s)
        s.world.terminal_faults.order_delay = 1.0  # our close is on its way (its outcome will be unknown)...
        s.world.terminal_faults.forced = ["unknown_not_placed"]
        s.admin.set(pid, status=S.CLOSING)
        await s.wait(0.5)
        broker = s.world.brokers["acc-1"]
        ticket = position(s.world, pid).mt_ticket
        assert ticket is not None
        broker.execute_close(ticket, 0.1, None, "stop out")  # ...when the broker stops it out
        s.world.terminal_faults.order_delay = 0.0
        # the close's outcome is unknown: the engine may wait out its give-up (60 s) before it sees the stop-out
        await s.until(lambda: position(s.world, pid).status is S.STOPPED, timeout=90)

    out = run_script(body)
    clean(out)
    p = position(out.world, pid)
    assert p.status is S.STOPPED and p.exit_price is not None and p.exit_time is not None
    assert out.world.cloud.actions[aid].status is A.EXECUTED
    assert position(out.world, target).status is S.OPEN


# -- one account bound on two PCs -----------------------------------------------------------------------


def test_one_account_bound_on_two_pcs_is_said_loudly_at_open_time() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.wait(5)
        s.admin.set(pid, status=S.CLOSING)
        await s.wait(5)

    out = run_script(body, agents=[AgentSpec("A", ("acc-1",)), AgentSpec("A2", ("acc-1",))])
    said = [n for n in out.world.notices if n.level == "error" and (pid in n.message or "acc-1" in n.message)]
    assert said, "two PCs traded one account and nobody said so"
    assert said[0].at < 10.0  # at open time, not at the next reconcile
    p = position(out.world, pid)
    live = [t for t in out.world.brokers["acc-1"].open_trades() if t.magic == open_magic(pid)]
    # the cloud must not say CLOSED while a copy stays live, unless that is said loudly after the close
    if p.status in (S.CLOSED, S.STOPPED) and live:
        assert [n for n in said if n.at > 5.5], (
            f"cloud {p.status.value}, #{live[0].ticket} still live, silently"
        )


def _close_of_another_agent(s: Script, pid: str) -> None:
    """What a second PC bound to acc-1 does: close the trade with this position's first close tag."""
    ticket = position(s.world, pid).mt_ticket
    assert ticket is not None
    magic = order_tag(close_intent_id(pid, 1)).magic
    s.world.brokers["acc-1"].execute_close(ticket, 0.1, magic, "closed by us")


def test_a_trade_closed_by_another_agents_close_tag_is_closed_not_stopped() -> None:
    """Seeds 3213, 3497: the trade leaves the terminal through an order carrying this position's close tag
    (another PC bound to the account closed it): that is hedge-agent's close, CLOSED and said loudly, not a
    stop-out (STOPPED, and its triggers fired)."""
    pid = aid = ""

    async def body(s: Script) -> None:
        nonlocal pid, aid
        _target, aid, pid = await _opened_with_trigger(s)
        _close_of_another_agent(s, pid)
        await s.until(lambda: position(s.world, pid).status is not S.OPEN, timeout=30)

    out = run_script(body)
    clean(out)
    assert position(out.world, pid).status is S.CLOSED
    assert out.world.cloud.actions[aid].status is A.PENDING  # not a stop-out: nothing fired
    assert any("another agent" in e for e in errors_about(out.world, pid))


def test_our_close_refused_because_another_agent_closed_it_first_is_closed() -> None:
    """Seed 2651's class: this PC's close is refused (the trade is gone) because another PC's close with the
    same deterministic tag got there first: CLOSED, said loudly."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: position(s.world, pid).status is S.OPEN)
        s.world.terminal_faults.order_delay = 1.0  # our close is at the broker...
        s.admin.set(pid, status=S.CLOSING)
        await s.wait(0.5)
        _close_of_another_agent(s, pid)  # ...when the other PC's close executes
        s.world.terminal_faults.order_delay = 0.0
        await s.until(lambda: position(s.world, pid).status is not S.CLOSING, timeout=30)

    out = run_script(body)
    clean(out)
    assert position(out.world, pid).status is S.CLOSED
    assert [k for b in out.world.brokers.values() for k, _m, _t in b.orders if k == "close"] == ["close"]
    assert any("another agent" in e for e in errors_about(out.world, pid))


# -- crash around a fire --------------------------------------------------------------------------------


def test_crash_right_after_a_stop_out_report_still_claims_its_triggers() -> None:
    pid = aid = ""

    async def body(s: Script) -> None:
        nonlocal pid, aid
        _target, aid, pid = await _opened_with_trigger(s)
        inc = s.world.agents["A"]
        ticket = position(s.world, pid).mt_ticket
        assert ticket is not None

        def crash_after_stopped(what: str) -> str | None:
            if position(s.world, pid).status is S.STOPPED:
                inc.die()
                return "before"
            return None

        on_every_call(inc, crash_after_stopped)
        s.world.brokers["acc-1"].execute_close(ticket, 0.1, None, "stop out")
        await s.until(lambda: not inc.alive, timeout=10)
        await s.wait(2)
        s.restart("A")

    out = run_script(body)
    clean(out)
    assert position(out.world, pid).status is S.STOPPED
    assert out.world.cloud.actions[aid].status is A.EXECUTED


def test_crash_right_after_a_trail_fire_still_claims_its_triggers() -> None:
    pid = aid = ""

    async def body(s: Script) -> None:
        nonlocal pid, aid
        _target, aid, pid = await _opened_with_trigger(s, trail=5)
        s.move("acc-1", 80)
        await s.wait(1)
        inc = s.world.agents["A"]
        s.world.on_fire = lambda i, p, cause: setattr(i, "crash_in", 1)  # the next port call after the fire
        for _ in range(6):
            s.move("acc-1", -20)
            await s.wait(0.5)
        assert not inc.alive
        s.world.on_fire = lambda i, p, cause: None
        s.restart("A")

    out = run_script(body)
    clean(out)
    assert out.world.cloud.actions[aid].status is A.EXECUTED


# -- one odd action blocks recovery ----------------------------------------------------------------------


def test_an_action_whose_position_is_unreadable_fails_and_blocks_nothing() -> None:
    odd = ok = ""

    async def body(s: Script) -> None:
        nonlocal odd, ok
        foreign = s.admin.position("acc-1", user=OTHER_USER)
        odd = s.admin.action(foreign, ActionType.ENTRY, account="acc-1", status=A.EXECUTING)
        await s.wait(2)
        s.crash("A")
        await s.wait(1)
        s.restart("A")
        pid = s.admin.position("acc-1")
        ok = s.admin.action(pid, ActionType.ENTRY, status=A.EXECUTING)
        await s.wait(15)

    out = run_script(body)
    clean(out)
    assert out.world.cloud.actions[odd].status is A.FAILED
    assert out.world.cloud.actions[ok].status is A.EXECUTED


def test_an_entry_whose_record_is_deleted_while_its_open_is_unknown_ends_failed() -> None:
    """Seeds 3941, 5634: an ENTRY action's open has an unknown outcome (never placed); the user cancels and
    deletes the record. The orphan intent must still be given up (by the usual rule, never sent again), so
    the action ends FAILED instead of EXECUTING forever."""
    pid = aid = ""

    async def body(s: Script) -> None:
        nonlocal pid, aid
        s.world.terminal_faults.forced = ["unknown_not_placed"]
        pid = s.admin.position("acc-1")
        aid = s.admin.action(pid, ActionType.ENTRY, status=A.EXECUTING)
        await s.wait(3)
        s.admin.set(pid, status=S.CANCELED)
        await s.wait(1)
        s.admin.delete(pid)
        await s.until(lambda: s.world.cloud.actions[aid].status is not A.EXECUTING, timeout=120)

    out = run_script(body)
    clean(out)
    assert out.world.cloud.actions[aid].status is A.FAILED
    assert opens(out.world, pid) == []


# -- a late fill after an unknown outcome ---------------------------------------------------------------


def test_late_fill_75_s_after_an_unknown_outcome_is_an_error() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        s.world.terminal_faults.forced = ["unknown_late"]
        s.world.terminal_faults.late_delay = 75.0
        pid = s.admin.position("acc-1")
        s.admin.set(pid, status=S.OPENING)
        await s.wait(100)

    out = run_script(body)
    clean(out)
    p = position(out.world, pid)
    assert len(opens(out.world, pid)) == 1
    if p.status is not S.OPEN:  # gave up before the fill: the live trade must be an error, not silence
        late = [n for n in out.world.notices if n.level == "error" and pid in n.message and n.at > 75.5]
        assert late, f"{p.status.value} with a live trade carrying our tag since 75 s, and no error since"


# -- a lost journal with an order in flight -------------------------------------------------------------


def test_lost_journal_with_an_order_in_flight_does_not_send_it_again() -> None:
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        inc = s.world.agents["A"]

        def crash_after_open(what: str) -> str | None:
            if what.startswith("open "):
                for term in inc.terminals.values():
                    term.on_call = inc.on_call
                return "after"  # the order executes, the answer is lost with the process
            return None

        for term in inc.terminals.values():
            term.on_call = crash_after_open
        s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: not inc.alive, timeout=10)
        s.restart("A", lose_journal=True)
        await s.wait(10)

    out = run_script(body)
    clean(out)
    assert len(opens(out.world, pid)) == 1
    assert position(out.world, pid).status is S.OPEN


def test_look_first_without_an_answer_sends_nothing_until_the_terminal_answers() -> None:
    """Seed 3951: a record created before this agent started (a lost journal may hide an earlier open)
    is looked up before its open is sent; a lookup the terminal cannot answer proves nothing, so nothing
    is sent until one is answered."""
    pid = ""

    async def body(s: Script) -> None:
        nonlocal pid
        pid = s.admin.position("acc-1")
        await s.wait(1)
        s.crash("A")
        await s.wait(1)
        s.restart("A")
        await s.wait(1)
        s.world.terminal_faults.lookup_fails = 1.0
        s.admin.set(pid, status=S.OPENING)
        await s.wait(5)
        assert opens(s.world, pid) == [], "sent although no lookup was answered"
        s.world.terminal_faults.lookup_fails = 0.0
        await s.until(lambda: position(s.world, pid).status is S.OPEN, timeout=40)

    out = run_script(body)
    clean(out)
    assert len(opens(out.world, pid)) == 1


# -- a missed subscription event -------------------------------------------------------------------------


def test_a_missed_subscription_event_is_acted_on_within_the_catch_up_period() -> None:
    pid = ""
    took = 0.0

    async def body(s: Script) -> None:
        nonlocal pid, took
        pid = s.admin.position("acc-1")
        s.world.cloud.faults.drop = 1.0  # the OPENING update never reaches the agent
        s.admin.set(pid, status=S.OPENING)
        s.world.cloud.faults.drop = 0.0
        took = await s.until(lambda: position(s.world, pid).status is S.OPEN, timeout=40)

    out = run_script(body)
    clean(out)
    assert took <= 31.0


# -- failures that matter reach the log ------------------------------------------------------------------


def test_open_failed_and_outcome_unknown_are_log_lines_too() -> None:
    failed = unknown = ""

    async def body(s: Script) -> None:
        nonlocal failed, unknown
        s.world.terminal_faults.forced = ["reject_permanent", "unknown_not_placed"]
        failed = s.admin.position("acc-1")
        s.admin.set(failed, status=S.OPENING)
        await s.wait(3)
        unknown = s.admin.position("acc-1")
        s.admin.set(unknown, status=S.OPENING)
        await s.wait(3)

    out = run_script(body)
    clean(out)
    assert position(out.world, failed).status is S.CANCELED
    assert logged_about(out.world, failed), "open failed is only a tray notice"
    assert logged_about(out.world, unknown), "outcome unknown is only a tray notice"


def test_trigger_failures_are_log_lines_and_block_nothing() -> None:
    bad = missing = good = aid = ""

    async def body(s: Script) -> None:
        nonlocal bad, missing, good, aid
        target = s.admin.position("acc-1")
        aid = s.admin.action(target, ActionType.ENTRY)
        bad = s.admin.position("acc-1", triggers='["act-1"')  # malformed JSON
        missing = s.admin.position("acc-1", triggers='["act-missing"]')
        good = s.admin.position("acc-1", triggers=f'["{aid}"]')
        for pid in (bad, missing, good):
            s.admin.set(pid, status=S.OPENING)
        await s.until(lambda: all(position(s.world, p).status is S.OPEN for p in (bad, missing, good)))
        broker = s.world.brokers["acc-1"]
        for pid in (bad, missing, good):
            ticket = position(s.world, pid).mt_ticket
            assert ticket is not None
            broker.execute_close(ticket, 0.1, None, "stop out")
        await s.wait(10)

    out = run_script(body)
    clean(out)
    for pid in (bad, missing):
        assert errors_about(out.world, pid), f"trigger failure of {pid} not said"
        assert [m for _t, level, m, ev in out.world.logs if level == "error" and pid in repr(ev)], pid
    assert out.world.cloud.actions[aid].status is A.EXECUTED
