"""A rider's metro rides (and a bus ride after one), their taps uploaded in any order, pair and
are charged as they would be in order.

Entry and exit gates are separate devices, each uploading its outbox on its own schedule, so an
exit can reach the backend before its entry, or after a later ride's exit. An exit that happened
during a ride already paired with a later exit ends that ride instead, and the later exit is
applied again; an entry takes the first waiting exit after it; a newer entry keeps the older open
ride reachable for its late exit.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_01_REAR,
    GATE_IN_01,
    GATE_IN_09,
    GATE_OUT_01,
    GATE_OUT_02,
    GATE_OUT_12,
    build,
)
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import Leg

ROUTE_01_FARE_VND = 10_000
CAT_LINH_TO_YEN_NGHIA_VND = 15_000
# In at Cát Linh, out at Yên Nghĩa; in at 2A-09, out at Cát Linh.
RIDES = [(GATE_IN_01, 0), (GATE_OUT_12, 30), (GATE_IN_09, 40), (GATE_OUT_01, 70)]
TWO_HOURS_LATER = [
    (gate, minutes + (120 if index >= 2 else 0)) for index, (gate, minutes) in enumerate(RIDES)
]
Outcome = tuple[list[tuple[str | None, str | None, str | None, str | None]], tuple[int, int]]


def ride(taps: list[tuple[int, int]], order: tuple[int, ...]) -> Outcome:
    """The rider's legs (from, to, departure, arrival) and balance (posted, held)."""
    world = build()
    account_id, phone = world.rider()
    for index in order:
        gate, minutes = taps[index]
        world.tap(phone, gate, minutes)
    world.follow()
    legs = [
        (leg["from_stop_id"], leg["to_stop_id"], leg["departure"], leg["arrival"])
        for journey in world.journeys_of(account_id)
        if journey.status is not JourneyStatus.MERGED
        # In their stored form, times as ISO strings: as the journeys' read model shows them.
        for leg in map(Leg.stored, journey.legs)
    ]
    return sorted(legs, key=str), world.balance(account_id)


@pytest.mark.parametrize("taps", [RIDES, TWO_HOURS_LATER], ids=["40 min apart", "2 h apart"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_two_metro_rides_in_any_upload_order_are_the_rides_taken(
    taps: list[tuple[int, int]], order: tuple[int, ...]
) -> None:
    in_order = ride(taps, (0, 1, 2, 3))
    assert [(leg[0], leg[1]) for leg in in_order[0]] == [("2A-01", "2A-12"), ("2A-09", "2A-01")]
    assert ride(taps, order) == in_order


# A third ride, in at Cát Linh again and out at La Thành.
THREE_RIDES = [*RIDES, (GATE_IN_01, 80), (GATE_OUT_02, 90)]
# A metro ride, then a bus ride of route 01 ten minutes after it.
METRO_THEN_BUS = [(GATE_IN_01, 0), (GATE_OUT_12, 30), (BUS_01, 40), (BUS_01_REAR, 60)]


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(6))))
def test_three_metro_rides_in_any_upload_order_are_the_rides_taken(order: list[int]) -> None:
    assert ride(THREE_RIDES, tuple(order)) == ride(THREE_RIDES, tuple(range(6)))


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_metro_ride_then_a_bus_ride_in_any_upload_order_are_the_rides_taken(
    order: tuple[int, ...],
) -> None:
    assert ride(METRO_THEN_BUS, order) == ride(METRO_THEN_BUS, (0, 1, 2, 3))


# A bus ride of route 01, then a metro ride ten minutes later: a transfer the feed discounts.
BUS_THEN_METRO = [(BUS_01, 0), (BUS_01_REAR, 20), (GATE_IN_01, 30), (GATE_OUT_12, 60)]
BUS_TO_METRO_DISCOUNT_VND = 3_000


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_bus_ride_then_a_metro_ride_in_any_upload_order_get_the_transfer_discount(
    order: tuple[int, ...],
) -> None:
    in_order = ride(BUS_THEN_METRO, (0, 1, 2, 3))
    posted_vnd, held_vnd = in_order[1]
    assert (posted_vnd, held_vnd) == (
        BALANCE_VND - ROUTE_01_FARE_VND - CAT_LINH_TO_YEN_NGHIA_VND + BUS_TO_METRO_DISCOUNT_VND,
        0,
    )
    assert ride(BUS_THEN_METRO, order) == in_order


def test_a_transfer_found_late_leaves_the_later_journey_merged_and_its_money_returned() -> None:
    world = build()
    account_id, phone = world.rider()
    # The metro gates upload at once; the bus's validator comes back online later.
    for index in (2, 3, 0, 1):
        gate, minutes = BUS_THEN_METRO[index]
        world.tap(phone, gate, minutes)
    world.follow()
    rows = {row.status: row for row in world.views.for_account(account_id)}
    assert set(rows) == {"ended", "merged"}
    merged, whole = rows["merged"], rows["ended"]
    assert (merged.fare_vnd, merged.charged_vnd, merged.reason_code) == (0, 0, "merged")
    assert [leg["mode"] for leg in whole.legs] == ["bus", "metro"]
    assert (
        whole.charged_vnd
        == whole.fare_vnd
        == (ROUTE_01_FARE_VND + CAT_LINH_TO_YEN_NGHIA_VND - BUS_TO_METRO_DISCOUNT_VND)
    )
