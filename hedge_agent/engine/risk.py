"""Risk caps (config ``[risk]``) and the pause switch: a refused intent names the cap that refused it."""

from __future__ import annotations

from collections import deque

from hedge_agent.config import RiskConfig

from .clock import Clock, loop_clock


class RiskGate:
    """One per terminal. ``check`` is called right before an order would be written ahead (on the loop:
    the default clock is the loop's)."""

    def __init__(self, config: RiskConfig, clock: Clock = loop_clock) -> None:
        self.config = config
        self._clock = clock
        self._sent: deque[float] = deque()

    def check(self, volume: float, *, opening: bool, paused: bool) -> str | None:
        """None when allowed, else the readable reason (it becomes exitReason / the action's failure).
        The open-positions cap is checked by the journal, in the transaction that writes the intent."""
        if paused:
            return "execution is paused on this PC (resume it from the tray)"
        if not opening:
            return None  # closing reduces risk: the caps never keep a position open
        if volume > self.config.max_volume_per_order:
            return f"risk cap max_volume_per_order: {volume:g} lots > {self.config.max_volume_per_order:g}"
        now = self._clock()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) >= self.config.max_orders_per_minute:
            return f"risk cap max_orders_per_minute: {len(self._sent)} orders in the last 60 s"
        return None

    def sent(self) -> None:
        self._sent.append(self._clock())
