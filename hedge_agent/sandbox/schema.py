"""The schema AppSync serves, made buildable by graphql-core.

AppSync's SDL uses scalars (``AWSDateTime`` ...) and directives (``@aws_subscribe`` ...) that AppSync
declares implicitly. This module declares whichever of them the file does not, gives the scalars
AppSync's input validation, and reads ``@aws_subscribe`` into a mutation -> subscriptions map.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    ListValueNode,
    StringValueNode,
    ValueNode,
    build_ast_schema,
    parse,
    validate,
)
from graphql.language import DirectiveDefinitionNode, TypeDefinitionNode

SCHEMA_FILE = "appsync-schema.graphql"

# What AppSync declares implicitly. Only the definitions the schema file lacks are added.
_PRELUDE = """
scalar AWSDate
scalar AWSTime
scalar AWSDateTime
scalar AWSTimestamp
scalar AWSEmail
scalar AWSJSON
scalar AWSURL
scalar AWSPhone
scalar AWSIPAddress
directive @aws_subscribe(mutations: [String]) on FIELD_DEFINITION
directive @aws_publish(subscriptions: [String]) on FIELD_DEFINITION
directive @aws_auth(cognito_groups: [String]) on FIELD_DEFINITION
directive @aws_cognito_user_pools(cognito_groups: [String]) on OBJECT | FIELD_DEFINITION
directive @aws_iam on OBJECT | FIELD_DEFINITION
directive @aws_oidc on OBJECT | FIELD_DEFINITION
directive @aws_api_key on OBJECT | FIELD_DEFINITION
directive @aws_lambda on OBJECT | FIELD_DEFINITION
"""

_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
_ZONE = r"(?:Z|[+-]\d{2}:\d{2}(?::\d{2})?)"
_PATTERNS: dict[str, re.Pattern[str]] = {
    # AppSync requires the zone designator on AWSDateTime.
    "AWSDateTime": re.compile(rf"{_DATE}T{_TIME}{_ZONE}"),
    "AWSDate": re.compile(rf"{_DATE}{_ZONE}?"),
    "AWSTime": re.compile(rf"{_TIME}{_ZONE}?"),
    "AWSEmail": re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),
    "AWSURL": re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+"),
    "AWSPhone": re.compile(r"\+?[0-9 ()-]{3,}"),
    "AWSIPAddress": re.compile(r"[0-9A-Fa-f.:]+(?:/\d{1,3})?"),
}


def _string_scalar(name: str) -> tuple[Any, Any]:
    pattern = _PATTERNS[name]

    def parse_value(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise GraphQLError(f"Can't serialize value: {name} expects a valid {name} string, got {value!r}")
        if name == "AWSDateTime":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise GraphQLError(f"Can't serialize value: {value!r} is not a valid {name}") from exc
        return value

    def parse_literal(node: ValueNode, _variables: Any = None) -> str:
        if not isinstance(node, StringValueNode):
            raise GraphQLError(f"{name} literals must be strings")
        return parse_value(node.value)

    return parse_value, parse_literal


def _json_scalar() -> tuple[Any, Any]:
    def parse_value(value: Any) -> str:
        if not isinstance(value, str):
            raise GraphQLError(f"AWSJSON expects a JSON document in a string, got {type(value).__name__}")
        try:
            json.loads(value)
        except ValueError as exc:
            raise GraphQLError(f"AWSJSON value is not valid JSON: {exc}") from exc
        return value

    def parse_literal(node: ValueNode, _variables: Any = None) -> str:
        if not isinstance(node, StringValueNode):
            raise GraphQLError("AWSJSON literals must be strings")
        return parse_value(node.value)

    return parse_value, parse_literal


def _timestamp_scalar() -> tuple[Any, Any]:
    def parse_value(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GraphQLError(f"AWSTimestamp expects an integer number of seconds, got {value!r}")
        return value

    def parse_literal(node: ValueNode, _variables: Any = None) -> int:
        raw = getattr(node, "value", None)
        try:
            return parse_value(int(str(raw)))
        except ValueError as exc:
            raise GraphQLError(f"AWSTimestamp literal {raw!r} is not an integer") from exc

    return parse_value, parse_literal


def _install_scalars(schema: GraphQLSchema) -> None:
    for name, type_ in schema.type_map.items():
        if not isinstance(type_, GraphQLScalarType) or not name.startswith("AWS"):
            continue
        if name == "AWSJSON":
            parse_value, parse_literal = _json_scalar()
        elif name == "AWSTimestamp":
            parse_value, parse_literal = _timestamp_scalar()
        elif name in _PATTERNS:
            parse_value, parse_literal = _string_scalar(name)
        else:
            continue
        # graphql-core 3.3 reads coerce_input_*; 3.2 reads parse_* (kept in 3.3, deprecated)
        for attribute, function in (
            ("coerce_input_value", parse_value),
            ("coerce_input_literal", parse_literal),
            ("parse_value", parse_value),
            ("parse_literal", parse_literal),
        ):
            if hasattr(type_, attribute):
                setattr(type_, attribute, function)


def _with_prelude(document: DocumentNode) -> DocumentNode:
    defined = {
        definition.name.value
        for definition in document.definitions
        if isinstance(definition, TypeDefinitionNode | DirectiveDefinitionNode)
    }
    missing = [
        definition
        for definition in parse(_PRELUDE).definitions
        if isinstance(definition, TypeDefinitionNode | DirectiveDefinitionNode)
        and definition.name.value not in defined
    ]
    return DocumentNode(definitions=(*missing, *document.definitions))


def _subscriptions_by_mutation(schema: GraphQLSchema) -> dict[str, tuple[str, ...]]:
    """Read ``@aws_subscribe(mutations: [...])`` off every Subscription field."""
    result: dict[str, list[str]] = {}
    subscription_type = schema.subscription_type
    if subscription_type is None:
        return {}
    for field_name, field in subscription_type.fields.items():
        node = field.ast_node
        for directive in node.directives if node is not None else ():
            if directive.name.value != "aws_subscribe":
                continue
            for argument in directive.arguments:
                if argument.name.value == "mutations" and isinstance(argument.value, ListValueNode):
                    for value in argument.value.values:
                        if isinstance(value, StringValueNode):
                            result.setdefault(value.value, []).append(field_name)
    return {mutation: tuple(fields) for mutation, fields in result.items()}


class DocumentCache:
    """Parsed and validated documents by their text. Clients send the same few documents over and
    over, and validation against this schema costs milliseconds; ASTs are immutable, so share them."""

    def __init__(self, schema: GraphQLSchema, size: int = 512) -> None:
        self._schema = schema
        self.get = lru_cache(maxsize=size)(self._parse_and_validate)

    def _parse_and_validate(self, query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
        try:
            document = parse(query)
        except GraphQLError as exc:
            return None, (exc,)
        return document, tuple(validate(self._schema, document))


@dataclass(frozen=True)
class SandboxSchema:
    schema: GraphQLSchema
    #: mutation field name -> the Subscription fields that @aws_subscribe to it
    subscriptions_by_mutation: Mapping[str, tuple[str, ...]]
    documents: DocumentCache


def load_schema(sdl: str | None = None) -> SandboxSchema:
    """Build the served schema (the packaged AppSync schema unless ``sdl`` is given)."""
    if sdl is None:
        sdl = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema = build_ast_schema(_with_prelude(parse(sdl)))
    _install_scalars(schema)
    return SandboxSchema(
        schema=schema,
        subscriptions_by_mutation=_subscriptions_by_mutation(schema),
        documents=DocumentCache(schema),
    )
