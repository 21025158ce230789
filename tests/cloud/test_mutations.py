"""Queries and conditional mutations against the sandbox: outcomes as values, retries bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import pytest_asyncio

from hedge_agent.cloud import CloudClient
from hedge_agent.cloud.retry import Backoff
from hedge_agent.domain.enums import ActionStatus, PCStatus, PositionStatus
from hedge_agent.domain.models import Action, Position
from hedge_agent.engine.outcomes import ConditionFailed, Failed, NotFound, Ok, Unauthorized
from hedge_agent.errors import IllegalTransition, RecordError

from .conftest import CREATE_ACCOUNT, appsync_config, create_action, create_position, data, signed_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUICK = Backoff(initial_s=0.01, factor=2.0, max_s=0.05, jitter=0.0)


@pytest_asyncio.fixture(loop_scope="session")
async def client_for(sandbox):
    made: list[CloudClient] = []

    async def make(username: str, **options) -> CloudClient:
        options.setdefault("request_backoff", QUICK)
        client = CloudClient(appsync_config(sandbox), await signed_in(sandbox, username), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def test_a_claim_is_won_once_and_lost_once(sandbox, client_for):
    pc_a, pc_b = await client_for("alice"), await client_for("alice")
    action = await create_action(sandbox, "alice")
    won = await pc_a.claim_action(action["id"])
    lost = await pc_b.claim_action(action["id"])
    assert (
        isinstance(won, Ok) and isinstance(won.record, Action) and won.record.status is ActionStatus.EXECUTING
    )
    assert isinstance(lost, ConditionFailed)
    assert "is EXECUTING, expected PENDING" in lost.message
    assert isinstance(lost.current, Action) and lost.current.status is ActionStatus.EXECUTING


async def test_finishing_an_action_needs_it_executing(sandbox, client_for):
    client = await client_for("alice")
    action = await create_action(sandbox, "alice")
    assert isinstance(await client.finish_action(action["id"], ActionStatus.EXECUTED), ConditionFailed)
    assert isinstance(await client.claim_action(action["id"]), Ok)
    done = await client.finish_action(action["id"], ActionStatus.FAILED)
    assert isinstance(done, Ok) and done.record.status is ActionStatus.FAILED
    with pytest.raises(ValueError, match="EXECUTED or FAILED"):
        await client.finish_action(action["id"], ActionStatus.PENDING)


async def test_a_fill_is_reported_with_the_full_record_back(sandbox, client_for):
    client = await client_for("alice")
    position = await create_position(sandbox, "alice", status="OPENING")
    at = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
    outcome = await client.update_position(
        position["id"],
        PositionStatus.OPENING,
        PositionStatus.OPEN,
        entry_price=151.234,
        entry_time=at,
        mt_ticket="778899",
    )
    assert isinstance(outcome, Ok) and isinstance(outcome.record, Position)
    p = outcome.record
    assert (p.status, p.entry_price, p.entry_time, p.mt_ticket) == (
        PositionStatus.OPEN,
        151.234,
        at,
        "778899",
    )
    assert p.user_id == sandbox.info.user("alice").sub and p.account_id == "acc-1"  # full field set
    closed = await client.update_position(p.id, PositionStatus.OPEN, PositionStatus.CLOSING)
    assert isinstance(closed, Ok)
    final = await client.update_position(
        p.id,
        PositionStatus.CLOSING,
        PositionStatus.CLOSED,
        exit_price=151.5,
        exit_time=at,
        exit_reason="trail",
    )
    assert isinstance(final, Ok) and final.record.exit_reason == "trail" and final.record.exit_price == 151.5


async def test_a_position_update_from_the_wrong_status_is_a_condition_failure_naming_the_actual_one(
    sandbox, client_for
):
    client = await client_for("alice")
    position = await create_position(sandbox, "alice", status="OPEN")
    outcome = await client.update_position(
        position["id"], PositionStatus.OPENING, PositionStatus.OPEN, mt_ticket="1"
    )
    assert isinstance(outcome, ConditionFailed) and "is OPEN, expected OPENING" in outcome.message


async def test_an_illegal_transition_is_refused_before_any_request(client_for):
    client = await client_for("alice")
    with pytest.raises(IllegalTransition):
        await client.update_position("p", PositionStatus.CLOSED, PositionStatus.OPEN)
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.update_position(
            "p", PositionStatus.OPENING, PositionStatus.OPEN, entry_time=datetime(2025, 1, 1)
        )
    with pytest.raises(ValueError, match="finite"):
        await client.update_position(
            "p", PositionStatus.OPENING, PositionStatus.OPEN, entry_price=float("nan")
        )


async def test_writing_someone_elses_record_is_unauthorized_and_a_missing_one_not_found(sandbox, client_for):
    bob = await client_for("bob")
    alices = await create_action(sandbox, "alice")
    denied = await bob.claim_action(alices["id"])
    assert isinstance(denied, Unauthorized)
    missing = await bob.claim_action("no-such-action")
    assert isinstance(missing, NotFound)


async def test_transient_failures_are_retried_and_then_reported_as_retryable(sandbox, client_for):
    client = await client_for("alice", request_attempts=3)
    action = await create_action(sandbox, "alice")
    sandbox.fail_next_mutations(2, error_type="DynamoDB:ProvisionedThroughputExceededException")
    assert isinstance(await client.claim_action(action["id"]), Ok)
    sandbox.fail_next_mutations(3)  # InternalFailure on every attempt
    outcome = await client.finish_action(action["id"], ActionStatus.EXECUTED)
    assert isinstance(outcome, Failed) and outcome.retryable and "3 attempts" in outcome.message
    assert isinstance(
        await client.finish_action(action["id"], ActionStatus.EXECUTED), Ok
    )  # nothing was written


async def test_a_write_whose_answer_was_lost_is_recognised_on_the_retry(sandbox, client_for):
    client = await client_for("alice", request_timeout_s=0.3)
    action = await create_action(sandbox, "alice")
    await client.claim_action(action["id"])
    sandbox.delay_next_mutations(
        1, 0.8, after_commit=True
    )  # written and published; the answer comes too late
    outcome = await client.finish_action(action["id"], ActionStatus.EXECUTED)
    assert isinstance(outcome, Ok) and outcome.record.status is ActionStatus.EXECUTED


async def test_account_balances_and_pc_status_are_written(sandbox, client_for):
    client = await client_for("alice")
    sub = sandbox.info.user("alice").sub
    account_input = {
        "userId": sub,
        "brokerType": "MT5",
        "accountNumber": "10001",
        "serverName": "Broker-Live01",
        "displayName": "Main",
        "balance": 1.0,
        "credit": 0.0,
        "equity": 1.0,
        "isActive": True,
        "lastUpdated": "2025-01-01T00:00:00.000Z",
    }
    account = data(await sandbox.graphql("alice", CREATE_ACCOUNT, {"input": account_input}), "createAccount")
    at = datetime(2025, 6, 1, tzinfo=UTC)
    outcome = await client.update_account(
        account["id"], balance=10_000.5, credit=100.0, equity=10_050.25, last_updated=at
    )
    assert isinstance(outcome, Ok)
    assert (
        outcome.record.balance,
        outcome.record.credit,
        outcome.record.equity,
        outcome.record.last_updated,
    ) == (
        10_000.5,
        100.0,
        10_050.25,
        at,
    )
    assert account["id"] in [a.id for a in await client.accounts()]
    online = await client.set_pc_status(PCStatus.ONLINE)
    assert isinstance(online, Ok) and online.record.pc_status is PCStatus.ONLINE and online.record.id == sub
    bob = await client_for("bob")
    denied = await bob.update_account(account["id"], balance=0, credit=0, equity=0, last_updated=at)
    assert isinstance(denied, Unauthorized), denied


async def test_queries_return_records_none_or_a_record_error(sandbox, client_for):
    client = await client_for("alice")
    position = await create_position(sandbox, "alice", status="OPEN")
    fetched = await client.get_position(position["id"])
    assert fetched is not None and fetched.status is PositionStatus.OPEN
    assert await client.get_position("no-such-position") is None
    assert position["id"] in [p.id for p in await client.positions_by_status(PositionStatus.OPEN)]
    assert position["id"] not in [p.id for p in await client.positions_by_status(PositionStatus.OPENING)]
    broken = await create_position(sandbox, "alice", status="OPEN", volume=0.0)
    with pytest.raises(RecordError) as info:
        await client.get_position(broken["id"])
    assert info.value.record_id == broken["id"] and info.value.field == "volume"
    action = await create_action(sandbox, "alice")
    assert action["id"] in [a.id for a in await client.actions_by_status(ActionStatus.PENDING)]
    assert (await client.get_action(action["id"])) is not None


async def test_an_unreachable_endpoint_is_a_retryable_failure_not_an_exception(sandbox):
    import socket

    from hedge_agent.config import AppSyncConfig

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nowhere = AppSyncConfig(graphql_url=f"http://127.0.0.1:{port}/graphql")
    client = CloudClient(
        nowhere, await signed_in(sandbox, "alice"), request_backoff=QUICK, request_attempts=2
    )
    try:
        outcome = await client.claim_action("a-1")
        assert isinstance(outcome, Failed) and outcome.retryable and "2 attempts" in outcome.message
    finally:
        await client.close()


async def test_a_request_the_server_cannot_validate_is_rejected_with_its_message(sandbox):
    from hedge_agent.cloud.graphql_http import GraphQLHttp, GraphQLRejected

    http = GraphQLHttp(sandbox.info.graphql_url, await signed_in(sandbox, "alice"))
    try:
        with pytest.raises(GraphQLRejected, match="noSuchField"):
            await http.execute("query { noSuchField }", {}, root="noSuchField")
    finally:
        await http.close()
