"""Python's cycle collector, tuned for the long-running processes: API workers and followers.

Both keep many long-lived objects (the fare feed, caches of certificates, registrations and
aggregates) and make tens of thousands of short-lived ones a second. With the default thresholds
the collector scans the long-lived ones again and again: 14 % of the journey follower's time, and
pauses of tens of milliseconds in an API worker, which were most of a gate's p99 at 500 taps/s.
Their objects form few cycles, so what start-up built is left out of every later collection and
cycles are collected far less often.
"""

from __future__ import annotations

import gc

# Allocations before a young collection, and young (then middle) collections before the next
# older one; Python's defaults are (700, 10, 10).
COLLECTOR_THRESHOLDS = (10_000, 50, 1_000)


def tune_collector() -> None:
    """Call once start-up is done: everything alive now is left out of later collections."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
