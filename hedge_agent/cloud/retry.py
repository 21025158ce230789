"""Retry policy as data: a delay generator and a classifier that says what a failure calls for.

The classifiers live next to the wire they judge (``graphql_http.classify`` for HTTP answers,
``realtime.classify`` for the socket); both return a :class:`Disposition`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from dataclasses import dataclass


class Disposition(enum.Enum):
    #: transient (network, throttling, server busy): back off and try again
    RETRY = "retry"
    #: the server rejected the token: refresh it, then try again
    REFRESH = "refresh"
    #: the sign-in itself is gone (refresh token revoked): only a new login helps; the link keeps polling slowly
    CREDENTIALS = "credentials"
    #: will fail the same way again: do not retry
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits a uniform draw from
    ``[d * (1 - jitter), d]`` where ``d = min(max_s, initial_s * factor**n)``. Jitter spreads the
    reconnects of many agents after a backend blip."""

    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.5

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rand = rng or random.Random()
        d = self.initial_s
        while True:
            yield d * (1 - self.jitter * rand.random())
            d = min(self.max_s, d * self.factor)


#: subscription link: reconnect forever, quickly at first
LINK_BACKOFF = Backoff(initial_s=0.2, factor=2.0, max_s=30.0, jitter=0.5)
#: one query or mutation: a few quick tries, then the outcome says Failed(retryable=True)
REQUEST_BACKOFF = Backoff(initial_s=0.1, factor=2.0, max_s=2.0, jitter=0.5)
REQUEST_ATTEMPTS = 4
