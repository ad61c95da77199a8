"""One rider's bus taps on one route, uploaded in any order, pair as they would in order.

The validators at a bus's doors upload on their own schedules, so a rider's boarding and
alighting reach the backend in any order. Whatever the order, each tap pairs with the next one
in time (boarding, alighting, boarding, ...), as if every tap had been uploaded at once.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders.journeys import BALANCE_VND, BUS_01, BUS_01_REAR, DAY, World, build
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import Leg

ROUTE_01_FARE_VND = 10_000
MINUTES_APART = 10
Legs = list[tuple[str | None, str | None]]


def ride(times_min: list[int], order: list[int]) -> tuple[Legs, World, UUID]:
    """Taps at `times_min`, uploaded in `order`; the legs as (boarding, alighting) times."""
    world = build()
    account_id, phone = world.rider()
    for index in order:
        door = BUS_01 if index % 2 == 0 else BUS_01_REAR
        world.tap(phone, door, times_min[index])
    world.follow()
    legs = [
        (leg["departure"], leg["arrival"])
        for journey in world.journeys_of(account_id)
        if journey.status is not JourneyStatus.MERGED
        # In their stored form, times as ISO strings: as the journeys' read model shows them.
        for leg in map(Leg.stored, journey.legs)
    ]
    return sorted(legs, key=str), world, account_id


def in_order(count: int) -> Legs:
    return ride([MINUTES_APART * k for k in range(count)], list(range(count)))[0]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_four_taps_in_any_upload_order_make_the_same_two_rides(order: tuple[int, ...]) -> None:
    times = [MINUTES_APART * k for k in range(4)]
    legs, world, account_id = ride(times, list(order))
    assert legs == in_order(4)
    assert all(boarding and alighting for boarding, alighting in legs)
    # Two rides of route 01, whichever way they were joined and priced.
    assert world.balance(account_id) == (BALANCE_VND - 2 * ROUTE_01_FARE_VND, 0)


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(5))))
def test_five_taps_in_any_upload_order_pair_as_in_order(order: list[int]) -> None:
    times = [MINUTES_APART * k for k in range(5)]
    assert ride(times, order)[0] == in_order(5)


def test_a_boarding_uploaded_after_its_ride_ended_leaves_the_old_alighting_open() -> None:
    # Taps at 0, 10 and 20 minutes; the first reaches the backend last.
    legs, world, account_id = ride([0, 10, 20], [1, 2, 0])
    assert [alighting is None for _, alighting in legs] == [False, True]
    assert legs == in_order(3)
    # One ride priced; the open one is charged when it ends or at day end.
    assert world.balance(account_id) == (BALANCE_VND - ROUTE_01_FARE_VND, 0)


def test_following_again_after_a_repair_charges_and_pairs_nothing_twice() -> None:
    legs, world, account_id = ride([0, 10, 20, 30], [3, 1, 0, 2])
    after = world.balance(account_id)
    assert world.follow_again() == 4
    assert world.balance(account_id) == after
    world.follow()
    rows = world.views.for_account(account_id)
    shown = sorted(
        ((leg["departure"], leg["arrival"]) for row in rows for leg in row.legs), key=str
    )
    assert shown == legs == in_order(4)


def test_a_tap_hours_after_a_boarding_on_the_same_route_is_the_next_ride_and_paid_as_one() -> None:
    """A rider who never taps off, riding route 01 to work and home again, pays two rides: the
    evening tap is no alighting of a morning ride longer than any bus ride."""
    world = build()
    account_id, phone = world.rider()
    world.tap(phone, BUS_01, 0)
    world.tap(phone, BUS_01, 9 * 60)
    world.follow()
    journeys = world.journeys_of(account_id)
    assert [(j.status, len(j.legs)) for j in journeys] == [(JourneyStatus.OPEN, 1)] * 2
    world.clock.now += timedelta(days=1)
    world.journeys.close_ended_day(DAY)
    assert world.balance(account_id) == (BALANCE_VND - 2 * ROUTE_01_FARE_VND, 0)
