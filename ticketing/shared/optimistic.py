"""Optimistic concurrency: a writer that lost the race re-reads and tries again, a bounded
number of times, sleeping a random time under a cap that doubles each attempt (full jitter) so
that two processes writing one aggregate fall out of step instead of colliding every time.

Every use case that saves under contention goes through `save_with_retries`: one loop, one
back-off, and one typed error (`Contended`, 503) when the attempts run out."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import RecordConflictError

from ticketing.shared.domain.errors import Contended

SAVE_ATTEMPTS_MAX = 24
SAVE_BACKOFF_FIRST_S = 0.002
SAVE_BACKOFF_CAP_S = 0.2

T = TypeVar("T")


def back_off(attempt: int) -> None:
    cap_s = min(SAVE_BACKOFF_CAP_S, SAVE_BACKOFF_FIRST_S * 2 ** (attempt - 1))
    time.sleep(random.uniform(0, cap_s))  # noqa: S311 (jitter, not a secret)


def save_with_retries(
    attempt: Callable[[], T], *, what: str, contended: type[Contended] = Contended
) -> T:
    """Runs `attempt` (read, change, save) until its save is not refused as a conflict.

    `attempt` must read afresh each time it is called: the objects of a refused attempt are
    stale. When every one of `SAVE_ATTEMPTS_MAX` attempts lost the race, raises `contended`
    naming `what` was changed under it. Any other error of `attempt` ends the retries."""
    for number in range(1, SAVE_ATTEMPTS_MAX + 1):
        try:
            return attempt()
        except RecordConflictError:
            # Another writer saved first: nothing of this attempt was stored.
            if number < SAVE_ATTEMPTS_MAX:
                back_off(number)
    raise contended(what, SAVE_ATTEMPTS_MAX)
