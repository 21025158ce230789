"""What the Amplify transformer generated for each @model of the seed schema (schema.graphql):
owner field, secondary indexes (with their query fields and sort keys) and @hasMany connections.

This is the sandbox's stand-in for the generated VTL resolvers; the GraphQL types themselves come
from the served schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ADMIN_GROUP = "ADMIN"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    query_field: str
    partition_key: str
    #: sort key fields; several fields are joined with "#" into one string key (Amplify composite keys)
    sort_key: tuple[str, ...] = ()
    #: argument of the query field that carries the sort key condition
    sort_argument: str | None = None

    def sort_value(self, item: Mapping[str, object]) -> object | None:
        """The item's sort key, or None when the item is not in this (sparse) index."""
        if not self.sort_key:
            return ""
        values = [item.get(name) for name in self.sort_key]
        if any(value is None for value in values):
            return None
        if len(values) == 1:
            return values[0]
        return "#".join(str(value) for value in values)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    owner_field: str
    indexes: tuple[IndexSpec, ...] = ()
    #: createdAt/updatedAt appear in the Create/Update inputs, so a client-supplied value wins
    explicit_timestamps: bool = False
    #: @hasMany field -> (related model, index of the related model holding this model's id)
    has_many: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def index(self, name: str) -> IndexSpec:
        return next(index for index in self.indexes if index.name == name)


MODELS: Mapping[str, ModelSpec] = MappingProxyType(
    {
        "User": ModelSpec(
            name="User",
            owner_field="id",
            indexes=(IndexSpec("byEmail", "usersByEmail", "email"),),
            has_many=MappingProxyType(
                {
                    "accounts": ("Account", "byUserId"),
                    "positions": ("Position", "byUserId"),
                    "actions": ("Action", "byUserId"),
                }
            ),
        ),
        "Account": ModelSpec(
            name="Account",
            owner_field="userId",
            indexes=(IndexSpec("byUserId", "getAccountsByUser", "userId"),),
        ),
        "Position": ModelSpec(
            name="Position",
            owner_field="userId",
            explicit_timestamps=True,
            indexes=(
                IndexSpec("byUserId", "getPositionsByUser", "userId"),
                IndexSpec(
                    "byUserIdAndStatus",
                    "getPositionsByUserAndStatus",
                    "userId",
                    ("status", "updatedAt"),
                    "statusUpdatedAt",
                ),
                IndexSpec(
                    "byUserIdAndTrailWidth",
                    "getPositionsByUserAndTrailWidth",
                    "userId",
                    ("trailWidth",),
                    "trailWidth",
                ),
                IndexSpec("byAccountId", "getPositionsByAccount", "accountId"),
            ),
        ),
        "Action": ModelSpec(
            name="Action",
            owner_field="userId",
            indexes=(
                IndexSpec("byUserId", "getActionsByUser", "userId"),
                IndexSpec("byUserIdAndStatus", "getActionsByUserAndStatus", "userId", ("status",), "status"),
                IndexSpec("byAccountId", "getActionsByAccount", "accountId"),
                IndexSpec("byPositionId", "getActionsByPosition", "positionId"),
                IndexSpec("byTriggerPositionId", "getActionsByTriggerPosition", "triggerPositionId"),
            ),
        ),
    }
)
