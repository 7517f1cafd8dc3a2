"""The cyclic garbage collector, set for a long-running bot process.

Start-up builds ~180,000 long-lived objects (the commune directory, PTB, SQLAlchemy, Babel)
that the collector would otherwise walk on every full collection: 270 ms stop-the-world
pauses in the intake burst benchmark, during which the event loop and every database thread
stand still. Freezing them once started takes them out of every later collection (they are
still freed by reference counting). A young generation of 10,000 objects instead of 700
turns ~200 collections per 300 tips into ~20, for a few MB of garbage held a little longer:
the burst is ~10 % cheaper than with the freeze alone (no consistent difference in the p99
at 50 tips/s); the slow one-resident-at-a-time dialogue measured ~10 % dearer with it (in
three runs of three, near this VM's noise). Figures: docs/benchmarks.md, "The garbage
collector"."""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000


def settle_after_start() -> None:
    """Once the bot has started (a process-wide setting: entry points call it, never the
    runtime, so a test process that starts many bots keeps Python's defaults)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
