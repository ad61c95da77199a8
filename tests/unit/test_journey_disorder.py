"""Journeys when the world misbehaves: fares the feed cannot price, taps uploaded out of order or
after their day was closed, and closing a service day from the use case."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_01_REAR,
    DAY,
    GATE_IN_01,
    GATE_OUT_02,
    GATE_OUT_12,
    GATE_OUT_99,
    START,
    World,
    build,
)
from tests.tap_media import Phone
from ticketing.accounts.domain.transfer import HoldOutcome
from ticketing.journeys.application.charges import transfer_id
from ticketing.journeys.application.journeys import Journeys
from ticketing.journeys.domain.journey_errors import ServiceDayNotEnded
from ticketing.journeys.domain.journey_status import JourneyStatus

BUS_01_FARE_VND = 10_000
# 05:00 in Hanoi the next day: service day DAY (04:00 to 04:00) has ended.
AFTER_DAY = START + timedelta(hours=21)


@pytest.fixture
def world() -> World:
    return build()


def late(world: World, phone: Phone, validator_id: int, after_min: float) -> None:
    """A tap that happened `after_min` after START, uploaded only now (a later seq)."""
    seq = world.seq
    world.seq += 1000
    world.tap(phone, validator_id, after_min)
    world.seq = seq


# Refused at exit


def test_an_exit_the_feed_cannot_price_refuses_the_journey_and_voids_its_hold(
    world: World,
) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 15_000)
    world.tap(phone, GATE_OUT_99, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.reason_code, row.fare_vnd, row.charged_vnd) == (
        "refused",
        "unknown_stop",
        None,
        0,
    )
    assert row.reason is not None
    assert "2A-99" in row.reason
    [journey] = world.journeys_of(account_id)
    hold = world.ledger.get_transfer(transfer_id(journey, "hold:0"))
    assert hold is not None
    assert hold.outcome is HoldOutcome.VOIDED
    assert journey.hold_id is None


def test_refused_journeys_are_listed_for_every_account(world: World) -> None:
    first, first_phone = world.rider()
    second, second_phone = world.rider()
    world.tap(first_phone, GATE_IN_01, 0)
    world.tap(first_phone, GATE_OUT_99, 30)
    world.tap(second_phone, GATE_IN_01, 40)
    world.tap(second_phone, GATE_OUT_12, 70)
    world.follow()
    refused = world.views.with_status(JourneyStatus.REFUSED)
    assert [r.account_id for r in refused] == [first]
    assert world.views.with_status(JourneyStatus.REFUSED, account_id=second) == []


def test_a_refused_journey_reapplied_voids_its_hold_once(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.tap(phone, GATE_OUT_99, 30)
    world.follow()
    again = build_again(world)
    assert again.catch_up() == 2
    assert world.balance(account_id) == (BALANCE_VND, 0)


# Out of order


def test_a_bus_alighting_uploaded_before_its_boarding_charges_one_fare(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01_REAR, 25)  # the rear door's validator uploads first
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    late(world, phone, BUS_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - BUS_01_FARE_VND, 0)
    [row] = world.views.for_account(account_id)
    assert row.status == "ended"
    [leg] = row.legs
    assert (leg["from_stop_id"], leg["to_stop_id"]) == ("bus-kim-ma", "bus-my-dinh")
    # Nothing left open for the day-end close to charge again.
    world.clock.now = AFTER_DAY
    assert world.journeys.close_ended_day() == (DAY, 0)
    assert world.balance(account_id) == (BALANCE_VND - BUS_01_FARE_VND, 0)


def test_a_bus_tap_hours_before_an_open_boarding_is_a_ride_of_its_own(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01_REAR, 300)
    late(world, phone, BUS_01, 0)
    world.follow()
    assert [r.status for r in world.views.for_account(account_id)] == ["open", "open"]


def test_a_bus_boarding_uploaded_after_the_day_closed_corrects_the_closed_ride(
    world: World,
) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01_REAR, 25)
    world.follow()
    world.clock.now = AFTER_DAY
    assert world.journeys.close_ended_day() == (DAY, 1)
    world.view_follower.catch_up()
    assert world.balance(account_id) == (BALANCE_VND - BUS_01_FARE_VND, 0)
    late(world, phone, BUS_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - BUS_01_FARE_VND, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd, row.charged_vnd) == ("ended", 10_000, 10_000)


def test_a_metro_entry_uploaded_after_the_day_closed_corrects_the_exit_charged_the_maximum(
    world: World,
) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_OUT_02, 30)
    world.follow()
    world.clock.now = AFTER_DAY
    assert world.journeys.close_ended_day() == (DAY, 1)
    assert world.balance(account_id) == (BALANCE_VND - 14_000, 0)
    late(world, phone, GATE_IN_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 8_000, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd, row.charged_vnd) == ("ended", 8_000, 8_000)


def test_a_late_entry_with_no_exit_is_held_and_closed_by_the_next_close(world: World) -> None:
    account_id, phone = world.rider()
    world.clock.now = AFTER_DAY
    assert world.journeys.close_ended_day() == (DAY, 0)
    late(world, phone, GATE_IN_01, 0)  # of the day already closed
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 15_000)
    world.clock.now = AFTER_DAY + timedelta(days=1)
    assert world.journeys.close_ended_day() == (DAY + timedelta(days=1), 1)
    assert world.balance(account_id) == (BALANCE_VND - 15_000, 0)


# Closing a service day


def test_closing_a_day_twice_closes_nothing_more(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    world.clock.now = AFTER_DAY
    assert world.journeys.close_ended_day(DAY) == (DAY, 1)
    world.view_follower.catch_up()
    assert world.journeys.close_ended_day(DAY) == (DAY, 0)
    assert world.balance(account_id) == (BALANCE_VND - 15_000, 0)


def test_the_default_day_to_close_is_the_one_that_ended_last(world: World) -> None:
    world.clock.now = START + timedelta(hours=2, minutes=59)  # 03:59 the next day in Hanoi
    assert world.journeys.last_ended_day() == DAY - timedelta(days=1)
    world.clock.now = START + timedelta(hours=20)  # 04:00 the next day in Hanoi
    assert world.journeys.last_ended_day() == DAY


@pytest.mark.parametrize("day", [DAY, DAY + timedelta(days=1)])
def test_a_service_day_not_yet_ended_is_not_closed(world: World, day: date) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    with pytest.raises(ServiceDayNotEnded):
        world.journeys.close_ended_day(day)
    assert world.balance(account_id) == (BALANCE_VND, 15_000)


def build_again(world: World) -> Journeys:
    """A second follower over the same stores with no position, as after losing its own."""
    return Journeys(
        taps=world.taps,
        ledger=world.ledger,
        cards=world.cards,
        smart_cards=world.journeys.smart_cards,
        fares=world.journeys.fares,
        open_journeys=world.views.open_journeys,
    )
