"""Parking reservations on the product's composition root: booked with a hold of the window's
price, cancelled (free, then for the late fee), missed (the no-show fee, by the sweeper) or taken
up by a session; and a place is never booked twice, however the bookings race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from parking.application.reservations import Booked, BookRequest
from parking.domain.catalogue import LotSpec
from parking.domain.errors import (
    ArrivalOutsideWindow,
    InvalidReservation,
    LotClosed,
    NoPlaceFree,
    RequestIdReused,
    ReservationClosed,
    ReservationNotFound,
    SessionAlreadyOpen,
    StayTooLong,
)
from parking.domain.reservation import (
    ReservationState,
    reservation_aggregate_id,
    reservation_hold_id,
)
from parking.domain.tariff import VehicleClass
from tests.builders.parking import (
    BALANCE_VND,
    DONG_DA_LOT,
    OPERATOR,
    OTHER_PLATE,
    PLATE,
    ParkingWorld,
    parking_world,
)
from tests.builders.product import local_product
from ticketing.accounts.domain.transfer import HoldOutcome

# Dong Da cars: 25,000 VND for each of hours 1-2. Its reservation terms: cancelling is free until
# 60 minutes before the window, then 10,000; a no-show costs 25,000.
TWO_HOURS_VND = 50_000
LATE_CANCEL_VND = 10_000
NO_SHOW_VND = 25_000
THIRD_PLATE = "51F-111.22"
MINUTE_S = 60
HOUR_S = 3600


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        yield built


def test_a_booking_holds_the_price_of_the_window(world: ParkingWorld) -> None:
    reservation = world.book(start_in_hours=2, hours=2).reservation

    assert reservation.state is ReservationState.BOOKED
    assert reservation.held_vnd == TWO_HOURS_VND
    assert reservation.free_cancel_until == reservation.window_from - timedelta(hours=1)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_cancellation_before_the_free_cancel_time_releases_the_whole_hold(
    world: ParkingWorld,
) -> None:
    booked = world.book(start_in_hours=2).reservation
    world.clock.advance(59 * MINUTE_S)

    cancelled = world.parking.reservations.cancel(booked.reservation_id, "cancel-1")

    assert (cancelled.state, cancelled.fee_vnd) == (ReservationState.CANCELLED, 0)
    assert world.balance() == (BALANCE_VND, 0)


def test_a_late_cancellation_posts_the_late_fee_and_releases_the_rest(world: ParkingWorld) -> None:
    booked = world.book(start_in_hours=2).reservation
    world.clock.advance(61 * MINUTE_S)

    cancelled = world.parking.reservations.cancel(booked.reservation_id, "cancel-1")
    again = world.parking.reservations.cancel(booked.reservation_id, "cancel-1")

    assert cancelled.fee_vnd == again.fee_vnd == LATE_CANCEL_VND
    assert world.balance() == (BALANCE_VND - LATE_CANCEL_VND, 0)
    with pytest.raises(ReservationClosed):
        world.parking.reservations.cancel(booked.reservation_id, "cancel-2")


def test_a_no_show_is_charged_by_the_sweeper_once_the_grace_has_run_out(
    world: ParkingWorld,
) -> None:
    booked = world.book(start_in_hours=1).reservation
    world.clock.advance(HOUR_S + 29 * MINUTE_S)
    world.parking.follower.catch_up()
    assert world.parking.sweeper.sweep().no_shows == 0
    world.clock.advance(MINUTE_S)

    report = world.parking.sweeper.sweep()

    assert report.no_shows == 1
    missed = world.parking.reservations.get(booked.reservation_id)
    assert (missed.state, missed.fee_vnd) == (ReservationState.NO_SHOW, NO_SHOW_VND)
    assert world.balance() == (BALANCE_VND - NO_SHOW_VND, 0)
    world.parking.follower.catch_up()
    assert world.parking.sweeper.sweep().no_shows == 0
    assert world.balance() == (BALANCE_VND - NO_SHOW_VND, 0)


def test_an_arrival_starts_a_session_paid_until_the_window_ends(world: ParkingWorld) -> None:
    booked = world.book(start_in_hours=1, hours=2).reservation
    world.clock.advance(HOUR_S + 5 * MINUTE_S)

    started = world.parking.reservations.arrive(booked.reservation_id, "arrive-1")

    session = started.session
    assert (session.started_by, session.paid_until) == ("reservation", booked.window_to)
    assert (session.plate, session.account_id) == (booked.plate, booked.account_id)
    fulfilled = world.parking.reservations.get(booked.reservation_id)
    assert (fulfilled.state, fulfilled.session_id) == (ReservationState.FULFILLED, session.id)
    # The reservation's hold is released; the session holds the price of its own stay.
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)
    transfer = world.container.ledger.get_transfer(booked.hold_id)
    assert transfer is not None
    assert transfer.outcome is HoldOutcome.VOIDED


def test_an_arrival_repeated_with_its_start_id_is_one_session(world: ParkingWorld) -> None:
    booked = world.book(start_in_hours=1).reservation
    world.clock.advance(HOUR_S)
    first = world.parking.reservations.arrive(booked.reservation_id, "arrive-1")

    again = world.parking.reservations.arrive(booked.reservation_id, "arrive-1")

    assert (again.replayed, again.session.id) == (True, first.session.id)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)
    with pytest.raises(ReservationClosed):
        world.parking.reservations.arrive(booked.reservation_id, "arrive-2")


def test_an_arrival_outside_its_window_is_refused(world: ParkingWorld) -> None:
    booked = world.book(start_in_hours=1).reservation
    world.clock.advance(44 * MINUTE_S)
    with pytest.raises(ArrivalOutsideWindow):
        world.parking.reservations.arrive(booked.reservation_id, "too-early")
    world.clock.advance(HOUR_S)  # 30 minutes after the window's start: a no-show now
    with pytest.raises(ArrivalOutsideWindow):
        world.parking.reservations.arrive(booked.reservation_id, "too-late")

    assert world.parking.reservations.get(booked.reservation_id).state is ReservationState.BOOKED
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_an_arrival_while_the_plate_is_parked_is_refused_and_keeps_the_booking(
    world: ParkingWorld,
) -> None:
    booked = world.book(start_in_hours=1).reservation
    world.start(hours=1)
    world.clock.advance(HOUR_S)

    with pytest.raises(SessionAlreadyOpen):
        world.parking.reservations.arrive(booked.reservation_id, "arrive-1")

    assert world.parking.reservations.get(booked.reservation_id).state is ReservationState.BOOKED


def test_the_last_place_is_never_booked_twice(world: ParkingWorld) -> None:
    # The Dong Da lot has two car places.
    world.book(start_in_hours=2, hours=2, plate=PLATE)
    world.book(start_in_hours=3, hours=2, plate=OTHER_PLATE)
    other = world.open_account()

    with pytest.raises(NoPlaceFree):
        world.book(start_in_hours=3.5, hours=1, plate=THIRD_PLATE, account_id=other)

    assert world.balance(other) == (BALANCE_VND, 0)
    assert world.balance() == (BALANCE_VND, 2 * TWO_HOURS_VND)
    # Windows are half-open: one ending at 10:00 and one starting at 10:00 share no instant.
    world.book(start_in_hours=1, hours=1, plate=THIRD_PLATE, account_id=other)
    assert world.balance(other) == (BALANCE_VND, 25_000)


def test_a_booking_refused_at_its_save_voids_the_hold_it_placed(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.book(plate=PLATE)
    world.book(plate=OTHER_PLATE)
    other = world.open_account()
    # As when a racing booking took the place between this one's look and its save.
    monkeypatch.setattr(world.parking.reservations, "_check_room", lambda *_: None)

    with pytest.raises(NoPlaceFree):
        world.book(plate=THIRD_PLATE, account_id=other, reservation_id="loser")

    assert world.balance(other) == (BALANCE_VND, 0)
    hold_id = reservation_hold_id(reservation_aggregate_id("loser"))
    transfer = world.container.ledger.get_transfer(hold_id)
    assert transfer is not None
    assert (transfer.outcome, transfer.amount_vnd) == (HoldOutcome.VOIDED, TWO_HOURS_VND)
    with pytest.raises(ReservationNotFound):
        world.parking.reservations.get("loser")


def test_a_cancelled_place_can_be_booked_again(world: ParkingWorld) -> None:
    first = world.book(plate=PLATE).reservation
    world.book(plate=OTHER_PLATE)
    world.parking.reservations.cancel(first.reservation_id, "cancel-1")

    again = world.book(plate=THIRD_PLATE).reservation

    assert again.state is ReservationState.BOOKED


def test_a_missed_place_is_released_for_the_rest_of_its_window(world: ParkingWorld) -> None:
    world.book(start_in_hours=1, hours=3, plate=PLATE)
    world.book(start_in_hours=1, hours=3, plate=OTHER_PLATE)
    world.clock.advance(HOUR_S + 31 * MINUTE_S)
    world.parking.follower.catch_up()
    assert world.parking.sweeper.sweep().no_shows == 2

    later = world.book(start_in_hours=1, hours=1, plate=THIRD_PLATE).reservation

    assert later.state is ReservationState.BOOKED


def test_the_same_reservation_id_is_one_booking_and_one_hold(world: ParkingWorld) -> None:
    first = world.book(reservation_id="app-rsv-1")
    second = world.book(reservation_id="app-rsv-1")

    assert (first.replayed, second.replayed) == (False, True)
    assert second.reservation.id == first.reservation.id
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)
    with pytest.raises(RequestIdReused):
        world.book(reservation_id="app-rsv-1", plate=OTHER_PLATE)
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)


def test_a_window_over_midnight_meets_the_bookings_of_both_days(world: ParkingWorld) -> None:
    world.parking.catalogue.register_lot(
        LotSpec(
            lot_id="one-place",
            operator_id=OPERATOR,
            name="One place",
            address="Ly Thai To, Hoan Kiem, Hanoi",
            lat=21.0285,
            lon=105.8542,
            opening_hours=None,
            capacity={VehicleClass.CAR: 1},
            table_id="hanoi-iparking",
        )
    )
    # 08:00 now: a window 23:00 to 01:00 and another 00:30 to 02:00 of the next day.
    world.book(lot_id="one-place", start_in_hours=15, hours=2, plate=PLATE)

    with pytest.raises(NoPlaceFree):
        world.book(lot_id="one-place", start_in_hours=16.5, hours=1.5, plate=OTHER_PLATE)
    world.book(lot_id="one-place", start_in_hours=17, hours=1, plate=OTHER_PLATE)


@pytest.mark.parametrize(
    ("start_in_hours", "hours", "error"),
    [
        (0, 1, InvalidReservation),  # starts now, not ahead
        (-1, 2, InvalidReservation),
        (5 * 24 + 1, 1, InvalidReservation),  # too far ahead
        (15, 1, LotClosed),  # 23:00; Dong Da's lot closes at 22:00
        (1, 25, StayTooLong),  # longer than the table's maximum stay
    ],
)
def test_a_window_that_cannot_be_booked_is_refused_and_holds_nothing(
    world: ParkingWorld, start_in_hours: float, hours: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        world.book(start_in_hours=start_in_hours, hours=hours)

    assert world.balance() == (BALANCE_VND, 0)


def test_two_processes_booking_the_last_place_at_once_book_it_once(tmp_path: Path) -> None:
    with parking_world(tmp_path) as world, local_product(tmp_path, clock=world.clock) as other:
        world.book(plate=PLATE)  # one of the lot's two car places is taken
        riders = [world.open_account(), world.open_account()]
        window_from = world.clock() + timedelta(hours=2)
        racing = [world.parking, other.parking]
        barrier = threading.Barrier(2)
        outcomes: list[object] = [None, None]

        def book(index: int) -> None:
            request = BookRequest(
                reservation_id=f"race-{index}",
                lot_id=DONG_DA_LOT,
                vehicle_class=VehicleClass.CAR,
                plate=(OTHER_PLATE, THIRD_PLATE)[index],
                window_from=window_from,
                window_to=window_from + timedelta(hours=2),
                account_id=riders[index],
            )
            barrier.wait()
            try:
                outcomes[index] = racing[index].reservations.book(request)
            except NoPlaceFree as refused:
                outcomes[index] = refused

        threads = [threading.Thread(target=book, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        won = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, Booked)]
        lost = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, NoPlaceFree)]
        assert (len(won), len(lost)) == (1, 1)
        assert world.balance(riders[won[0]]) == (BALANCE_VND, TWO_HOURS_VND)
        assert world.balance(riders[lost[0]]) == (BALANCE_VND, 0)


class Crash(Exception):
    """The process dies here."""


def test_a_cancellation_whose_process_died_before_the_money_is_settled_by_the_sweeper(
    world: ParkingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    booked = world.book(start_in_hours=2).reservation
    world.clock.advance(90 * MINUTE_S)

    def die(*_: object) -> bool:
        raise Crash

    monkeypatch.setattr(world.parking.reservations, "_settle_hold", die)
    with pytest.raises(Crash):
        world.parking.reservations.cancel(booked.reservation_id, "cancel-1")
    monkeypatch.undo()
    assert world.balance() == (BALANCE_VND, TWO_HOURS_VND)
    world.parking.follower.catch_up()

    report = world.parking.sweeper.sweep()

    assert report.settled == 1
    settled = world.parking.reservations.get(booked.reservation_id)
    assert (settled.settled, settled.posted_vnd) == (True, LATE_CANCEL_VND)
    assert world.balance() == (BALANCE_VND - LATE_CANCEL_VND, 0)
    world.parking.follower.catch_up()
    assert world.parking.sweeper.sweep().settled == 0
