"""Error classes that carry policy: the class says what the caller must do.

Translate foreign errors at the boundary with ``raise SomeHedgeError(...) from exc``
so the rest of the agent only ever decides on these classes.
"""

from __future__ import annotations


class HedgeError(Exception):
    """Base of every error the agent raises on purpose."""

    retryable: bool = False
    #: broker/bridge code when one exists (MT5 retcode, MT4 error number)
    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class RetryableError(HedgeError):
    """Transient: the same request may be sent again after a backoff (requote, busy, connection)."""

    retryable = True


class PermanentError(HedgeError):
    """Will fail the same way again: the intent ends FAILED/CANCELED with this message as the reason."""


class OutcomeUnknownError(HedgeError):
    """The request may or may not have taken effect: reconcile (look the tag up) before any retry."""


class FatalError(HedgeError):
    """The agent cannot go on (corrupt journal, wrong account on a terminal): stop and tell the user."""


class ConfigError(FatalError):
    """The configuration is invalid; ``problems`` lists each one with its key path and a hint."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class AuthError(HedgeError):
    """Sign-in or token refresh failed. Messages never contain tokens or passwords."""


class RecordError(ValueError):
    """A cloud record is malformed: names the record type, its id and the offending field."""

    def __init__(self, record_type: str, record_id: str | None, field: str, reason: str) -> None:
        self.record_type = record_type
        self.record_id = record_id
        self.field = field
        self.reason = reason
        super().__init__(f"{record_type} {record_id or '<no id>'}: field {field!r}: {reason}")


class IllegalTransition(ValueError):
    """A lifecycle event that the transition table does not allow from the current state."""
