"""Seeds that found a bug, kept forever: each must pass once its bug is fixed. Replay: make simulate SEED=<seed>.

All found against main at f9f64a2 (the executor before issue 11's rewrite); details in the sim findings.
"""

PINNED: dict[int, str] = {
    0: "late second CLOSING after CLOSED stays CLOSING forever (_close returns the reported intent unanswered)",
    3: "the UI puts a CLOSING record back to OPEN while the close fills: the fill is lost, cloud OPEN forever",
    39: "reconcile() caches a stale get_position (OPENING) over the OPEN record written meanwhile; "
    "watch_terminal then skips the position and its stop-out is never reported (cloud OPEN, broker closed)",
    45: "OPENING -> PENDING -> OPENING while the first open is at the broker: stuck OPENING",
    81: "crash between the STOPPED report and add_fire: the stop-out's fire (its triggers) is never made",
    109: "crash leaves a PENDING open intent whose order executes late (MT4 128); the restart resends it "
    "after ~1 s of lookups: two opens with one tag",
    35: "an unknown-outcome open fills while the UI cancels the record: live trade, cloud CANCELED, no error",
    123: "a trailWidth edit on a trailed OPEN position is ignored: fires at the old width",
}
