"""A bus tap on a route is the alighting of the rider's open ride on that route only when the
rider tapped nothing else in between: a rider who boarded route 01, then route 02, cannot still
be on the route 01 bus, so a later route 01 tap is a new ride, paid as one."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from tests.builders.journeys import BALANCE_VND, BUS_01, BUS_01_REAR, BUS_02, DAY, World, build
from tests.tap_media import Phone
from ticketing.journeys.domain.journey_status import JourneyStatus

ROUTE_FARE_VND = 10_000  # routes 01 and 02 are both in the 15 to 25 km band


def day_of(taps: list[tuple[int, float]]) -> tuple[World, UUID]:
    """A rider's taps (validator, minutes after 08:00) uploaded in the order given, followed,
    and the service day closed."""
    world = build()
    account_id, phone = world.rider()
    ride(world, phone, taps)
    world.follow()
    world.clock.now += timedelta(days=1)
    world.journeys.close_ended_day(DAY)
    return world, account_id


def ride(world: World, phone: Phone, taps: list[tuple[int, float]]) -> None:
    for validator_id, after_min in taps:
        world.tap(phone, validator_id, after_min)


def paid_vnd(world: World, account_id: UUID) -> int:
    posted_vnd, pending_vnd = world.balance(account_id)
    assert pending_vnd == 0
    return BALANCE_VND - posted_vnd


def test_a_route_01_tap_after_boarding_route_02_is_a_new_ride_not_the_first_alighting() -> None:
    world, account_id = day_of([(BUS_01, 0), (BUS_02, 30), (BUS_01, 60)])
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND


def test_a_rider_alternating_two_routes_without_tapping_off_pays_every_boarding() -> None:
    world, account_id = day_of([(BUS_01, 0), (BUS_02, 20), (BUS_01, 40), (BUS_02, 60)])
    assert paid_vnd(world, account_id) == 4 * ROUTE_FARE_VND


def test_an_alighting_uploaded_after_the_next_boarding_still_ends_its_ride() -> None:
    # Off route 01 at 25 min, on route 02 at 30: the rear door uploads the alighting last.
    world, account_id = day_of([(BUS_01, 0), (BUS_02, 30), (BUS_01_REAR, 25), (BUS_02, 50)])
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND
    rides = sorted(
        (leg.route_id, leg.to_stop_id)
        for journey in world.journeys_of(account_id)
        if journey.status is not JourneyStatus.MERGED
        for leg in journey.legs
    )
    assert rides == [("01", "bus-my-dinh"), ("02", "bus-kim-ma")]
