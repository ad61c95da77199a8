"""Python's cyclic garbage collector, set for a cycle's bulk run and set back after it.

A cycle makes tens of millions of small objects (rows, events, movements, lines), nearly all
freed by reference counting as soon as the next section replaces them. With the collector's
default thresholds (700, 10, 10) the sections alive at any moment keep triggering collections:
on the quarter benchmark day (527,021 movements) 5,777 young, 525 middle and 46 full ones,
about a fifth of the run, each full one walking every object the process holds (the fare feed,
the stores, the library's modules). During the run, the objects that were there before it are
frozen (`gc.freeze`: left out of collections, never freed by them until they are unfrozen), and
young collections wait for `YOUNG_OBJECTS_MAX` objects. Garbage without cycles is still freed at
once; cyclic garbage waits at most that many allocations, a few megabytes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations (net of frees) between young collections during a run: a few sections' objects.
YOUNG_OBJECTS_MAX = 100_000


@contextmanager
def bulk_run() -> Iterator[None]:
    """The collector set for a bulk run inside the block, and as it was after it."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_MAX, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
