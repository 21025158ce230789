"""The sandbox's stand-in for the Amplify-generated resolvers: owner + ADMIN auth, DynamoDB conditions,
index queries with key conditions, pagination, timestamps, and publishing what mutations change.

Resolvers find their state through ``info.context`` (a ``RequestContext``), so one built schema serves
every sandbox in the process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)

from .appsync_errors import (
    DYNAMODB_VALIDATION,
    INVALID_ARGUMENTS,
    AppSyncError,
    conditional_check_failed,
    unauthorized,
)
from .auth import Caller
from .expressions import condition_holds, key_condition_holds, validate
from .faults import Faults, MutationFault
from .model_specs import MODELS, IndexSpec, ModelSpec
from .pubsub import DELIVER, SubscribeContext
from .schema import SandboxSchema, load_schema
from .stats import SandboxStats
from .store import Document, Store

if TYPE_CHECKING:
    Info = GraphQLResolveInfo[Any]  # generic from graphql-core 3.3 on
else:
    Info = GraphQLResolveInfo

DEFAULT_LIMIT = 100  # the Amplify resolvers' default page size
Publish = Callable[[str, Mapping[str, Any]], None]


def now_iso() -> str:
    """``$util.time.nowISO8601()``: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class RequestContext:
    caller: Caller
    plane: DataPlane


def _context(info: Info) -> RequestContext:
    context = info.context
    assert isinstance(context, RequestContext)
    return context


def selected_fields(info: Info) -> set[str]:
    """Field names the current field's selection set asks for (through fragments, aliases ignored)."""
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = info.fragments.get(selection.name.value)
                walk(fragment.selection_set if fragment else None)

    for node in info.field_nodes:
        walk(node.selection_set)
    names.discard("__typename")
    return names


def _validated(*conditions: Mapping[str, Any] | None) -> None:
    """Malformed operands are DynamoDB's ValidationException, before anything is read or written."""
    for condition in conditions:
        try:
            validate(condition)
        except ValueError as exc:
            raise AppSyncError(DYNAMODB_VALIDATION, str(exc)) from exc


def _encode_token(query: str, key: list[Any]) -> str:
    raw = json.dumps({"q": query, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(query: str, token: str) -> list[Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] != query or not isinstance(data["k"], list):
            raise ValueError("token of another query")
        return list(data["k"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AppSyncError(DYNAMODB_VALIDATION, "The provided starting key is invalid") from exc


Entry = tuple[list[Any], Document]  # (sort key incl. tie-breaker, item)


def _page(
    query: str,
    entries: list[Entry],
    *,
    limit: int | None,
    next_token: str | None,
    keep: Callable[[Document], bool],
    descending: bool = False,
) -> dict[str, Any]:
    """DynamoDB paging: read ``limit`` items after the token, *then* filter them."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if limit < 1:
        raise AppSyncError(DYNAMODB_VALIDATION, f"limit must be at least 1, got {limit}")
    start = 0
    if next_token:
        after = _decode_token(query, next_token)
        # resume after the last evaluated key, even if that item has since gone
        start = next(
            (i for i, (key, _) in enumerate(entries) if (key < after if descending else key > after)),
            len(entries),
        )
    window = entries[start : start + limit]
    # As DynamoDB: a read that stopped at the limit has a LastEvaluatedKey, even if nothing follows.
    token = _encode_token(query, window[-1][0]) if len(window) == limit else None
    return {"items": [item for _, item in window if keep(item)], "nextToken": token}


def _invalid_key_condition(field_name: str, argument: str, problem: str) -> AppSyncError:
    return AppSyncError(INVALID_ARGUMENTS, f"{field_name}: invalid key condition `{argument}`: {problem}")


def _composite_key(index: IndexSpec, part: Any, *, field_name: str) -> Any:
    """A composite key condition operand ({status, updatedAt}) as the stored "status#updatedAt" prefix.

    The key is one string, so only a leading run of its fields can be matched: a field without the ones
    before it (``{updatedAt}`` without ``status``) is refused, as AppSync refuses it, not matched as if
    it came first."""
    if not isinstance(part, Mapping):
        return part
    given = [name for name in index.sort_key if part.get(name) is not None]
    leading = list(index.sort_key[: len(given)])
    if given != leading:
        missing = next(name for name in index.sort_key if name not in given)
        raise _invalid_key_condition(
            field_name,
            str(index.sort_argument),
            f"{given[-1]} needs {missing} before it (the sort key is {'#'.join(index.sort_key)})",
        )
    return "#".join(str(part[name]) for name in given)


def _key_condition(
    index: IndexSpec, condition: Mapping[str, Any] | None, *, field_name: str
) -> dict[str, Any] | None:
    """The sort key condition, checked as DynamoDB and the generated resolvers check it: one operator
    (a KeyConditionExpression holds one condition per key), and composite parts in key order."""
    if not condition:
        return None
    given = {operator: operand for operator, operand in condition.items() if operand is not None}
    if len(given) > 1:
        raise _invalid_key_condition(
            field_name,
            str(index.sort_argument),
            f"one operator per key, got {', '.join(sorted(given))} (use between for a range)",
        )
    if len(index.sort_key) < 2:
        return given or None
    prepared: dict[str, Any] = {}
    for operator, operand in given.items():
        if operator == "between":
            prepared[operator] = [_composite_key(index, part, field_name=field_name) for part in operand]
        else:
            prepared[operator] = _composite_key(index, operand, field_name=field_name)
    return prepared or None


class DataPlane:
    def __init__(self, *, store: Store, faults: Faults, stats: SandboxStats, publish: Publish) -> None:
        self.store = store
        self.faults = faults
        self.stats = stats
        self._publish = publish

    # -- auth ------------------------------------------------------------------------------------

    @staticmethod
    def _owns(caller: Caller, model: ModelSpec, item: Mapping[str, Any]) -> bool:
        return caller.is_admin or item.get(model.owner_field) == caller.sub

    def _visible(self, caller: Caller, model: ModelSpec) -> Callable[[Document], bool]:
        return lambda item: self._owns(caller, model, item)

    # -- queries ---------------------------------------------------------------------------------

    def get(self, model: ModelSpec, info: Info, record_id: str) -> Document | None:
        caller = _context(info).caller
        item = self.store.get(model.name, record_id)
        if item is None:
            return None
        if not self._owns(caller, model, item):
            raise unauthorized(info.field_name, info.parent_type.name)
        return item

    def scan(self, model: ModelSpec, info: Info, args: Mapping[str, Any]) -> dict[str, Any]:
        caller = _context(info).caller
        flt = args.get("filter")
        _validated(flt)
        entries: list[Entry] = [([seq], item) for seq, item in self.store.scan(model.name)]
        visible = self._visible(caller, model)
        return _page(
            info.field_name,
            entries,
            limit=args.get("limit"),
            next_token=args.get("nextToken"),
            keep=lambda item: visible(item) and condition_holds(flt, item),
        )

    def query(
        self,
        model: ModelSpec,
        index: IndexSpec,
        info: Info,
        args: Mapping[str, Any],
        *,
        partition_value: Any,
    ) -> dict[str, Any]:
        caller = _context(info).caller
        if index.partition_key == model.owner_field and not caller.is_admin and partition_value != caller.sub:
            raise unauthorized(info.field_name, info.parent_type.name)
        condition = _key_condition(
            index, args.get(index.sort_argument) if index.sort_argument else None, field_name=info.field_name
        )
        _validated(args.get("filter"), {"key": condition} if condition else None)
        entries: list[Entry] = []
        for _seq, item in self.store.query(model.name, index.partition_key, partition_value):
            sort_value = index.sort_value(item)
            if sort_value is None or not key_condition_holds(condition, sort_value):
                continue
            # DynamoDB returns a query in sort key order; it promises no order among equal sort keys (or in
            # an index without one), so the sandbox breaks ties by the table key, never by insertion
            entries.append(([sort_value, item["id"]], item))
        descending = args.get("sortDirection") == "DESC"
        entries.sort(key=lambda entry: entry[0], reverse=descending)
        flt = args.get("filter")
        visible = self._visible(caller, model)
        return _page(
            f"{model.name}.{index.name}.{partition_value}",
            entries,
            limit=args.get("limit"),
            next_token=args.get("nextToken"),
            keep=lambda item: visible(item) and condition_holds(flt, item),
            descending=descending,
        )

    # -- mutations -------------------------------------------------------------------------------

    async def _enter_mutation(self, condition: Mapping[str, Any] | None) -> MutationFault:
        _validated(condition)
        fault = self.faults.take_mutation_fault()
        if fault.delay_s and not fault.delay_after_commit:
            await asyncio.sleep(fault.delay_s)
        if fault.error is not None:
            raise AppSyncError(*fault.error)
        return fault

    async def _committed(self, info: Info, item: Document, fault: MutationFault) -> Document:
        self.stats.mutations += 1
        selected = selected_fields(info)
        self._publish(info.field_name, {name: item.get(name) for name in selected})
        if fault.delay_s and fault.delay_after_commit:
            await asyncio.sleep(fault.delay_s)
        return item

    @staticmethod
    def _check_composite_keys(model: ModelSpec, changes: Mapping[str, Any]) -> None:
        for index in model.indexes:
            if len(index.sort_key) < 2:
                continue
            missing = [name for name in index.sort_key if name not in changes]
            if missing and len(missing) < len(index.sort_key):
                raise AppSyncError(
                    None,
                    f"When updating any part of the composite sort key for @index '{index.name}', "
                    f"you must provide all fields for the key. Missing key: '{missing[0]}'.",
                )

    def _existing_for_write(
        self, model: ModelSpec, info: Info, caller: Caller, record_id: str
    ) -> Document | None:
        """The record an update or delete acts on, after the owner check of the generated resolvers: they
        read the item first and refuse a caller who does not own it, and a missing item is owned by nobody,
        so a missing record is ``Unauthorized`` too (an ADMIN passes by group and then fails the write's
        key-exists condition: ConditionalCheckFailed)."""
        existing = self.store.get(model.name, record_id)
        if caller.is_admin:
            return existing
        if existing is None or not self._owns(caller, model, existing):
            raise unauthorized(info.field_name, info.parent_type.name)
        return existing

    async def create(self, model: ModelSpec, info: Info, data: Mapping[str, Any], condition: Any) -> Document:
        fault = await self._enter_mutation(condition)
        caller = _context(info).caller
        item: Document = {name: value for name, value in data.items() if value is not None}
        if model.owner_field == "id" and "id" not in item and not caller.is_admin:
            item["id"] = caller.sub  # the owner rule fills an omitted owner field (User.id)
        if not caller.is_admin and item.get(model.owner_field) != caller.sub:
            raise unauthorized(info.field_name, info.parent_type.name)
        item.setdefault("id", str(uuid.uuid4()))
        now = now_iso()
        if model.explicit_timestamps:
            item.setdefault("createdAt", now)
            item.setdefault("updatedAt", now)
        else:
            item["createdAt"] = item["updatedAt"] = now
        if self.store.get(model.name, item["id"]) is not None or not condition_holds(condition, {}):
            raise conditional_check_failed()
        self.store.put(model.name, item)
        return await self._committed(info, item, fault)

    async def update(self, model: ModelSpec, info: Info, data: Mapping[str, Any], condition: Any) -> Document:
        fault = await self._enter_mutation(condition)
        caller = _context(info).caller
        existing = self._existing_for_write(model, info, caller, data["id"])
        changes = {name: value for name, value in data.items() if name != "id"}
        if not model.explicit_timestamps or changes.get("updatedAt") is None:
            changes["updatedAt"] = now_iso()
        self._check_composite_keys(model, changes)
        if existing is None or not condition_holds(condition, existing):
            raise conditional_check_failed()
        item = dict(existing)
        for name, value in changes.items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = value
        self.store.put(model.name, item)
        return await self._committed(info, item, fault)

    async def delete(self, model: ModelSpec, info: Info, data: Mapping[str, Any], condition: Any) -> Document:
        fault = await self._enter_mutation(condition)
        caller = _context(info).caller
        existing = self._existing_for_write(model, info, caller, data["id"])
        if existing is None or not condition_holds(condition, existing):
            raise conditional_check_failed()
        self.store.delete(model.name, existing["id"])
        return await self._committed(info, existing, fault)


# -- wiring the resolvers into the schema --------------------------------------------------------


def _get_resolver(model: ModelSpec) -> Any:
    def resolve(_root: Any, info: Info, id: str) -> Document | None:
        return _context(info).plane.get(model, info, id)

    return resolve


def _scan_resolver(model: ModelSpec) -> Any:
    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        return _context(info).plane.scan(model, info, args)

    return resolve


def _index_resolver(model: ModelSpec, index: IndexSpec) -> Any:
    def resolve(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
        return _context(info).plane.query(model, index, info, args, partition_value=args[index.partition_key])

    return resolve


def _has_many_resolver(related: ModelSpec, index: IndexSpec, parent_key: str) -> Any:
    def resolve(root: Any, info: Info, **args: Any) -> Any:
        if info.context is DELIVER or not isinstance(root, Mapping):
            return None  # in a subscription payload: AppSync publishes only what the mutation returned
        return _context(info).plane.query(related, index, info, args, partition_value=root.get(parent_key))

    return resolve


def _mutation_resolver(model: ModelSpec, verb: str) -> Any:
    async def resolve(_root: Any, info: Info, input: Mapping[str, Any], condition: Any = None) -> Any:
        plane = _context(info).plane
        try:
            return await getattr(plane, verb)(model, info, input, condition)
        except AppSyncError:
            plane.stats.mutations_failed += 1
            raise

    return resolve


def _subscription_resolver(_root: Any, info: Info, **args: Any) -> Any:
    context = info.context
    if isinstance(context, SubscribeContext):
        context.accept(info.field_name, args)
        return None
    return _root.get(info.field_name) if isinstance(_root, Mapping) else None


def _plural(name: str) -> str:
    return f"{name}s"


def install_resolvers(served: SandboxSchema) -> None:
    schema = served.schema
    assert schema.query_type is not None and schema.mutation_type is not None
    queries, mutations = schema.query_type.fields, schema.mutation_type.fields
    for model in MODELS.values():
        queries[f"get{model.name}"].resolve = _get_resolver(model)
        queries[f"list{_plural(model.name)}"].resolve = _scan_resolver(model)
        for index in model.indexes:
            queries[index.query_field].resolve = _index_resolver(model, index)
        for verb in ("create", "update", "delete"):
            mutations[f"{verb}{model.name}"].resolve = _mutation_resolver(model, verb)
        for field_name, (related_name, index_name) in model.has_many.items():
            related = MODELS[related_name]
            parent_type = schema.type_map[model.name]
            parent_type.fields[field_name].resolve = _has_many_resolver(  # type: ignore[attr-defined]
                related, related.index(index_name), "id"
            )
    if schema.subscription_type is not None:
        for field in schema.subscription_type.fields.values():
            field.resolve = _subscription_resolver


@cache
def served_schema() -> SandboxSchema:
    """The packaged AppSync schema with the sandbox's resolvers (built once per process)."""
    served = load_schema()
    install_resolvers(served)
    return served
