"""The cyclic garbage collector, set for a long-running bot process.

Start-up builds ~180,000 long-lived objects (the commune directory, PTB, SQLAlchemy, Babel)
that the collector would otherwise walk on every full collection: 270 ms stop-the-world
pauses in the intake burst benchmark, during which the event loop and every database thread
stand still. Freezing them once started takes them out of every later collection (they are
still freed by reference counting). Python's thresholds are kept: a young generation of
10,000 instead of 700 made the burst ~10 % cheaper but the steady dialogue ~12 % dearer and
the press-to-card p99 worse (docs/benchmarks.md, "The garbage collector")."""

from __future__ import annotations

import gc


def settle_after_start() -> None:
    """Once the bot has started (a process-wide setting: entry points call it, never the
    runtime, so a test process that starts many bots keeps Python's defaults)."""
    gc.collect()
    gc.freeze()
