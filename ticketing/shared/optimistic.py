"""Optimistic concurrency: a writer that lost the race re-reads and tries again, a bounded
number of times, sleeping a random time under a cap that doubles each attempt (full jitter) so
that two processes writing one aggregate fall out of step instead of colliding every time."""

from __future__ import annotations

import random
import time

SAVE_ATTEMPTS_MAX = 24
SAVE_BACKOFF_FIRST_S = 0.002
SAVE_BACKOFF_CAP_S = 0.2


def back_off(attempt: int) -> None:
    cap_s = min(SAVE_BACKOFF_CAP_S, SAVE_BACKOFF_FIRST_S * 2 ** (attempt - 1))
    time.sleep(random.uniform(0, cap_s))  # noqa: S311 (jitter, not a secret)
