"""Reservations: a place booked ahead with a hold, then taken up, cancelled or missed.

A booking places its hold first, under an id derived from the reservation's own id, and saves
the reservation after it, in one save with the lot's bookings of every local day the window
touches: two bookings of the last place cannot both commit, and the retry of the one refused
sees the place gone (`no_place_free`) and voids the hold it placed. A repeat of the same
reservation id finds the same hold and the same reservation.

Closing one (a cancellation, a no-show) saves the close with its fee first and moves the money
after, so a retry moves it at that fee. Taking one up saves the fulfilment, releases the
reservation's hold and starts the session with a hold of its own (see `arrive`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from parking.application.sessions import (
    Payer,
    Payment,
    Sessions,
    Started,
    StartRequest,
    fingerprint_of,
)
from parking.application.store import ParkingStore
from parking.domain import limits
from parking.domain.bookings import LotBookings, days_touched, reservable_places
from parking.domain.catalogue import Lot
from parking.domain.errors import InvalidReservation, LotClosed, NoPlaceFree, ReservationNotFound
from parking.domain.plate import normalise_plate
from parking.domain.ports import Clock
from parking.domain.pricing import quote
from parking.domain.reservation import (
    Reservation,
    ReservationState,
    reservation_aggregate_id,
    reservation_hold_id,
)
from parking.domain.session import StartedBy, session_id_for
from parking.domain.tariff import VehicleClass
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import PlaceHold, PostHold, VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved, HoldNotFound
from ticketing.accounts.domain.limits import HOLD_TTL_MAX_S
from ticketing.shared.optimistic import save_with_retries


@dataclass(frozen=True)
class BookRequest:
    reservation_id: str
    lot_id: str
    vehicle_class: VehicleClass
    plate: str
    window_from: datetime
    window_to: datetime
    account_id: UUID

    def fingerprint(self) -> str:
        return fingerprint_of(
            self.lot_id,
            str(self.vehicle_class),
            normalise_plate(self.plate).compact,
            self.window_from.isoformat(),
            self.window_to.isoformat(),
            str(self.account_id),
        )


@dataclass(frozen=True)
class Booked:
    reservation: Reservation
    replayed: bool


class Reservations:
    def __init__(
        self, store: ParkingStore, sessions: Sessions, ledger: Ledger, clock: Clock
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.catalogue = sessions.catalogue
        self.ledger = ledger
        self.clock = clock

    def get(self, reservation_id: str) -> Reservation:
        found: Reservation | None = self.store.get_or_none(reservation_aggregate_id(reservation_id))
        if not isinstance(found, Reservation):
            raise ReservationNotFound(reservation_id)
        return found

    def book(self, request: BookRequest) -> Booked:
        """Books a place of the class for the window, holding the window's price."""
        aggregate_id = reservation_aggregate_id(request.reservation_id)
        fingerprint = request.fingerprint()
        known: Reservation | None = self.store.get_or_none(aggregate_id)
        if known is not None:
            known.check_booking_repeat(fingerprint)
            return Booked(known, replayed=True)
        at = self.clock()
        lot = self.catalogue.lot(request.lot_id)
        self._check_window(lot, request, at)
        plate = normalise_plate(request.plate)
        table = self.catalogue.table(lot.table_id)
        priced = quote(table, request.vehicle_class, request.window_from, request.window_to)
        terms = table.tariff(table.index_at(priced.start), request.vehicle_class).reservation
        held_vnd = priced.total_vnd
        days = [day.isoformat() for day in days_touched(priced.start, priced.end)]
        places = reservable_places(lot.places(request.vehicle_class))
        self._check_room(lot, request, days, places)
        hold_id = reservation_hold_id(aggregate_id)
        if held_vnd > 0:
            description = f"parking reservation {lot.lot_id} {plate.display}"
            # One lifetime for every booking, so a retry places the very same hold; the window
            # ends well within it (RESERVATION_AHEAD), and a booking's close releases it.
            command = PlaceHold(request.account_id, hold_id, held_vnd, HOLD_TTL_MAX_S, description)
            self.ledger.execute(command)

        def attempt() -> Booked:
            again: Reservation | None = self.store.get_or_none(aggregate_id)
            if again is not None:
                again.check_booking_repeat(fingerprint)
                return Booked(again, replayed=True)
            bookings = [self._bookings(lot.lot_id, request.vehicle_class, day) for day in days]
            for day in bookings:
                day.check_room(priced.start, priced.end, places)
            reservation = Reservation(
                reservation_id=request.reservation_id,
                fingerprint=fingerprint,
                lot_id=lot.lot_id,
                operator_id=lot.operator_id,
                table_id=lot.table_id,
                vehicle_class=str(request.vehicle_class),
                plate=plate.compact,
                plate_display=plate.display,
                account_id=request.account_id,
                window_from=priced.start,
                window_to=priced.end,
                days=days,
                hold_id=hold_id,
                held_vnd=held_vnd,
                free_cancel_until=priced.start - terms.free_cancel,
                late_cancel_vnd=min(terms.late_cancel_vnd, held_vnd),
                no_show_vnd=min(terms.no_show_vnd, held_vnd),
                booked_at=at,
            )
            for day in bookings:
                day.book(reservation.id, priced.start, priced.end)
            self.store.save(reservation, *bookings)
            return Booked(reservation, replayed=False)

        try:
            return save_with_retries(attempt, what=f"bookings of {lot.lot_id}")
        except Exception:
            if self.store.get_or_none(aggregate_id) is None:
                # No reservation took the hold up; one of this id would own it.
                self._settle_hold(request.account_id, hold_id, held_vnd, 0)
            raise

    def cancel(self, reservation_id: str, cancel_id: str) -> Reservation:
        """Cancels a booked reservation: free until the table's free-cancel time before the
        window, then the late-cancel fee is posted from the hold and the rest released."""
        reservation = self.get(reservation_id)
        if not reservation.cancel_repeats(cancel_id):
            at = self.clock()

            def attempt() -> Reservation:
                again = self.get(reservation_id)
                if not again.cancel_repeats(cancel_id):
                    again.cancel(cancel_id, again.cancel_fee_vnd(at), at)
                    self.store.save(again, *self._released(again))
                return again

            reservation = save_with_retries(attempt, what=f"reservation {reservation_id}")
        return self._settle(reservation)

    def mark_no_show(self, aggregate_id: UUID) -> bool:
        """Closes a reservation nobody arrived for within the grace: posts the no-show fee
        from its hold and releases its place. False when it was closed otherwise, or is not
        due yet."""
        found: Reservation | None = self.store.get_or_none(aggregate_id)
        if not isinstance(found, Reservation):
            return False
        if found.state is not ReservationState.BOOKED:
            return False

        def attempt() -> Reservation | None:
            again: Reservation = self.store.repository.get(aggregate_id)
            at = self.clock()
            if again.state is not ReservationState.BOOKED or at < again.no_show_at:
                return None
            again.mark_no_show(again.no_show_vnd, at)
            self.store.save(again, *self._released(again))
            return again

        marked = save_with_retries(attempt, what=f"reservation {found.reservation_id}")
        if marked is None:
            return False
        self._settle(marked)
        return True

    def arrive(self, reservation_id: str, start_id: str) -> Started:
        """Takes a reservation up: starts its session, paid until the window's end.

        The fulfilment is saved first (a retry with the same start id carries on from it), then
        the reservation's hold is released and the session places its own start hold, priced
        like any session from its real start. The place stays booked until the window ends."""
        reservation = self.get(reservation_id)
        if not reservation.arrival_repeats(start_id):
            reservation.check_arrival(self.clock())
            self.sessions.check_plate_free(reservation.lot_id, reservation.plate)

            def attempt() -> Reservation:
                again = self.get(reservation_id)
                if not again.arrival_repeats(start_id):
                    again.check_arrival(self.clock())
                    again.fulfil(start_id, session_id_for(start_id), self.clock())
                    self.store.save(again)
                return again

            reservation = save_with_retries(attempt, what=f"reservation {reservation_id}")
        self._settle(reservation)
        return self.sessions.start(
            StartRequest(
                start_id=start_id,
                lot_id=reservation.lot_id,
                plate=reservation.plate,
                vehicle_class=VehicleClass(reservation.vehicle_class),
                payment=Payment(paid_until=reservation.window_to),
                payer=Payer(account_id=reservation.account_id),
                started_by=StartedBy.RESERVATION,
            )
        )

    # Helpers

    def _check_window(self, lot: Lot, request: BookRequest, at: datetime) -> None:
        if request.window_from <= at:
            raise InvalidReservation("a reservation's window starts after now")
        if request.window_from > at + limits.RESERVATION_AHEAD:
            days = limits.RESERVATION_AHEAD.days
            raise InvalidReservation(f"a reservation's window starts within {days} days")
        if not lot.open_at(request.window_from):
            raise LotClosed(lot.lot_id, request.window_from)

    def _check_room(self, lot: Lot, request: BookRequest, days: list[str], places: int) -> None:
        """Refuses a window already full before any money is held; the save checks again."""
        if places <= 0:
            raise NoPlaceFree(lot.lot_id, str(request.vehicle_class))
        for day in days:
            known: LotBookings | None = self.store.get_or_none(
                LotBookings.create_id(lot.lot_id, str(request.vehicle_class), day)
            )
            if known is not None:
                known.check_room(request.window_from, request.window_to, places)

    def _bookings(self, lot_id: str, vehicle_class: VehicleClass, day: str) -> LotBookings:
        known: LotBookings | None = self.store.get_or_none(
            LotBookings.create_id(lot_id, str(vehicle_class), day)
        )
        return known if known is not None else LotBookings(lot_id, str(vehicle_class), day)

    def _released(self, reservation: Reservation) -> list[Aggregate]:
        """The lot's bookings with the reservation's window released from each day."""
        released: list[Aggregate] = []
        for day in reservation.days:
            bookings: LotBookings = self.store.repository.get(
                LotBookings.create_id(reservation.lot_id, reservation.vehicle_class, day)
            )
            if bookings.holds(reservation.id):
                bookings.release(reservation.id)
                released.append(bookings)
        return released

    def settle(self, aggregate_id: UUID) -> bool:
        """Moves the money of a closed reservation whose process did not live to; False when
        there was nothing to move."""
        found: Reservation | None = self.store.get_or_none(aggregate_id)
        if not isinstance(found, Reservation) or found.state is ReservationState.BOOKED:
            return False
        if found.settled:
            return False
        self._settle(found)
        return True

    def _settle(self, reservation: Reservation) -> Reservation:
        """Moves the money of a closed reservation, once: its fee posted from the hold and the
        rest released (a fulfilled one releases all of it: its session holds its own)."""
        if reservation.settled:
            return reservation
        fee_vnd = 0 if reservation.state is ReservationState.FULFILLED else reservation.fee_vnd
        moved = self._settle_hold(
            reservation.account_id, reservation.hold_id, reservation.held_vnd, fee_vnd
        )
        posted_vnd = fee_vnd if moved else 0

        def attempt() -> Reservation:
            again = self.get(reservation.reservation_id)
            if not again.settled:
                again.settle(posted_vnd, self.clock())
                self.store.save(again)
            return again

        return save_with_retries(attempt, what=f"reservation {reservation.reservation_id}")

    def _settle_hold(self, account_id: UUID, hold_id: str, held_vnd: int, fee_vnd: int) -> bool:
        """Posts `fee_vnd` of the hold and releases the rest (voids it when 0); False when the
        hold had ended without this step (it expired), so no fee was taken."""
        if held_vnd <= 0:
            return True
        command = (
            PostHold(account_id, hold_id, fee_vnd) if fee_vnd > 0 else VoidHold(account_id, hold_id)
        )
        try:
            # A repeat of this same step is answered by the ledger as the first one was.
            self.ledger.execute(command)
        except (HoldAlreadyResolved, HoldNotFound):
            return fee_vnd == 0
        return True
