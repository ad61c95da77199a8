"""The validator's memory of codes it accepted lately, so that a code shown twice is refused.

This is step 12 of spec/QR.md. The memory is bounded in time (a code older than the staleness
limit is refused before this check, so it need not be remembered) and in size (`entries_max`).
"""

import heapq
from uuid import UUID

from ticketing.shared.domain.invariants import require

# A code generated longer ago than this is refused as stale (spec/QR.md, step 10). It lives here
# because it is also how long the window must remember a code: the `Verifier` requires a window
# whose horizon is at least its staleness limit.
STALE_AFTER_S_DEFAULT = 60
# Codes a validator accepts within one staleness window; a gate or a bus accepts a few a second,
# and each entry costs a few hundred bytes (about 6 MB when full).
REPLAY_WINDOW_ENTRIES_MAX = 16_384

ReplayKey = tuple[UUID, int, int]
"""`(card_id, generated_at, counter)`: what makes a code unique (spec/QR.md, step 12)."""


class ReplayWindow:
    """The codes accepted lately, so that showing the same code twice is refused.

    An entry is forgotten once its `generated_at` is older than `horizon_s`: such a code is
    refused as stale before the replay check, so remembering it buys nothing. Time only comes in
    as `now`; if a validator's clock jumps forward and back, codes forgotten in between can be
    replayed until they go stale, and the backend's de-duplication catches them afterwards.

    When full, the entry with the oldest `generated_at` is evicted. That is the entry nearest to
    going stale anyway, so the cost is the shortest possible gap: its code could be shown again at
    this validator for the rest of its window (at most `horizon_s` plus the future tolerance), and
    the backend, which de-duplicates across validators, would still refuse the second tap.
    """

    def __init__(
        self,
        *,
        horizon_s: int = STALE_AFTER_S_DEFAULT,
        entries_max: int = REPLAY_WINDOW_ENTRIES_MAX,
    ) -> None:
        require(horizon_s >= 0, "the horizon is a duration")
        require(1 <= entries_max <= REPLAY_WINDOW_ENTRIES_MAX, "replay window size out of bounds")
        self.horizon_s = horizon_s
        self.entries_max = entries_max
        self._keys: set[ReplayKey] = set()
        # A heap ordered by generated_at, so the oldest entry is found in O(1), removed in O(log n).
        self._by_age: list[tuple[int, UUID, int]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: ReplayKey, now: int) -> bool:
        self._forget_before(now - self.horizon_s)
        return key in self._keys

    def remember(self, key: ReplayKey, now: int) -> None:
        self._forget_before(now - self.horizon_s)
        if key in self._keys:
            return
        if len(self._keys) >= self.entries_max:
            self._evict_oldest()
        card_id, generated_at, counter = key
        self._keys.add(key)
        heapq.heappush(self._by_age, (generated_at, card_id, counter))

    def _forget_before(self, oldest_kept: int) -> None:
        while self._by_age and self._by_age[0][0] < oldest_kept:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        generated_at, card_id, counter = heapq.heappop(self._by_age)
        self._keys.discard((card_id, generated_at, counter))
