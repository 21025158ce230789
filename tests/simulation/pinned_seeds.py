"""Seeds that found a bug, kept forever: each must pass once the bug is fixed. Replay: make simulate SEED=<seed>.

Found against main at f9f64a2 (the executor before issue 11's rewrite).
"""

PINNED: dict[int, str] = {
    0: "late second CLOSING after CLOSED stays CLOSING forever (executor._close returns the reported intent "
    "without answering)",
    39: "reconcile() caches a stale get_position (OPENING) over the OPEN record written meanwhile; "
    "watch_terminal then skips the position and its stop-out is never reported (cloud OPEN, broker closed)",
}
