"""Every GraphQL document the agent sends, with ONE full field set per type.

Why one full field set everywhere (CONTRACT.md, Surprise 1): a subscription payload carries only what the
mutation selected, so a mutation that leaves out ``userId`` reaches no owner-filtered subscriber, and one that
leaves out a non-null field breaks everyone's stream. Every mutation here selects the full set.

Enum values are Strings in ``ModelStringKeyConditionInput`` and in subscription filters, enums elsewhere
(Surprise 7): the variables built in client.py follow that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

USER_FIELDS: Final = "id email name role pcStatus isActive createdAt updatedAt"
ACCOUNT_FIELDS: Final = (
    "id userId brokerType accountNumber serverName displayName balance credit equity isActive lastUpdated "
    "createdAt updatedAt"
)
POSITION_FIELDS: Final = (
    "id userId accountId executionType status symbol volume entryPrice entryTime exitPrice exitTime exitReason "
    "trailWidth triggerActionIds mtTicket memo createdAt updatedAt"
)
ACTION_FIELDS: Final = "id userId accountId positionId triggerPositionId type status createdAt updatedAt"

# -- queries -------------------------------------------------------------------------------------------------

GET_POSITION: Final = f"query GetPosition($id: ID!) {{ getPosition(id: $id) {{ {POSITION_FIELDS} }} }}"
GET_ACTION: Final = f"query GetAction($id: ID!) {{ getAction(id: $id) {{ {ACTION_FIELDS} }} }}"
GET_ACCOUNT: Final = f"query GetAccount($id: ID!) {{ getAccount(id: $id) {{ {ACCOUNT_FIELDS} }} }}"
GET_USER: Final = f"query GetUser($id: ID!) {{ getUser(id: $id) {{ {USER_FIELDS} }} }}"

ACTIONS_BY_USER_AND_STATUS: Final = f"""
query ActionsByUserAndStatus($userId: ID!, $status: ModelStringKeyConditionInput, $limit: Int, $nextToken: String) {{
  getActionsByUserAndStatus(userId: $userId, status: $status, limit: $limit, nextToken: $nextToken) {{
    items {{ {ACTION_FIELDS} }} nextToken }} }}"""

POSITIONS_BY_USER_AND_STATUS: Final = f"""
query PositionsByUserAndStatus($userId: ID!,
    $statusUpdatedAt: ModelPositionByUserIdAndStatusCompositeKeyConditionInput,
    $filter: ModelPositionFilterInput, $limit: Int, $nextToken: String) {{
  getPositionsByUserAndStatus(userId: $userId, statusUpdatedAt: $statusUpdatedAt, filter: $filter,
      limit: $limit, nextToken: $nextToken) {{
    items {{ {POSITION_FIELDS} }} nextToken }} }}"""

ACCOUNTS_BY_USER: Final = f"""
query AccountsByUser($userId: ID!, $limit: Int, $nextToken: String) {{
  getAccountsByUser(userId: $userId, limit: $limit, nextToken: $nextToken) {{
    items {{ {ACCOUNT_FIELDS} }} nextToken }} }}"""

# -- mutations -----------------------------------------------------------------------------------------------

UPDATE_POSITION: Final = f"""
mutation UpdatePosition($input: UpdatePositionInput!, $condition: ModelPositionConditionInput) {{
  updatePosition(input: $input, condition: $condition) {{ {POSITION_FIELDS} }} }}"""

UPDATE_ACTION: Final = f"""
mutation UpdateAction($input: UpdateActionInput!, $condition: ModelActionConditionInput) {{
  updateAction(input: $input, condition: $condition) {{ {ACTION_FIELDS} }} }}"""

UPDATE_ACCOUNT: Final = f"""
mutation UpdateAccount($input: UpdateAccountInput!, $condition: ModelAccountConditionInput) {{
  updateAccount(input: $input, condition: $condition) {{ {ACCOUNT_FIELDS} }} }}"""

UPDATE_USER: Final = f"""
mutation UpdateUser($input: UpdateUserInput!, $condition: ModelUserConditionInput) {{
  updateUser(input: $input, condition: $condition) {{ {USER_FIELDS} }} }}"""

# -- subscriptions (all filtered on the caller's own userId: the form that works for owners and ADMIN) --------


@dataclass(frozen=True)
class SubscriptionDoc:
    field: str  # e.g. "onUpdateAction": the key of the payload in each data frame
    record_type: str  # "Action" | "Position"
    source: str  # "create" | "update"
    query: str


def _subscription(
    field: str, filter_type: str, fields: str, record_type: str, source: str
) -> SubscriptionDoc:
    query = f"subscription {field[0].upper()}{field[1:]}($filter: {filter_type}) {{ {field}(filter: $filter) {{ {fields} }} }}"
    return SubscriptionDoc(field, record_type, source, query)


SUBSCRIPTIONS: Final = (
    _subscription("onCreateAction", "ModelSubscriptionActionFilterInput", ACTION_FIELDS, "Action", "create"),
    _subscription("onUpdateAction", "ModelSubscriptionActionFilterInput", ACTION_FIELDS, "Action", "update"),
    _subscription(
        "onCreatePosition", "ModelSubscriptionPositionFilterInput", POSITION_FIELDS, "Position", "create"
    ),
    _subscription(
        "onUpdatePosition", "ModelSubscriptionPositionFilterInput", POSITION_FIELDS, "Position", "update"
    ),
)
