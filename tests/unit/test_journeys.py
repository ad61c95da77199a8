"""Journeys on the Hanoi feed, in memory: taps in, holds and postings on the ledger out."""

from __future__ import annotations

import pytest

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    DAY,
    GATE_IN_01,
    GATE_IN_09,
    GATE_IN_99,
    GATE_OUT_01,
    GATE_OUT_02,
    GATE_OUT_12,
    World,
    build,
)
from ticketing.journeys.domain.journey_status import JourneyStatus


@pytest.fixture
def world() -> World:
    return build()


def test_metro_entry_holds_the_maximum_fare_and_the_exit_posts_the_real_one(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 15_000)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 15_000, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd, row.charged_vnd) == ("ended", 15_000, 15_000)
    assert [(leg["from_stop_id"], leg["to_stop_id"]) for leg in row.legs] == [("2A-01", "2A-12")]


def test_short_2a_trip_posts_its_fare_and_releases_the_rest_of_the_hold(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.tap(phone, GATE_OUT_02, 5)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 8_000, 0)


def test_bus_boarding_then_alighting_debits_the_route_fare(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    world.tap(phone, BUS_01, 20)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 10_000, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd) == ("ended", 10_000)


def test_free_category_rider_is_priced_and_recorded_but_pays_nothing(world: World) -> None:
    account_id, phone = world.rider(category=2)  # elderly
    world.tap(phone, GATE_IN_01, 0)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    [journey] = world.journeys_of(account_id)
    assert journey.status is JourneyStatus.ENDED
    assert (journey.fare_vnd, journey.reference_vnd) == (0, 15_000)


def test_bus_then_metro_within_an_hour_gets_the_transfer_discount(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01, 0)
    world.tap(phone, BUS_01, 20)
    world.tap(phone, GATE_IN_09, 40)
    world.tap(phone, GATE_OUT_01, 70)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - (10_000 + 12_000 - 3_000), 0)
    [journey] = world.journeys_of(account_id)
    assert len(journey.legs) == 2
    assert journey.transfer_discount_vnd == 3_000


def test_following_again_from_the_start_posts_nothing_twice(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, BUS_01, 0)
    world.tap(phone, BUS_01, 20)
    world.tap(phone, GATE_IN_09, 40)
    world.tap(phone, GATE_OUT_01, 70)
    world.follow()
    after = world.balance(account_id)
    assert world.follow_again() == 4
    assert world.balance(account_id) == after
    assert world.journeys.catch_up() == 0


def test_exit_uploaded_before_its_entry_waits_and_pairs_when_the_entry_arrives(
    world: World,
) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    [waiting] = world.views.for_account(account_id)
    assert waiting.status == "exit_pending"
    assert world.balance(account_id) == (BALANCE_VND, 0)
    # The entry gate's outbox drains later; its tap happened before the exit.
    seq = world.seq
    world.seq = 1000
    world.tap(phone, GATE_IN_01, 0)
    world.seq = seq
    world.follow()
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd) == ("ended", 15_000)
    assert world.balance(account_id) == (BALANCE_VND - 15_000, 0)


def test_day_end_charges_an_open_entry_the_maximum_and_a_late_exit_refunds(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    assert world.journeys.close_service_day(DAY) == 1
    assert world.journeys.close_service_day(DAY) == 0
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 15_000, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd) == ("closed", 15_000)
    world.tap(phone, GATE_OUT_02, 5)  # uploaded after the close
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 8_000, 0)
    [row] = world.views.for_account(account_id)
    assert (row.status, row.fare_vnd, row.charged_vnd) == ("ended", 8_000, 8_000)


def test_day_end_charges_an_exit_that_never_found_its_entry(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_OUT_02, 30)
    world.follow()
    assert world.journeys.close_service_day(DAY) == 1
    # The dearest way to reach 2A-02 is from Yên Nghĩa (2A-12), 12 km away.
    assert world.balance(account_id) == (BALANCE_VND - 14_000, 0)


def test_entry_at_a_stop_the_feed_does_not_know_is_refused_with_a_reason(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_99, 0)
    world.follow()
    [row] = world.views.for_account(account_id)
    assert (row.status, row.reason_code) == ("refused", "unknown_stop")
    assert row.reason is not None
    assert "2A-99" in row.reason
    assert world.balance(account_id) == (BALANCE_VND, 0)
    assert row.fare_vnd is None
