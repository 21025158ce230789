"""Faults the tests inject into the sandbox: failed or slow mutations, silent keep-alive."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class MutationFault:
    #: (errorType, message) to fail the mutation with, before it writes anything
    error: tuple[str, str] | None = None
    delay_s: float = 0.0
    #: delay after the write and the publish, before the response: the outcome is unknown to the client
    delay_after_commit: bool = False


NO_FAULT = MutationFault()


class Faults:
    def __init__(self) -> None:
        self.keepalive_enabled = True
        self._errors: deque[tuple[str, str]] = deque()
        self._delays: deque[tuple[float, bool]] = deque()

    def fail_next_mutations(self, n: int, error_type: str, message: str) -> None:
        if n < 0:
            raise ValueError(f"fail_next_mutations: n must be >= 0, got {n}")
        self._errors.extend([(error_type, message)] * n)

    def delay_next_mutations(self, n: int, seconds: float, *, after_commit: bool = False) -> None:
        if n < 0 or seconds < 0:
            raise ValueError(f"delay_next_mutations: n and seconds must be >= 0, got {n}, {seconds}")
        self._delays.extend([(seconds, after_commit)] * n)

    def take_mutation_fault(self) -> MutationFault:
        """The fault for the mutation starting now (one from each queue that has one)."""
        if not self._errors and not self._delays:
            return NO_FAULT
        error = self._errors.popleft() if self._errors else None
        delay, after_commit = self._delays.popleft() if self._delays else (0.0, False)
        return MutationFault(error=error, delay_s=delay, delay_after_commit=after_commit)
