"""Subscriptions: who gets which mutation event, and what the frame says.

The event is the mutation's result *trimmed to the mutation's selection set*; AppSync knows nothing
else. A subscriber gets it when, all together:
- its field @aws_subscribe's to that mutation;
- its plain arguments (the owner argument ``userId``/``id``) equal the payload's fields;
- owner auth holds: ADMIN sees all; anyone else with no owner argument gets ``owner eq <sub>`` added;
- its ``filter:`` (enhanced filter) holds on the payload.
Then the subscription's own selection set runs over the payload; a non-null field the mutation did
not select makes a data frame with ``errors``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLObjectType, execute, get_named_type

from .appsync_errors import AppSyncError, format_errors, unauthorized
from .auth import Caller
from .expressions import subscription_filter_holds, validate
from .model_specs import MODELS, ModelSpec
from .schema import SandboxSchema

Frame = dict[str, Any]


def model_of_subscription(schema: SandboxSchema, field_name: str) -> ModelSpec:
    subscription_type = schema.schema.subscription_type
    assert subscription_type is not None
    return_type = get_named_type(subscription_type.fields[field_name].type)
    assert isinstance(return_type, GraphQLObjectType)
    return MODELS[return_type.name]


@dataclass(frozen=True)
class Accepted:
    field: str
    model: ModelSpec
    owner_argument: str | None
    plain_arguments: Mapping[str, Any]
    filter: Mapping[str, Any] | None


class SubscribeContext:
    """Execution context while a ``start`` is checked: the Subscription field resolver calls ``accept``."""

    def __init__(self, schema: SandboxSchema, caller: Caller) -> None:
        self.schema = schema
        self.caller = caller
        self.accepted: Accepted | None = None

    def accept(self, field_name: str, arguments: Mapping[str, Any]) -> None:
        model = model_of_subscription(self.schema, field_name)
        owner = arguments.get(model.owner_field)
        if owner is not None and not self.caller.is_admin and owner != self.caller.sub:
            raise unauthorized(field_name, "Subscription")
        try:
            validate(arguments.get("filter"))
        except ValueError as exc:
            raise AppSyncError("ValidationError", f"filter: {exc}") from exc
        self.accepted = Accepted(
            field=field_name,
            model=model,
            owner_argument=None if owner is None else str(owner),
            plain_arguments={
                name: value
                for name, value in arguments.items()
                if name not in ("filter", model.owner_field) and value is not None
            },
            filter=arguments.get("filter"),
        )


class DeliverContext:
    """Execution context while a subscription's selection set runs over a payload."""


DELIVER = DeliverContext()


@dataclass(eq=False)
class LiveSubscription:
    id: str
    caller: Caller
    accepted: Accepted
    document: DocumentNode
    variables: Mapping[str, Any] | None
    operation_name: str | None
    send: Callable[[Frame], None]
    serial: int = field(default_factory=itertools.count().__next__)

    @property
    def field(self) -> str:
        return self.accepted.field

    def wants(self, payload: Mapping[str, Any]) -> bool:
        accepted = self.accepted
        owner_field = accepted.model.owner_field
        if accepted.owner_argument is not None and payload.get(owner_field) != accepted.owner_argument:
            return False
        for name, value in accepted.plain_arguments.items():
            if payload.get(name) != value:
                return False
        if (
            not self.caller.is_admin
            and accepted.owner_argument is None
            and payload.get(owner_field) != self.caller.sub
        ):
            return False
        return subscription_filter_holds(accepted.filter, payload)


class Broker:
    def __init__(self, schema: SandboxSchema) -> None:
        self._schema = schema
        self._by_field: dict[str, dict[int, LiveSubscription]] = {}

    def add(self, subscription: LiveSubscription) -> None:
        self._by_field.setdefault(subscription.field, {})[subscription.serial] = subscription

    def remove(self, subscription: LiveSubscription) -> None:
        self._by_field.get(subscription.field, {}).pop(subscription.serial, None)

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self._by_field.values())

    def publish(self, mutation_field: str, payload: Mapping[str, Any]) -> int:
        """Send ``payload`` to every subscriber that wants it; returns how many got a frame."""
        delivered = 0
        # subscribers with the same document and variables get the same body: render it once
        rendered: dict[tuple[int, str, str | None], dict[str, Any]] = {}
        for field_name in self._schema.subscriptions_by_mutation.get(mutation_field, ()):
            for subscription in list(self._by_field.get(field_name, {}).values()):
                if not subscription.wants(payload):
                    continue
                key = (
                    id(subscription.document),
                    json.dumps(subscription.variables, sort_keys=True, default=str),
                    subscription.operation_name,
                )
                body = rendered.get(key)
                if body is None:
                    body = rendered[key] = self.render(subscription, payload)
                subscription.send({"id": subscription.id, "type": "data", "payload": body})
                delivered += 1
        return delivered

    def render(self, subscription: LiveSubscription, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The data frame's payload: the subscription's selection set run over the event."""
        result = execute(
            self._schema.schema,
            subscription.document,
            root_value={subscription.field: dict(payload)},
            context_value=DELIVER,
            variable_values=dict(subscription.variables or {}),
            operation_name=subscription.operation_name,
        )
        assert isinstance(result, ExecutionResult), "delivery resolvers are synchronous"
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(list(result.errors))
        return body
