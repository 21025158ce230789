"""The subscription stream against the sandbox: live events, catch-up, ownership, reconnects."""

from __future__ import annotations

import asyncio

import pytest

from hedge_agent.cloud.retry import Backoff
from hedge_agent.domain.enums import ActionStatus, PositionStatus
from hedge_agent.domain.models import Action, Position
from hedge_agent.engine.events import BadRecord, CaughtUp, LinkState, RecordEvent

from .conftest import (
    create_action,
    create_position,
    set_action_status,
    set_position_status,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def caught_up(generation: int):
    return lambda e: isinstance(e, CaughtUp) and e.generation == generation


def record(record_id: str, source: str | None = None, status: str | None = None):
    def match(e):
        return (
            isinstance(e, RecordEvent)
            and e.record.id == record_id
            and (source is None or e.source == source)
            and (status is None or e.record.status.value == status)
        )

    return match


async def test_a_subscribed_client_receives_creates_and_updates_of_its_own_records(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    action = await create_action(sandbox, "alice")
    created = await alice.wait_for(record(action["id"], "create"))
    assert isinstance(created.record, Action) and created.record.status is ActionStatus.PENDING
    position = await create_position(sandbox, "alice")
    await set_position_status(sandbox, "alice", position["id"], "OPENING")
    updated = await alice.wait_for(record(position["id"], "update"))
    assert isinstance(updated.record, Position) and updated.record.status is PositionStatus.OPENING
    assert updated.received_at > created.received_at


async def test_the_link_reports_connecting_then_connected_then_caught_up(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    kinds = [e for e in alice.events if isinstance(e, LinkState | CaughtUp)]
    assert kinds[:3] == [LinkState("connecting"), LinkState("connected"), CaughtUp(1)]


async def test_catch_up_delivers_the_active_records_that_exist_before_connecting(sandbox, make_client):
    pending_action = await create_action(sandbox, "alice")
    executing_action = await create_action(sandbox, "alice", status="EXECUTING")
    done_action = await create_action(sandbox, "alice", status="EXECUTED")
    by_status = {
        s: await create_position(sandbox, "alice", status=s)
        for s in ("PENDING", "OPENING", "OPEN", "CLOSING", "CLOSED")
    }

    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))

    def caught(record_id: str) -> list[RecordEvent]:
        return [e for e in alice.records(record_id) if e.source == "catchup"]

    assert [e.record.status for e in caught(pending_action["id"])] == [ActionStatus.PENDING]
    assert [e.record.status for e in caught(executing_action["id"])] == [ActionStatus.EXECUTING]
    assert caught(done_action["id"]) == []
    # OPEN is a prefix of OPENING: each position still arrives exactly once, with its own status
    for status in ("OPENING", "OPEN", "CLOSING"):
        assert [e.record.status.value for e in caught(by_status[status]["id"])] == [status]
    assert caught(by_status["PENDING"]["id"]) == []
    assert caught(by_status["CLOSED"]["id"]) == []
    # catch-up records come before the CaughtUp marker
    marker = alice.events.index(CaughtUp(1))
    assert alice.events.index(caught(pending_action["id"])[0]) < marker


async def test_catch_up_follows_next_tokens_across_pages(sandbox, make_client):
    ids = {(await create_position(sandbox, "bob", status="OPEN"))["id"] for _ in range(7)}
    bob = await make_client(sandbox, "bob", page_size=2)
    await bob.wait_for(caught_up(1))
    got = [e.record.id for e in bob.events if isinstance(e, RecordEvent) and e.record.id in ids]
    assert sorted(got) == sorted(ids)


async def test_another_users_records_are_never_delivered(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    bobs = await create_action(sandbox, "bob")
    bobs_position = await create_position(sandbox, "bob")
    await set_position_status(sandbox, "bob", bobs_position["id"], "OPENING")
    mine = await create_action(sandbox, "alice")
    await alice.wait_for(record(mine["id"]))  # published after bob's: had bob's come, it would be here
    await asyncio.sleep(0.1)
    assert alice.records(bobs["id"]) == [] and alice.records(bobs_position["id"]) == []
    assert all(
        e.record.user_id == sandbox.info.user("alice").sub for e in alice.events if isinstance(e, RecordEvent)
    )


async def test_an_admin_agent_gets_only_its_own_records_and_an_owner_gets_what_an_admin_made_for_it(
    sandbox, make_client
):
    carol = await make_client(sandbox, "carol")  # group ADMIN: may read everything
    alice = await make_client(sandbox, "alice")
    await carol.wait_for(caught_up(1))
    await alice.wait_for(caught_up(1))
    for_alice = await create_action(sandbox, "carol", owner="alice")  # ADMIN may set any userId
    own = await create_action(sandbox, "carol")
    await alice.wait_for(record(for_alice["id"], "create"))
    await carol.wait_for(record(own["id"], "create"))
    await asyncio.sleep(0.1)
    assert carol.records(for_alice["id"]) == []
    assert alice.records(own["id"]) == []


async def test_after_a_dropped_socket_catch_up_delivers_what_was_missed_exactly_once(sandbox, make_client):
    slow = Backoff(initial_s=0.6, factor=1.0, max_s=0.6, jitter=0.0)  # a gap long enough to miss events in
    alice = await make_client(sandbox, "alice", link_backoff=slow)
    await alice.wait_for(caught_up(1))
    before = await create_action(sandbox, "alice")
    to_update = await create_action(sandbox, "alice")
    await alice.wait_for(record(to_update["id"], "create"))

    assert await sandbox.drop_sockets() >= 1
    await alice.wait_for(
        lambda e: e == LinkState("disconnected", e.detail) if isinstance(e, LinkState) else False
    )
    missed_create = await create_action(sandbox, "alice")
    missed_update = await set_action_status(sandbox, "alice", to_update["id"], "EXECUTING")
    missed_position = await create_position(sandbox, "alice", status="OPENING")

    await alice.wait_for(caught_up(2), timeout=5)
    assert [e.source for e in alice.records(missed_create["id"])] == ["catchup"]
    assert [e.record.status for e in alice.records(to_update["id"])] == [
        ActionStatus.PENDING,
        ActionStatus.EXECUTING,
    ]
    assert (
        alice.records(to_update["id"])[-1].record.updated_at.isoformat()[:19]
        == missed_update["updatedAt"][:19]
    )
    assert [e.source for e in alice.records(missed_position["id"])] == ["catchup"]
    assert [e.source for e in alice.records(before["id"])] == ["create"]  # the catch-up copy was a duplicate
    assert alice.client.stats.duplicates >= 1

    after = await create_action(sandbox, "alice")  # and the stream is live again
    await alice.wait_for(record(after["id"], "create"))


async def test_a_restarted_server_is_reconnected_to(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    await sandbox.restart()
    await alice.wait_for(caught_up(2), timeout=10)
    action = await create_action(sandbox, "alice")
    await alice.wait_for(record(action["id"], "create"))


async def test_recycle_replaces_the_socket_without_losing_events(sandbox, make_client):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    first = alice.client.session
    created = []
    for _ in range(3):
        await alice.client.recycle()
        created.append(await create_action(sandbox, "alice"))
    await alice.wait_for(caught_up(2))
    for action in created:
        await alice.wait_for(record(action["id"]))
    await asyncio.sleep(0.2)
    assert all(len(alice.records(action["id"])) == 1 for action in created)
    assert alice.client.session is not first
    assert LinkState("disconnected") not in alice.events  # make before break: never offline


async def test_a_record_that_breaks_the_domain_rules_is_reported_with_its_id_and_field_and_the_stream_goes_on(
    sandbox, make_client
):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    bad_before = alice.client.stats.bad  # the shared sandbox may hold other tests' broken records
    broken = await create_position(sandbox, "carol", owner="alice", volume=0.0)  # an ADMIN UI bug: volume 0
    bad = await alice.wait_for(lambda e: isinstance(e, BadRecord) and e.source == "create")
    assert (bad.error.record_type, bad.error.record_id, bad.error.field, bad.source) == (
        "Position",
        broken["id"],
        "volume",
        "create",
    )
    assert broken["id"] in str(bad.error) and "volume" in str(bad.error)
    after = await create_action(sandbox, "alice")
    await alice.wait_for(record(after["id"], "create"))
    assert alice.records(broken["id"]) == []
    assert (
        alice.client.stats.bad == bad_before + 1
    )  # the stored record is the same: no re-read, no second report


async def test_a_thin_mutation_elsewhere_is_reported_by_field_and_its_change_is_read_back(
    sandbox, make_client
):
    alice = await make_client(sandbox, "alice")
    await alice.wait_for(caught_up(1))
    position = await create_position(sandbox, "alice", status="OPENING")
    await alice.wait_for(record(position["id"], "create"))
    bad_before = alice.client.stats.bad
    # an admin UI selecting too few fields: subscribers get nulls for non-null fields, and null
    # propagation leaves no id in the frame
    thin = """mutation Thin($input: UpdatePositionInput!) { updatePosition(input: $input) { id userId status } }"""
    body = await sandbox.graphql("carol", thin, {"input": {"id": position["id"], "status": "OPEN"}})
    assert not body.get("errors"), body

    bad = await alice.wait_for(lambda e: isinstance(e, BadRecord) and e.source == "update")
    assert bad.error.record_type == "Position"
    assert bad.error.field == "accountId" and "accountId" in str(bad.error)
    # the change is not lost: the active positions are read back
    reread = await alice.wait_for(record(position["id"], "catchup", "OPEN"))
    assert isinstance(reread.record, Position) and reread.record.account_id == "acc-1"

    after = await create_action(sandbox, "alice")
    await alice.wait_for(record(after["id"], "create"))
    assert alice.client.stats.bad == bad_before + 1 + len(
        [
            e
            for e in alice.events[alice.events.index(bad) :]
            if isinstance(e, BadRecord) and e.source == "catchup"
        ]
    )


async def test_a_malformed_stored_record_found_by_catch_up_is_reported_and_the_others_delivered(
    sandbox, make_client
):
    good = await create_position(sandbox, "bob", status="CLOSING")
    broken = await create_position(
        sandbox, "bob", status="CLOSING", symbol="USDJPY", volume=0.0
    )  # volume must be > 0
    bob = await make_client(sandbox, "bob")
    await bob.wait_for(caught_up(1))
    bad = [e for e in bob.events if isinstance(e, BadRecord)]
    assert [(b.error.record_id, b.error.field, b.source) for b in bad] == [
        (broken["id"], "volume", "catchup")
    ]
    assert [e.source for e in bob.records(good["id"])] == ["catchup"]
