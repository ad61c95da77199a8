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


def utc_now() -> datetime:
    return datetime.now(UTC)


class ParkingStore(ObservedApplication):
    name = "Parking"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        PlateAtLot: PLATE_SNAPSHOT_INTERVAL,
        LotBookings: PLATE_SNAPSHOT_INTERVAL,
    }

    def get_or_none(self, aggregate_id: UUID) -> Any:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
