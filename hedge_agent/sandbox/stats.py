"""Counters a running sandbox keeps, for tests and benches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SandboxStats:
    #: mutations that committed (and published)
    mutations: int = 0
    #: mutations that ended in an error (auth, condition, injected fault, ...)
    mutations_failed: int = 0
    #: committed mutations handed to the subscription broker
    events_published: int = 0
    #: data frames sent to subscribers
    frames_delivered: int = 0
    http_requests: int = 0
    #: requests, sockets and subscriptions refused for their credentials
    auth_rejections: int = 0
    ka_sent: int = 0
    sockets_open: int = 0
    subscriptions_active: int = 0
