"""Who may price riders' taps right now: one holder at a time, whatever the process layout.

The journey follower moves money on the ledger before it saves the journeys and its position in
the Taps log. Two followers applying the same taps at once would each move money, and only one
save would win: the loser's transfers would stay on the ledger under journeys nobody keeps. So
every step that prices taps (a section of the follower, a journey closed at day end) runs while
holding this lock, and reads the follower's position only once it holds it. `serve --workers N`
then still needs no second command: every worker runs a follower, and whichever holds the lock
prices the next section while the others find it taken and wait for their next poll.

Adapters: `InProcessPricingLock` here, for one process (the in-memory stores of unit tests);
a file lock for the embedded SQLite store and a PostgreSQL advisory lock for a shared database,
in `ticketing.journeys.adapters.pricing_locks`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

# How long a day-end close waits for a follower to finish its section before giving up on one
# journey (it is closed by the next close instead).
PRICING_LOCK_WAIT_S = 30.0


class PricingLock(Protocol):
    """A mutual exclusion shared by every process pricing taps on one event store."""

    def acquire(self, *, wait_s: float) -> bool:
        """Takes the lock, waiting up to `wait_s` (0: not at all); False if another holds it."""

    def release(self) -> None:
        """Gives the lock back; only its holder calls this."""

    def still_held(self) -> bool:
        """Whether the lock taken is still this holder's (a lost database session loses it)."""

    def close(self) -> None:
        """Frees whatever the lock holds open (a connection, a file)."""


@contextmanager
def holding(lock: PricingLock, *, wait_s: float = 0.0) -> Iterator[bool]:
    """Holds `lock` for the block when it can be had; yields whether it was."""
    held = lock.acquire(wait_s=wait_s)
    try:
        yield held
    finally:
        if held:
            lock.release()


class InProcessPricingLock:
    """The lock for a single process: enough when the store is not shared with another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, *, wait_s: float) -> bool:
        if wait_s <= 0:
            return self._lock.acquire(blocking=False)
        return self._lock.acquire(timeout=wait_s)

    def release(self) -> None:
        self._lock.release()

    def still_held(self) -> bool:
        return self._lock.locked()

    def close(self) -> None:
        pass
