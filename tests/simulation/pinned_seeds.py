"""Seeds that found a bug, kept forever: each must pass once its bug is fixed. Replay: make simulate SEED=<seed>.

The first group was found against main at f9f64a2 (the executor before issue 11's rewrite), the second
against the rewritten engine while it was being written. A seed replays the same schedule only while the
engine makes the same calls: once the engine changes, a pinned seed is a regression run of a schedule that
once broke something, not a proof that the same bug is gone (the directed tests in test_scenarios.py are).
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
    # -- engine branch --
    186: "a PENDING intent left by a crash is resent after ~1 s of lookups; the first order executes late",
    157: "our own close (crash before its result was journaled) is reported STOPPED and fires as a stop-out",
    209: "a re-answered CLOSED report that fails transiently is never retried: stuck CLOSING",
    193: "live trade carrying a known position's open tag after a lost journal, and nobody says so",
    624: "a trailWidth edit (2 -> 50 pips) on an OPEN record, received 6 s before, is not in effect while an "
    "earlier close attempt is unsettled: fires at the 2-pip stop",
    800: "seemed a trail armed by a pre-fill quote; was the trail check ignoring the record the agent's own "
    "OPEN report returned (trailWidth 5 -> 2 edited while the open was at the broker, frame dropped)",
    1126: "a re-answered CLOSED report fails, then its reconcile step fails on a transient read: stuck CLOSING",
    1575: "a trail fires 5 s after the agent was told trailWidth 0 (same as 800: its OPEN report returned "
    "trailWidth 2, which the trail check ignored)",
    2679: "sim check: acc-1 bound on two PCs, each opened pos-5; the CLOSE action closes the executing PC's copy "
    "and the other copy is said loudly: not a lost action",
    3941: "an ENTRY action's open is unknown, its record canceled then deleted: the orphan intent was only "
    "looked up, never given up, so the action stayed EXECUTING forever",
    3951: "lost journal; the look-first lookup got no answer (terminal link down) and the open was sent "
    "anyway: a second open with the tag of one closed by hand before",
    2651: "acc-1 bound on two PCs: one PC's close (same deterministic tag) beat the other's; the loser's close "
    "was rejected, it reported STOPPED and nobody said the account is traded by two agents",
    # -- the last long run (3000..5999) on the final engine --
    3113: "sim check: a cadence sweep fired on the newest quote it had processed while a newer tick was still "
    "queued; the check measured the broker's price at the hand-off (89 points) instead of that quote (106)",
    4779: "a trailWidth edit (5 -> 10 pips) read by reconcile (a retried re-answer, no step left; its frame "
    "lost) was only cached, never handed to the trail monitor: fired at the old 5-pip stop",
    3213: "acc-1 bound on two PCs: the trade was closed by the other PC's close tag; this PC saw it vanish and "
    "reported a stop-out (STOPPED, triggers fired); now CLOSED, and the two agents said loudly",
    3497: "as 3213 (two PCs, the other PC's close tag on the closing deal reported as a stop-out)",
    # -- the fresh run 6000..7499 --
    7239: "sim check: acc-1 bound on two PCs, each holding a trade with pos-3's open tag; the trail check "
    "judged A's fire by A2's later copy (best since its open) instead of the trade A's journal filled",
}

#: found by a long run (``make simulate SEEDS=N START=S``), not fixed yet. Each is expected to fail (strict xfail): a fix makes it pass, which fails its test until the
#: seed moves to PINNED with what the fix was.
OPEN: dict[int, str] = {}
