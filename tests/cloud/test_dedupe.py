from datetime import UTC, datetime, timedelta

from hedge_agent.cloud.dedupe import Deduper, Verdict
from hedge_agent.domain.enums import ActionStatus, ActionType
from hedge_agent.domain.models import Action

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def action(id: str = "a1", status: ActionStatus = ActionStatus.PENDING, at: datetime | None = T0) -> Action:
    return Action(
        id=id,
        user_id="u",
        account_id="acc",
        position_id="p",
        type=ActionType.ENTRY,
        status=status,
        updated_at=at,
    )


def test_a_version_seen_twice_is_delivered_once():
    d = Deduper()
    assert d.admit(action()) is Verdict.NEW
    assert d.admit(action()) is Verdict.DUPLICATE


def test_a_newer_version_is_delivered_and_an_older_one_after_it_is_dropped():
    d = Deduper()
    assert d.admit(action(status=ActionStatus.EXECUTING, at=T0 + timedelta(seconds=1))) is Verdict.NEW
    assert d.admit(action(status=ActionStatus.PENDING, at=T0)) is Verdict.STALE
    assert d.admit(action(status=ActionStatus.EXECUTED, at=T0 + timedelta(seconds=2))) is Verdict.NEW


def test_a_different_content_with_the_same_timestamp_is_delivered():
    d = Deduper()
    d.admit(action(status=ActionStatus.PENDING))
    assert d.admit(action(status=ActionStatus.EXECUTING)) is Verdict.NEW


def test_records_without_timestamps_are_compared_by_content():
    d = Deduper()
    assert d.admit(action(at=None)) is Verdict.NEW
    assert d.admit(action(at=None)) is Verdict.DUPLICATE
    assert d.admit(action(status=ActionStatus.EXECUTING, at=None)) is Verdict.NEW


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_ids():
    d = Deduper(capacity=3)
    for i in range(10):
        d.admit(action(id=f"a{i}"))
    assert len(d) == 3
    assert d.admit(action(id="a9")) is Verdict.DUPLICATE
    assert d.admit(action(id="a0")) is Verdict.NEW  # forgotten, so delivered again
