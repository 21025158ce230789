"""A tray icon that shows nothing and closes when the shell says so."""

from __future__ import annotations

import threading
from typing import Any


class QuietIcon:
    def __init__(self, on_command: Any) -> None:
        self.stopped = threading.Event()

    def run(self, on_ready: Any) -> None:
        on_ready()
        assert self.stopped.wait(10)

    def stop(self) -> None:
        self.stopped.set()

    def show(self, view: Any) -> None: ...

    def notify(self, notification: Any) -> None: ...
