"""Places booked ahead in a lot: one aggregate per lot, vehicle class and local day.

A booking is written into the aggregate of every local day its window touches (a window over
midnight touches two), in the same save as the reservation. Two bookings that overlap in time
share the day of any instant they overlap at, so they meet in that day's aggregate: when both
take the last place at once the event store refuses the second save, and its retry sees the
place gone. At every instant, the bookings active then are all in that instant's day, so a
check of each touched day against its own bookings never lets a class be overbooked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from parking.domain import limits
from parking.domain.catalogue import LOCAL_ZONE
from parking.domain.errors import NoPlaceFree
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "parking.LotBookings"
ONE_DAY = timedelta(days=1)
# At one instant, an end is counted before a start: windows are half-open, [from, to).
_END, _START = 0, 1


def lot_bookings_id(lot_id: str, vehicle_class: str, day: date) -> UUID:
    return url_uuid5(f"tapledger:parking-bookings:{lot_id}:{vehicle_class}:{day.isoformat()}")


def days_touched(window_from: datetime, window_to: datetime) -> list[date]:
    """The local days [from, to) has an instant in, in order."""
    first = window_from.astimezone(LOCAL_ZONE).date()
    last = (window_to - timedelta(microseconds=1)).astimezone(LOCAL_ZONE).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def reservable_places(capacity: int) -> int:
    return capacity * limits.RESERVABLE_SHARE_PERCENT // 100


def peak_overlap(
    windows: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
) -> int:
    """The most of `windows` active at one instant of [start, end)."""
    edges: list[tuple[datetime, int]] = []
    for window_from, window_to in windows:
        low, high = max(window_from, start), min(window_to, end)
        if low < high:
            edges += [(low, _START), (high, _END)]
    active = peak = 0
    for _, kind in sorted(edges):
        active += 1 if kind == _START else -1
        peak = max(peak, active)
    return peak


class LotBookings(Aggregate):
    """The windows booked in one lot for one vehicle class on one local day."""

    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Opened(Created):
        TOPIC = f"{TOPIC_PREFIX}.Opened"
        lot_id: str
        vehicle_class: str
        day: str  # the local date, ISO 8601

    class Booked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Booked"
        reservation_id: UUID
        window_from: datetime
        window_to: datetime

    class Released(Event):
        TOPIC = f"{TOPIC_PREFIX}.Released"
        reservation_id: UUID

    class Snapshot(BaseSnapshot):
        TOPIC = f"{TOPIC_PREFIX}.Snapshot"

    @event(Opened)
    def __init__(self, lot_id: str, vehicle_class: str, day: str) -> None:
        self.lot_id = lot_id
        self.vehicle_class = vehicle_class
        self.day = day
        # reservation id (hex) -> [from, to): lists, as a snapshot stores them.
        self.windows: dict[str, list[datetime]] = {}

    @classmethod
    def create_id(cls, lot_id: str, vehicle_class: str, day: str) -> UUID:
        return lot_bookings_id(lot_id, vehicle_class, date.fromisoformat(day))

    def check_room(self, window_from: datetime, window_to: datetime, places: int) -> None:
        """Refuses a window that would take more than `places` at some instant of it."""
        full = len(self.windows) >= limits.BOOKINGS_PER_DAY_MAX
        booked = ((window[0], window[1]) for window in self.windows.values())
        if full or peak_overlap(booked, window_from, window_to) >= places:
            raise NoPlaceFree(self.lot_id, self.vehicle_class)

    def holds(self, reservation_id: UUID) -> bool:
        return reservation_id.hex in self.windows

    @event(Booked)
    def book(self, reservation_id: UUID, window_from: datetime, window_to: datetime) -> None:
        require(reservation_id.hex not in self.windows, "a reservation is booked once")
        require(window_from < window_to, "a window ends after it starts")
        self.windows[reservation_id.hex] = [window_from, window_to]

    @event(Released)
    def release(self, reservation_id: UUID) -> None:
        require(reservation_id.hex in self.windows, "only a booked window is released")
        del self.windows[reservation_id.hex]


register_topic(LotBookings.Snapshot.TOPIC, LotBookings.Snapshot)
