"""What a batch reads of parking's store, remembered between batches.

A batch reads each session and plate it changes; read from the store, that is a query or two
each, more than the writes cost once they are grouped. This memory keeps what earlier batches
read and wrote, and before each group of actions forgets what other writers changed since
(`LogCheckedCache`: the store's notification log, one query). A write that lands while the group
runs meets the store's optimistic check when the group is saved, as any read could.

The memory hands out the aggregates it holds, not copies (copies of every session and plate a
group touched were a twentieth of a batch's time): what it holds is its own (read with a copy of
the store's cached aggregate, or built from the store's rows), and a caller that changes one
saves it (`saved`) or forgets it (`forget`). What a batch answers with leaves the memory's hands
as a copy (`detached`), since later actions change the memory's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording

from parking.application.store import ParkingStore
from ticketing.shared.aggregate_copies import fresh_copy
from ticketing.shared.log_checked_cache import LogCheckedCache

T = TypeVar("T")

# Sessions, plates and code uses remembered (a few KiB each): a busy day's open sessions.
BATCH_MEMORY_MAX = 50_000


class BatchReads:
    def __init__(self, store: ParkingStore, *, size_max: int = BATCH_MEMORY_MAX) -> None:
        self._store = store
        self._memory = LogCheckedCache(store, size_max=size_max, shared=False)

    def refresh(self) -> None:
        """Forgets what other writers changed since the last look."""
        self._memory.refresh()

    def prefetch(self, aggregate_ids: Iterable[UUID]) -> None:
        """Reads these aggregates in one query where the store can (a batch's sessions and
        plates, most never recorded), instead of a query or two each when asked for."""
        self._memory.prefetch(aggregate_ids)

    def get(self, aggregate_id: UUID) -> Any:
        """The aggregate the memory holds, None when it was never recorded: changed, it is
        saved (`saved`) or forgotten (`forget`)."""
        return self._memory.get(aggregate_id, self._store.get_or_none)

    @staticmethod
    def detached(aggregate: T) -> T:
        """A copy of a held aggregate for an answer, which later changes must not reach."""
        return fresh_copy(aggregate)

    def saved(
        self,
        aggregates: Sequence[Aggregate],
        recordings: list[Recording[UUID]],
        *,
        finished: Sequence[Aggregate] = (),
    ) -> None:
        """Saved together: `aggregates` kept, `finished` ones (settled sessions, their records,
        which no batch changes again) forgotten, so the memory keeps what the day's next
        actions read."""
        for aggregate in aggregates:
            self._memory.put(aggregate.id, aggregate)
        self._memory.forget(aggregate.id for aggregate in finished)
        self._memory.saved(recordings)

    def forget(self, aggregate_ids: Iterable[UUID]) -> None:
        self._memory.forget(aggregate_ids)
