"""A parking reservation: a place of a class in a lot, booked for a window [from, to) and paid
for ahead by a hold of the window's price on the transport account.

It ends one of three ways. Fulfilled: the driver arrived and a session started from it (its
hold is released and the session places its own). Cancelled: free until the table's free-cancel
time before the window, then the late-cancel fee is posted from the hold. A no-show: nobody
arrived within the grace after the start, and the no-show fee is posted from the hold. Each fee
is fixed on the booking from the table's terms and is never more than the hold.

The close is saved before the money moves, with its fee, and the settlement after it: a retry
(the same cancel id, or the sweeper finding a close not settled) moves the money at that fee,
and the ledger answers a repeat with the first result.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from parking.domain import limits
from parking.domain.errors import ArrivalOutsideWindow, RequestIdReused, ReservationClosed
from parking.domain.session import HOLD_ID_PREFIX
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "parking.Reservation"


class ReservationState(StrEnum):
    BOOKED = "booked"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


def reservation_aggregate_id(reservation_id: str) -> UUID:
    return url_uuid5(f"tapledger:parking-reservation:{reservation_id}")


def reservation_hold_id(aggregate_id: UUID) -> str:
    """The ledger hold placed when a reservation is booked."""
    return f"{HOLD_ID_PREFIX}{aggregate_id.hex}:reservation"


class Reservation(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Booked(Created):
        TOPIC = f"{TOPIC_PREFIX}.Booked"
        reservation_id: str
        fingerprint: str
        lot_id: str
        operator_id: str
        table_id: str
        vehicle_class: str
        plate: str
        plate_display: str
        account_id: UUID
        window_from: datetime
        window_to: datetime
        days: list[str]
        hold_id: str
        held_vnd: int
        free_cancel_until: datetime
        late_cancel_vnd: int
        no_show_vnd: int
        booked_at: datetime

    class Fulfilled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Fulfilled"
        start_id: str
        session_id: UUID
        at: datetime

    class Cancelled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Cancelled"
        cancel_id: str
        fee_vnd: int
        at: datetime

    class NoShow(Event):
        TOPIC = f"{TOPIC_PREFIX}.NoShow"
        fee_vnd: int
        at: datetime

    class Settled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Settled"
        posted_vnd: int
        at: datetime

    @event(Booked)
    def __init__(
        self,
        reservation_id: str,
        fingerprint: str,
        lot_id: str,
        operator_id: str,
        table_id: str,
        vehicle_class: str,
        plate: str,
        plate_display: str,
        account_id: UUID,
        window_from: datetime,
        window_to: datetime,
        days: list[str],
        hold_id: str,
        held_vnd: int,
        free_cancel_until: datetime,
        late_cancel_vnd: int,
        no_show_vnd: int,
        booked_at: datetime,
    ) -> None:
        require(window_from < window_to, "a window ends after it starts")
        require(max(late_cancel_vnd, no_show_vnd) <= held_vnd, "a fee is never more than held")
        self.reservation_id = reservation_id
        self.fingerprint = fingerprint
        self.lot_id = lot_id
        self.operator_id = operator_id
        self.table_id = table_id
        self.vehicle_class = vehicle_class
        self.plate = plate
        self.plate_display = plate_display
        self.account_id = account_id
        self.window_from = window_from
        self.window_to = window_to
        # The local days of the lot's bookings that hold this window.
        self.days = days
        self.hold_id = hold_id
        self.held_vnd = held_vnd
        self.free_cancel_until = free_cancel_until
        self.late_cancel_vnd = late_cancel_vnd
        self.no_show_vnd = no_show_vnd
        self.booked_at = booked_at
        self.state_code = ReservationState.BOOKED.value
        self.start_id = ""
        self.session_id: UUID | None = None
        self.cancel_id = ""
        self.fee_vnd = 0
        self.closed_at: datetime | None = None
        # Set once the hold is resolved after the close: the fee posted, the rest released.
        self.settled = False
        self.posted_vnd = 0

    @classmethod
    def create_id(cls, reservation_id: str, **_: object) -> UUID:
        return reservation_aggregate_id(reservation_id)

    @property
    def state(self) -> ReservationState:
        return ReservationState(self.state_code)

    @property
    def arrival_opens_at(self) -> datetime:
        return self.window_from - limits.EARLY_ARRIVAL

    @property
    def no_show_at(self) -> datetime:
        """When, nobody having arrived, the reservation is a no-show."""
        return self.window_from + limits.NO_SHOW_GRACE

    def check_booking_repeat(self, fingerprint: str) -> None:
        if fingerprint != self.fingerprint:
            raise RequestIdReused(self.reservation_id)

    def check_booked(self) -> None:
        if self.state is not ReservationState.BOOKED:
            raise ReservationClosed(self.reservation_id, self.state.value)

    def cancel_repeats(self, cancel_id: str) -> bool:
        """Whether this cancellation was made already; any other change of a closed
        reservation is refused."""
        if self.state is ReservationState.CANCELLED and cancel_id == self.cancel_id:
            return True
        self.check_booked()
        return False

    def arrival_repeats(self, start_id: str) -> bool:
        """Whether a session was started from this reservation by this start id already."""
        if self.state is ReservationState.FULFILLED and start_id == self.start_id:
            return True
        self.check_booked()
        return False

    def check_arrival(self, at: datetime) -> None:
        self.check_booked()
        if not self.arrival_opens_at <= at < min(self.no_show_at, self.window_to):
            raise ArrivalOutsideWindow(self.arrival_opens_at, self.no_show_at)

    def cancel_fee_vnd(self, at: datetime) -> int:
        return 0 if at < self.free_cancel_until else self.late_cancel_vnd

    @event(Fulfilled)
    def fulfil(self, start_id: str, session_id: UUID, at: datetime) -> None:
        require(self.state is ReservationState.BOOKED, "only a booked reservation is taken up")
        self.start_id = start_id
        self.session_id = session_id
        self.closed_at = at
        self.state_code = ReservationState.FULFILLED.value

    @event(Cancelled)
    def cancel(self, cancel_id: str, fee_vnd: int, at: datetime) -> None:
        require(self.state is ReservationState.BOOKED, "only a booked reservation is cancelled")
        require(0 <= fee_vnd <= self.held_vnd, "a fee is taken from the hold")
        self.cancel_id = cancel_id
        self.fee_vnd = fee_vnd
        self.closed_at = at
        self.state_code = ReservationState.CANCELLED.value

    @event(NoShow)
    def mark_no_show(self, fee_vnd: int, at: datetime) -> None:
        require(self.state is ReservationState.BOOKED, "only a booked reservation is missed")
        require(at >= self.no_show_at, "a no-show is marked after the grace")
        require(0 <= fee_vnd <= self.held_vnd, "a fee is taken from the hold")
        self.fee_vnd = fee_vnd
        self.closed_at = at
        self.state_code = ReservationState.NO_SHOW.value

    @event(Settled)
    def settle(self, posted_vnd: int, at: datetime) -> None:
        require(self.state is not ReservationState.BOOKED, "a reservation settles after its close")
        require(not self.settled, "a reservation settles once")
        require(0 <= posted_vnd <= self.fee_vnd, "no more is posted than the fee")
        self.settled = True
        self.posted_vnd = posted_vnd
        self.settled_at = at
