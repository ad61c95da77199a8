"""Parking's event store: operators, lots, quotes, sessions, plates, codes, detail records,
reservations and the lots' bookings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from parking.domain.bookings import LotBookings
from parking.domain.occupancy import PlateAtLot
from ticketing.shared.observed import ObservedApplication

# A plate seen in a lot every day gathers events for years, and a busy lot's day of bookings
# gathers hundreds; a snapshot keeps their reads short.
PLATE_SNAPSHOT_INTERVAL = 20
# Plates, sessions and lots kept in memory per process (a few KiB each). A read of one of them
# then asks the store only for the events written since (one query) instead of looking for a
# snapshot and then the events after it (two): what an officer's check spends most on.
AGGREGATE_CACHE_MAX = 20_000


def utc_now() -> datetime:
    return datetime.now(UTC)


class ParkingStore(ObservedApplication):
    name = "Parking"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        PlateAtLot: PLATE_SNAPSHOT_INTERVAL,
        LotBookings: PLATE_SNAPSHOT_INTERVAL,
    }
    # Every read still fetches what other processes wrote since, and saves meet the optimistic
    # check, so a cached aggregate is never stale when read and never overwrites another's.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_MAX)}

    def get_or_none(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def read_or_none(self, aggregate_id: UUID) -> Any:
        """Like `get_or_none`, for a caller that only reads: the aggregate may be the cache's
        own copy (not copied for this call), so it must not be changed."""
        try:
            return self.repository.get(aggregate_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def read_if_recorded(self, aggregate_id: UUID) -> Any:
        """Like `read_or_none`, but an aggregate this process does not hold costs one query
        when it was never recorded (most plates an officer checks have no session): whether it
        has a first event. `read_or_none` would look for a snapshot, then for the events."""
        cache = self.repository.cache
        if cache is not None:
            try:
                cache.get(aggregate_id)
            except KeyError:
                if not self.recorder.select_events(aggregate_id, limit=1):
                    return None
        return self.read_or_none(aggregate_id)
