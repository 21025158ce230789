"""AppSync's error shapes: resolver errors carry ``errorType``; validation errors do not."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

UNAUTHORIZED = "Unauthorized"
CONDITIONAL_CHECK_FAILED = "DynamoDB:ConditionalCheckFailedException"
CONDITIONAL_CHECK_MESSAGE = "The conditional request failed"
DYNAMODB_VALIDATION = "DynamoDB:ValidationException"
#: the generated resolvers' error for arguments they cannot turn into a DynamoDB request (bad key conditions)
INVALID_ARGUMENTS = "InvalidArgumentsError"


class AppSyncError(Exception):
    """Raised by a resolver: becomes one entry of ``errors`` with AppSync's keys.

    ``error_type`` may be None: AppSync reports some resolver errors (the composite sort key rule)
    with ``"errorType": null``.
    """

    def __init__(self, error_type: str | None, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def unauthorized(field_name: str, type_name: str) -> AppSyncError:
    # Real AppSync's wording; the simulator says just "Unauthorized". Clients match on errorType.
    return AppSyncError(UNAUTHORIZED, f"Not Authorized to access {field_name} on type {type_name}")


def conditional_check_failed() -> AppSyncError:
    return AppSyncError(CONDITIONAL_CHECK_FAILED, CONDITIONAL_CHECK_MESSAGE)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """One GraphQL error as AppSync writes it."""
    formatted: dict[str, Any] = dict(error.formatted)
    formatted.pop("extensions", None)
    original = error.original_error
    if isinstance(original, AppSyncError):
        formatted = {
            "path": formatted.get("path"),
            "data": None,
            "errorType": original.error_type,
            "errorInfo": None,
            "locations": formatted.get("locations", []),
            "message": original.message,
        }
    return formatted


def format_errors(errors: list[GraphQLError] | None) -> list[dict[str, Any]]:
    return [format_error(error) for error in errors or ()]


def transport_error(error_type: str, message: str) -> dict[str, Any]:
    """The body of an error that is not about one field (HTTP 401/400, socket-level errors)."""
    return {"errors": [{"errorType": error_type, "message": message}]}
