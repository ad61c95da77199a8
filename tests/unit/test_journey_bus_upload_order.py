"""A rider's day of bus taps costs the same whatever order the validators upload them in.

Each bus's validators and each metro gate upload on their own schedules, so the backend sees a
rider's taps in any order. The charge for the day must be the charge for the taps in the order
they happened: a bus tap on the route of the ride just boarded, with no tap between and within
`BUS_RIDE_MAX_S` of its boarding, is its alighting; any other bus tap boards a ride; a metro
trip (or an exit whose entry never came) between two bus taps ends the ride before it.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.builders.journeys import (
    BUS_01,
    BUS_01_REAR,
    BUS_02,
    DAY,
    GATE_IN_01,
    GATE_OUT_12,
    World,
    build,
)
from tests.unit.test_journey_bus_rides_between import day_of, paid_vnd
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S

ROUTE_FARE_VND = 10_000  # routes 01 and 02 are both in the 15 to 25 km band
# An exit at 2A-12 whose entry never came: the most a ride to 2A-12 costs (from 2A-01).
LONE_EXIT_12_VND = 15_000
METRO_01_TO_12_VND = 15_000
BUS_TO_METRO_DISCOUNT_VND = 3_000
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


def test_a_scrambled_day_followed_again_is_charged_once() -> None:
    """Every tap applied again (a follower that lost its position): the undone and re-applied
    legs meet their own ledger steps, which move no money twice."""
    at = {1: (BUS_02, 10), 2: (BUS_02, 20), 3: (BUS_01, 30), 4: (BUS_02, 40), 5: (BUS_01, 50)}
    world, account_id = day_of([at[k] for k in (2, 4, 5, 1, 3)])
    assert world.follow_again() == 5
    world.follow()
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


def test_an_exit_uploaded_first_takes_the_discount_after_a_second_bus_ride() -> None:
    """Two rides on route 01 in one journey, tapped off at 4 min, then the metro from 5 to
    10 min, its exit gate uploading first: the trip is the second ride's transfer."""
    taps = [(BUS_01, 1), (BUS_01_REAR, 2), (BUS_01, 3), (BUS_01_REAR, 4), (GATE_OUT_12, 10)]
    world, account_id = day_of([*taps, (GATE_IN_01, 5)])
    assert (
        paid_vnd(world, account_id)
        == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


def test_a_ride_never_tapped_off_between_a_bus_ride_and_the_metro_takes_the_discount_away() -> None:
    """Route 02 from 50 to 51 min, route 01 boarded at 74 and never tapped off, the metro from
    101 to 112: the route 01 ride was the rider's next move, so the metro trip is no transfer
    from route 02, also when the route 02 ride and the metro entry reach the backend last."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 74),
        (GATE_OUT_12, 112),
        (BUS_02, 50),
        (BUS_02, 51),
        (GATE_IN_01, 101),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_boarding_uploaded_after_the_metro_trip_it_preceded_takes_its_discount_away() -> None:
    """Route 01 tapped off at 107 min, boarded again at 119 and never tapped off, the metro from
    120 to 125: the trip was priced as the first ride's transfer before the 119 boarding came."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 91),
        (GATE_OUT_12, 125),
        (BUS_01_REAR, 107),
        (GATE_IN_01, 120),
        (BUS_01, 119),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_boarding_uploaded_during_the_metro_trip_it_preceded_takes_its_discount_away() -> None:
    """Route 01 from 1 to 2 min, boarded again at 3 and never tapped off, the metro from 4 to
    9: the 3 min boarding reaches the backend while the trip is open, joined to the first ride."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01_REAR, 2),
        (GATE_IN_01, 4),
        (BUS_01, 3),
        (GATE_OUT_12, 9),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_ride_merged_into_the_one_before_still_takes_the_metro_trip_after_it() -> None:
    """Route 01 from 1 to 2 min and from 3 to 4, the metro from 5 to 10; the 3 min boarding
    comes last, so its ride joins the first and the trip must then join them as its transfer."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01_REAR, 2),
        (BUS_01_REAR, 4),
        (GATE_IN_01, 5),
        (GATE_OUT_12, 10),
        (BUS_01, 3),
    ]
    world, account_id = day_of(taps)
    assert (
        paid_vnd(world, account_id)
        == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


def test_an_alighting_uploaded_late_during_a_ride_before_the_metro_ends_that_ride() -> None:
    """Route 01 from 3 to 4 min, boarded again at 5 and never tapped off, the metro from 6 to
    11: the 4 min alighting comes last, after 3 and 5 paired as one ride and the trip joined."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 3),
        (BUS_01, 5),
        (GATE_IN_01, 6),
        (BUS_01_REAR, 4),
        (GATE_OUT_12, 11),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_boarding_uploaded_late_before_a_ride_a_metro_transfer_follows_ends_it() -> None:
    """Route 01 at 1, 2, 3, 4 and 5 min, the metro from 6 to 11: rides 1-2 and 3-4, a ride
    boarded at 5 that the metro entry follows (no transfer). Uploaded with the 3 min tap last,
    4-5 was first paired as a ride and the trip priced as its transfer."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01, 2),
        (BUS_01, 4),
        (BUS_01, 5),
        (GATE_IN_01, 6),
        (GATE_OUT_12, 11),
        (BUS_01, 3),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_metro_exit_uploaded_late_during_a_ride_that_a_transfer_follows_ends_the_transfer() -> (
    None
):
    """Route 02 at 1 min, a metro exit whose entry never came at 2, route 02 again at 3, the
    metro from 4 to 9: the exit ends the ride boarded at 1, so 3 boards a ride and the trip
    after it is no transfer. Uploaded with the exit last, 1-3 was first a ride and the trip
    its transfer."""
    taps: list[tuple[int, float]] = [
        (BUS_02, 1),
        (BUS_02, 3),
        (GATE_IN_01, 4),
        (GATE_OUT_12, 9),
        (GATE_OUT_12, 2),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * ROUTE_FARE_VND + LONE_EXIT_12_VND + METRO_01_TO_12_VND


@pytest.mark.parametrize("next_route", [BUS_01, BUS_02])
def test_a_bus_ride_after_a_metro_transfer_leaves_its_discount_in_any_upload_order(
    next_route: int,
) -> None:
    """Route 01 from 1 to 2 min, the metro from 3 to 8 (its transfer), a bus boarded at 9 and
    never tapped off. Uploaded with the 9 min boarding before a tap of the trip, the boarding
    joined the first ride's journey as its transfer, or took the trip as its own; the trip
    then lost its discount. Every order of the five taps costs the same."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01_REAR, 2),
        (GATE_IN_01, 3),
        (GATE_OUT_12, 8),
        (next_route, 9),
    ]
    due_vnd = 2 * ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    wrong = {}
    for order in itertools.permutations(taps):
        world, account_id = day_of(list(order))
        if (paid := paid_vnd(world, account_id)) != due_vnd:
            wrong[order] = paid
    assert wrong == {}


def test_a_bus_ride_uploaded_late_between_two_metro_trips_takes_the_second_as_its_transfer() -> (
    None
):
    """Route 01 from 1 to 2 min, the metro from 3 to 8, route 01 from 9 to 10, the metro from
    11 to 16: each trip is the transfer of the ride before it. Uploaded with the 9-10 ride
    after the second entry, both trips were first one journey and the second had no discount."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01_REAR, 2),
        (GATE_IN_01, 3),
        (GATE_OUT_12, 8),
        (GATE_IN_01, 11),
        (BUS_01_REAR, 10),
        (BUS_01, 9),
        (GATE_OUT_12, 16),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 2 * (
        ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


def test_an_exit_uploaded_late_splits_a_trip_of_a_journey_gone_on_to_a_bus_ride() -> None:
    """Three metro trips (1-6, 8-13, 15-20), each after a bus ride never tapped off (7, 14),
    and a last ride boarded at 21. The 21 boarding joined the trip 8-20 as its transfer before
    the 13 exit split that trip: the exit must still find it."""
    taps: list[tuple[int, float]] = [
        (GATE_IN_01, 1),
        (BUS_01, 14),
        (GATE_OUT_12, 20),
        (BUS_01, 7),
        (BUS_01, 21),
        (GATE_OUT_12, 13),
        (GATE_IN_01, 8),
        (GATE_OUT_12, 6),
        (GATE_IN_01, 15),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 3 * ROUTE_FARE_VND + 3 * METRO_01_TO_12_VND


def test_a_boarding_uploaded_last_splits_a_ride_whose_transfer_went_on_to_a_bus_ride() -> None:
    """Route 01 at 1 min, route 02 at 2, route 01 at 3, the metro from 4 to 9, route 01 at 10,
    none tapped off: four rides and a trip with no discount. With 1 and 2 uploaded last, 1-3
    was first a ride tapped off, the trip its transfer and the 10 boarding part of that
    journey; the 2 boarding then took the trip away, and its ride at 3 must still be charged."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 10),
        (BUS_01, 3),
        (GATE_IN_01, 4),
        (GATE_OUT_12, 9),
        (BUS_01, 1),
        (BUS_02, 2),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 4 * ROUTE_FARE_VND + METRO_01_TO_12_VND


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_metro_entry_never_exited_after_a_tap_off_keeps_its_discount_in_any_upload_order(
    order: tuple[int, ...],
) -> None:
    """Route 01 from 1 to 2 min, into the metro at 3 and no exit: the day-end close charges
    the trip's maximum as the ride's transfer, also when the entry reached the backend before
    the tap-off (the open trip then moves into the ride's journey, its hold placed again)."""
    taps: list[tuple[int, float]] = [(BUS_01, 1), (BUS_01_REAR, 2), (GATE_IN_01, 3)]
    world, account_id = day_of([taps[index] for index in order])
    assert (
        paid_vnd(world, account_id)
        == ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


def test_a_trip_moved_off_by_a_late_boarding_still_meets_its_exit() -> None:
    """Route 01 at 1, 2, 3, 4 and 5 min (rides 1-2 and 3-4, a ride boarded at 5), the metro
    from 6 to 11, route 01 at 12: four rides and a trip with no discount. The 5 min boarding
    moved the open trip off the ride before it while another ride was the rider's open one:
    the trip must stay known, for its exit and for the taps around it."""
    taps: list[tuple[int, float]] = [
        (GATE_IN_01, 6),
        (BUS_01, 2),
        (BUS_01, 3),
        (BUS_01, 12),
        (BUS_01, 5),
        (BUS_01, 1),
        (GATE_OUT_12, 11),
        (BUS_01, 4),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 4 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_a_boarding_uploaded_last_before_a_metro_trip_takes_no_later_transfer_away() -> None:
    """Route 01 boarded at 1 min, the metro from 2 to 7, route 01 from 8 to 9, the metro from
    10 to 15 (the 8-9 ride's transfer). The 1 min boarding, uploaded last, is within a ride's
    length of the 8 min one, but the first trip between keeps them apart: the second trip
    keeps its discount."""
    taps: list[tuple[int, float]] = [
        (GATE_IN_01, 2),
        (GATE_OUT_12, 7),
        (BUS_01, 8),
        (BUS_01_REAR, 9),
        (GATE_IN_01, 10),
        (GATE_OUT_12, 15),
        (BUS_01, 1),
    ]
    world, account_id = day_of(taps)
    assert (
        paid_vnd(world, account_id)
        == 2 * ROUTE_FARE_VND + 2 * METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


def test_a_tap_off_uploaded_last_re_pairs_the_rides_of_a_journey_gone_on_into_the_metro() -> None:
    """Route 01 rides 1-2, 8-9, 10-11 and 186-190 (within the ride limit of 8), a ride boarded
    at 191 and never tapped off, into the metro at 192 and no exit: five rides and a trip with
    no discount. With the 9 min tap-off last, the journey holding the rides it re-pairs had
    already taken the open trip: the trip moves off first, and no discount is left behind."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01, 2),
        (BUS_01, 8),
        (GATE_IN_01, 192),
        (BUS_01, 10),
        (BUS_01, 11),
        (BUS_01, 186),
        (BUS_01, 190),
        (BUS_01, 191),
        (BUS_01, 9),
    ]
    world, account_id = day_of(taps)
    assert paid_vnd(world, account_id) == 5 * ROUTE_FARE_VND + METRO_01_TO_12_VND


def test_an_entry_joins_the_journey_that_ended_just_before_it_not_the_book_s_last_one() -> None:
    """Route 01 rides 1-2, 3-4 and 5-6 and a boarding at 7, route 02 from 8 to 9, into the
    metro at 10 and no exit: the trip is the 8-9 ride's transfer. With 4 and 7 uploaded late,
    the 8-9 ride sits in the first rides' journey and the book's last ended journey is the
    5-6 one, which the 7 boarding then reopened: the entry must still find the 8-9 ride."""
    taps: list[tuple[int, float]] = [
        (BUS_01, 1),
        (BUS_01, 2),
        (BUS_01, 3),
        (BUS_01, 5),
        (BUS_01, 6),
        (BUS_02, 8),
        (BUS_02, 9),
        (BUS_01, 4),
        (BUS_01, 7),
        (GATE_IN_01, 10),
    ]
    world, account_id = day_of(taps)
    assert (
        paid_vnd(world, account_id)
        == 5 * ROUTE_FARE_VND + METRO_01_TO_12_VND - BUS_TO_METRO_DISCOUNT_VND
    )


# The property: any upload order, any batches, the charge of the taps in the order they happened

TRANSFER_MAX_MIN = 60
VALIDATORS = {"01": BUS_01, "01r": BUS_01_REAR, "02": BUS_02, "in": GATE_IN_01, "out": GATE_OUT_12}
Tap = tuple[str, int]  # what was tapped (a key of VALIDATORS), minutes after 08:00


def charged_in_order(taps: list[Tap]) -> int:
    """The model: the day's charge for the taps in the order they happened. A bus tap alights
    the ride on its route boarded by the tap just before it, within the ride limit; any other
    bus tap boards a ride. A ride costs its route's fare, tapped off or not. A metro trip costs
    its fare, less the bus-to-metro discount for the first entry within the transfer window
    after a bus alighting with no bus tap between; an exit whose entry never came costs the
    dearest trip to it and takes no discount, nor takes it from the trip after it."""
    charged_vnd = 0
    entered = False  # the tap just before was a metro entry
    alighted: int | None = None  # a bus alighting no discount or bus tap has followed yet
    boarded: tuple[str, int] | None = None  # the ride boarded by the tap just before
    for kind, at_min in sorted(taps, key=lambda tap: tap[1]):
        route_id = kind[:2]
        if kind in ("in", "out"):
            if kind == "in":
                discount = alighted is not None and at_min - alighted <= TRANSFER_MAX_MIN
                charged_vnd += METRO_01_TO_12_VND - (BUS_TO_METRO_DISCOUNT_VND if discount else 0)
                alighted = None if discount else alighted
            elif not entered:
                charged_vnd += METRO_01_TO_12_VND
            boarded = None  # the rider left the bus for the metro
        elif boarded and boarded[0] == route_id and at_min - boarded[1] <= RIDE_MAX_MIN:
            alighted, boarded = at_min, None
        else:
            charged_vnd += ROUTE_FARE_VND
            alighted, boarded = None, (route_id, at_min)
        entered = kind == "in"
    return charged_vnd


@st.composite
def days_of_taps(draw: st.DrawFn, moves_max: int = 6, *, lone_entry: bool = False) -> list[Tap]:
    """Up to `moves_max` moves of one rider in a day: bus taps on routes 01 (at either door)
    and 02, metro trips from 2A-01 to 2A-12 (entry then exit, nothing between), and metro
    exits whose entry was lost; with `lone_entry`, maybe a last metro entry never exited.
    Gaps of 1 to 60 min, and some near the ride limit."""
    gap = st.one_of(
        st.integers(1, TRANSFER_MAX_MIN),
        st.sampled_from([RIDE_MAX_MIN - 5, RIDE_MAX_MIN, RIDE_MAX_MIN + 1]),
    )
    moves = draw(
        st.lists(
            st.tuples(st.sampled_from(["01", "01r", "02", "01", "02", "trip", "out"]), gap),
            min_size=1,
            max_size=moves_max,
        )
    )
    taps: list[Tap] = []
    at_min = 0
    for kind, gap_min in moves:
        at_min += gap_min
        if kind == "trip":
            taps.append(("in", at_min))
            at_min += draw(st.integers(5, 40))
            kind = "out"
        taps.append((kind, at_min))
    if lone_entry and draw(st.booleans()):
        taps.append(("in", at_min + draw(gap)))
    return taps


@st.composite
def uploads(
    draw: st.DrawFn, moves_max: int = 6, *, lone_entry: bool = False
) -> tuple[list[Tap], list[list[Tap]]]:
    """A day of taps, and the batches they reach the backend in (each followed before the
    next one is uploaded): any order, any cut."""
    taps = draw(days_of_taps(moves_max, lone_entry=lone_entry))
    order = draw(st.permutations(taps))
    cuts = draw(st.lists(st.integers(1, max(1, len(order) - 1)), max_size=4, unique=True))
    edges = [0, *sorted(cuts), len(order)]
    return taps, [list(order[a:b]) for a, b in itertools.pairwise(edges) if a < b]


def charged_vnd(batches: list[list[Tap]]) -> tuple[World, UUID]:
    """Uploads the batches one after the other, each followed, then closes the day."""
    world = build()
    account_id, phone = world.rider()
    for batch in batches:
        for kind, at_min in batch:
            world.tap(phone, VALIDATORS[kind], at_min)
        world.follow()
    world.clock.now += timedelta(days=1)
    world.journeys.close_ended_day(DAY)
    return world, account_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uploads())
def test_a_day_of_taps_costs_the_same_in_any_upload_order_and_batches(
    upload: tuple[list[Tap], list[list[Tap]]],
) -> None:
    taps, batches = upload
    world, account_id = charged_vnd(batches)
    assert paid_vnd(world, account_id) == charged_in_order(taps)
    # The ledger and the journeys agree on every dong.
    journeys_vnd = sum(journey.charged_vnd for journey in world.journeys_of(account_id))
    assert journeys_vnd == paid_vnd(world, account_id)


# The day the world closes ends at 04:00 the next day, 20 hours after its first tap at 08:00.
SERVICE_DAY_LEFT_MIN = 20 * 60
# What a longer day may cost so that the rider's balance pays it all, holds included.
LONGER_DAY_MAX_VND = 70_000


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(uploads(8, lone_entry=True))
def test_a_longer_day_costs_what_its_taps_cost_uploaded_in_the_order_they_happened(
    upload: tuple[list[Tap], list[list[Tap]]],
) -> None:
    """Up to eight moves and an entry never exited: the charge of any upload order and
    batches is the charge of the same taps uploaded in the order they happened."""
    taps, batches = upload
    assume(taps[-1][1] < SERVICE_DAY_LEFT_MIN and charged_in_order(taps) <= LONGER_DAY_MAX_VND)
    world, account_id = charged_vnd(batches)
    in_order, in_order_account_id = charged_vnd([sorted(taps, key=lambda tap: tap[1])])
    assert paid_vnd(world, account_id) == paid_vnd(in_order, in_order_account_id)
    journeys_vnd = sum(journey.charged_vnd for journey in world.journeys_of(account_id))
    assert journeys_vnd == paid_vnd(world, account_id)
