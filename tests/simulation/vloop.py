"""A virtual-time asyncio event loop: ``time()`` is a number the loop owns, and when nothing is ready it
jumps straight to the next timer instead of waiting. No real I/O happens in the simulation (the journal
runs inline, the cloud and the terminal are in-memory models), so a selector that never reports a ready
file descriptor is enough; ``select(timeout)`` *is* the clock advancing by ``timeout``.

Same program + same seed => same sequence of callbacks => same run: asyncio runs ready callbacks in FIFO
order and timers by (when, sequence), and nothing here reads a real clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import Any


class Deadlock(RuntimeError):
    """The loop has nothing ready and no timer: every task waits for something that will never come."""


class _Map(Mapping[Any, selectors.SelectorKey]):
    def __init__(self, keys: dict[int, selectors.SelectorKey]) -> None:
        self._keys = keys

    def __getitem__(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys[fd]

    def __iter__(self) -> Any:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class VirtualSelector(selectors.BaseSelector):
    def __init__(self) -> None:
        self.now = 0.0
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise Deadlock("nothing is ready and no timer is scheduled")
        if timeout > 0:
            self.now += timeout
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return _Map(self._keys)

    def close(self) -> None:
        self._keys.clear()


class VirtualLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` starts at 0.0 and only moves when every task waits on a timer."""

    def __init__(self) -> None:
        self._vselector = VirtualSelector()
        super().__init__(self._vselector)

    def time(self) -> float:
        return self._vselector.now


def run(main: Any) -> Any:
    """``asyncio.run`` on a fresh virtual loop."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
