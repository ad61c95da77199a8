"""A bus tap on a route is the alighting of the rider's open ride on that route only when the
rider tapped nothing else in between: a rider who boarded route 01, then route 02, cannot still
be on the route 01 bus, so a later route 01 tap is a new ride, paid as one."""

from __future__ import annotations

import itertools
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.tlc1.records import EventKind
from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_01_REAR,
    BUS_02,
    DAY,
    GATE_IN_01,
    GATE_OUT_12,
    World,
    build,
)
from tests.builders.purse_refunds import PURSE_VND, card_tap, purse_on_card, rider_with_card
from tests.tap_media import Phone
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S
from ticketing.journeys.domain.journey_status import JourneyStatus

ROUTE_FARE_VND = 10_000  # routes 01 and 02 are both in the 15 to 25 km band
RIDE_MAX_MIN = BUS_RIDE_MAX_S // 60
METRO_01_TO_12_VND = 15_000


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


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_boarding_of_another_route_uploaded_late_splits_the_ride_it_happened_during(
    order: tuple[int, ...],
) -> None:
    """On route 02 at 0 min, on route 01 at 10, on route 02 again at 20, never tapping off:
    three rides whatever order the three buses' validators upload them in."""
    taps = [(BUS_02, 0.0), (BUS_01, 10.0), (BUS_02, 20.0)]
    world, account_id = day_of([taps[index] for index in order])
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND


def test_a_ride_split_by_a_late_boarding_is_charged_once_when_followed_again() -> None:
    world, account_id = day_of([(BUS_02, 0), (BUS_02, 20), (BUS_01, 10)])
    assert world.follow_again() == 3
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND


def rides_taken(taps: list[tuple[str, int]]) -> int:
    """The model: taps in time order, a tap on the route of the ride just boarded (with no tap
    between) within the ride limit alights it, any other tap boards a ride."""
    rides, boarded = 0, None
    for route_id, at_min in sorted(taps, key=lambda tap: tap[1]):
        if boarded is not None and boarded[0] == route_id and at_min - boarded[1] <= RIDE_MAX_MIN:
            boarded = None
        else:
            rides, boarded = rides + 1, (route_id, at_min)
    return rides


@st.composite
def days_of_taps(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[int]]:
    """Up to four taps on routes 01 and 02, each 1 to 50 min after the one before, and the
    order they reach the backend in (days with metro taps, near the ride limit and in batches:
    `test_journey_bus_upload_order`)."""
    gaps = draw(st.lists(st.tuples(st.sampled_from(["01", "02"]), st.integers(1, 50)), max_size=4))
    taps = [
        (route_id, sum(gap for _, gap in gaps[: k + 1])) for k, (route_id, _) in enumerate(gaps)
    ]
    return taps, draw(st.permutations(list(range(len(taps)))))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days_of_taps())
def test_every_boarding_on_two_routes_is_paid_once_whatever_the_upload_order(
    day: tuple[list[tuple[str, int]], list[int]],
) -> None:
    taps, order = day
    validators = {"01": BUS_01, "02": BUS_02}
    world, account_id = day_of([(validators[taps[k][0]], taps[k][1]) for k in order])
    assert paid_vnd(world, account_id) == ROUTE_FARE_VND * rides_taken(taps)
    # The ledger and the journeys agree on every dong.
    charged_vnd = sum(journey.charged_vnd for journey in world.journeys_of(account_id))
    assert charged_vnd == paid_vnd(world, account_id)


def test_a_ride_split_by_a_late_tap_and_alighted_again_is_charged_again() -> None:
    """Route 02 at 1 and 4 min paired as one ride and charged; the route 01 boarding at 3 and
    the route 02 alighting at 2 arrive later. The ride's leg is charged a second time under an
    id of its own: the first debit's id again would be answered by the ledger's first receipt."""
    world, account_id = day_of([(BUS_02, 1), (BUS_02, 4), (BUS_01, 3), (BUS_02, 2)])
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND
    charged_vnd = sum(journey.charged_vnd for journey in world.journeys_of(account_id))
    assert charged_vnd == 3 * ROUTE_FARE_VND


@pytest.mark.parametrize(
    "late",
    [
        [(GATE_IN_01, 20), (GATE_OUT_12, 50)],
        [(GATE_OUT_12, 50), (GATE_IN_01, 20)],
    ],
)
def test_a_metro_ride_uploaded_late_splits_the_bus_ride_it_happened_during(
    late: list[tuple[int, float]],
) -> None:
    """On route 01 at 0 min, through line 2A from 20 to 50 min, on route 01 again at 70, never
    tapping off the buses: the gates upload after the bus, whose taps first paired as one ride."""
    world, account_id = day_of([(BUS_01, 0), (BUS_01, 70), *late])
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_purse_rider_switching_routes_without_tapping_off_is_refunded_no_ride() -> None:
    """Each validator took a route's fare from the card's purse at each tap; pairing the last
    route 01 tap as the first ride's alighting refunded one of them to the account."""
    world = build()
    account_id, card = rider_with_card(world)
    for validator_id, after_min in [(BUS_01, 0), (BUS_02, 30), (BUS_01, 60)]:
        card_tap(world, card, validator_id, after_min, EventKind.BUS_BOARDING, ROUTE_FARE_VND)
    world.follow()
    world.clock.now += timedelta(days=1)
    world.journeys.close_ended_day(DAY)
    world.follow()
    assert purse_on_card(card) == PURSE_VND - 3 * ROUTE_FARE_VND
    assert world.balance(account_id) == (BALANCE_VND, 0)
