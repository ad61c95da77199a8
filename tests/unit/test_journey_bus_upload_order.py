"""A rider's day of bus taps costs the same whatever order the validators upload them in.

Each bus's validators and each metro gate upload on their own schedules, so the backend sees a
rider's taps in any order. The charge for the day must be the charge for the taps in the order
they happened: a bus tap on the route of the ride just boarded, with no tap between and within
`BUS_RIDE_MAX_S` of its boarding, is its alighting; any other bus tap boards a ride; a metro
trip (or an exit whose entry never came) between two bus taps ends the ride before it.
"""

from __future__ import annotations

import itertools

import pytest

from tests.builders.journeys import BUS_01, BUS_01_REAR, BUS_02, GATE_OUT_12
from tests.unit.test_journey_bus_rides_between import day_of, paid_vnd
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S

ROUTE_FARE_VND = 10_000  # routes 01 and 02 are both in the 15 to 25 km band
# An exit at 2A-12 whose entry never came: the most a ride to 2A-12 costs (from 2A-01).
LONE_EXIT_12_VND = 15_000
RIDE_MAX_MIN = BUS_RIDE_MAX_S // 60


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_an_alighting_near_the_ride_limit_uploaded_after_the_next_boarding_ends_its_ride(
    order: tuple[int, ...],
) -> None:
    """On route 01 at 0 min, off 10 min before the ride limit, on again 20 min after it, off
    50 min later: two rides, whichever tap the rear door uploads last."""
    taps = [
        (BUS_01, 0),
        (BUS_01_REAR, RIDE_MAX_MIN - 10),
        (BUS_01, RIDE_MAX_MIN + 20),
        (BUS_01_REAR, RIDE_MAX_MIN + 70),
    ]
    world, account_id = day_of([taps[index] for index in order])
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND


def test_two_routes_boarded_without_tapping_off_cost_the_same_in_a_scrambled_upload() -> None:
    """Route 02 at 10 and 20 min (one ride, tapped off), route 01 at 30, route 02 at 40, route
    01 at 50, none tapped off: four rides, also when uploaded 20, 40, 50, 10, 30."""
    at = {1: (BUS_02, 10), 2: (BUS_02, 20), 3: (BUS_01, 30), 4: (BUS_02, 40), 5: (BUS_01, 50)}
    world, account_id = day_of([at[k] for k in (2, 4, 5, 1, 3)])
    assert paid_vnd(world, account_id) == 4 * ROUTE_FARE_VND


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_metro_exit_without_its_entry_between_two_bus_taps_ends_the_ride_before_it(
    order: tuple[int, ...],
) -> None:
    """On route 01 at 0 min, out of the metro at 2A-12 at 30 (the entry tap lost), on route 01
    at 60: the rider left the bus to ride the metro, so two bus rides and the exit's fare."""
    taps = [(BUS_01, 0), (GATE_OUT_12, 30), (BUS_01, 60)]
    world, account_id = day_of([taps[index] for index in order])
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + LONE_EXIT_12_VND
