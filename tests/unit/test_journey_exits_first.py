"""A rider's metro exits uploaded long before their entries (the entry gates offline for a day)
still pair with every entry, also after the day-end close charged them the maximum. At the bound
the oldest exit of a closed day makes room; with none, the new exit is set aside for staff,
never charged, and no exit of an open day is pushed out."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from tests.builders.journeys import (
    BALANCE_VND,
    DAY,
    GATE_IN_01,
    GATE_OUT_02,
    START,
    World,
    build,
)
from ticketing.accounts.domain.commands import TopUp
from ticketing.journeys.application import metro_taps
from ticketing.journeys.application.metro_taps import EXITS_WAITING_FULL
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import Leg
from ticketing.journeys.domain.rider_journeys import PENDING_EXITS_MAX, RiderJourneys
from ticketing.shared.domain.invariants import InvariantViolated

CAT_LINH_TO_LA_THANH_VND = 8_000
# Rides further apart than the longest transfer window, so each is a journey of its own.
RIDE_EVERY_MIN = 70
RIDE_MIN = 5
RIDES_TOP_UP_VND = 1_000_000
NEXT_DAY = DAY + timedelta(days=1)


@pytest.fixture
def world() -> World:
    return build()


def test_ten_rides_uploaded_exits_first_are_each_charged_their_real_fare(world: World) -> None:
    account_id, phone = world.rider()
    for ride in range(10):
        world.tap(phone, GATE_OUT_02, ride * RIDE_EVERY_MIN + RIDE_MIN)
    world.follow()
    for ride in range(10):
        world.tap(phone, GATE_IN_01, ride * RIDE_EVERY_MIN)
    world.follow()
    rows = world.views.for_account(account_id)
    assert [(r.status, r.fare_vnd) for r in rows] == [("ended", CAT_LINH_TO_LA_THANH_VND)] * 10
    assert world.balance(account_id) == (BALANCE_VND - 10 * CAT_LINH_TO_LA_THANH_VND, 0)
    # Nothing is left for the day-end close to charge the maximum fare.
    assert world.journeys.close_service_day(DAY) == 0
    assert world.balance(account_id) == (BALANCE_VND - 10 * CAT_LINH_TO_LA_THANH_VND, 0)


def rides_uploaded(order: str, rides: int, every_min: int) -> tuple[list[object], tuple[int, int]]:
    """Rides Cát Linh to La Thành, taps uploaded in time order or every exit first; the
    rider's legs (from, to, departure, arrival) and balance after the day-end close."""
    world = build()
    account_id, phone = world.rider()
    # Enough for every ride's hold in order too, so the ledger refuses neither upload.
    world.ledger.execute(TopUp(account_id, RIDES_TOP_UP_VND, "seed-rides"))
    entries = [(GATE_IN_01, ride * every_min) for ride in range(rides)]
    exits = [(GATE_OUT_02, ride * every_min + RIDE_MIN) for ride in range(rides)]
    taps = sorted(entries + exits, key=lambda t: t[1]) if order == "in order" else exits + entries
    for gate, minutes in taps:
        world.tap(phone, gate, minutes)
    world.follow()
    world.journeys.close_service_day(DAY)
    legs = [
        (leg["from_stop_id"], leg["to_stop_id"], leg["departure"], leg["arrival"])
        for journey in world.journeys_of(account_id)
        if journey.status is not JourneyStatus.MERGED
        # In their stored form, times as ISO strings: as the journeys' read model shows them.
        for leg in map(Leg.stored, journey.legs)
    ]
    return sorted(legs, key=str), world.balance(account_id)


@pytest.mark.parametrize("every_min", [RIDE_EVERY_MIN, 15], ids=["apart", "transfers"])
def test_twelve_rides_exits_first_are_charged_as_uploaded_in_order(every_min: int) -> None:
    assert rides_uploaded("exits first", 12, every_min) == rides_uploaded("in order", 12, every_min)


def test_an_exit_one_past_the_bound_is_set_aside_uncharged_and_none_waiting_is_dropped(
    world: World,
) -> None:
    account_id, phone = world.rider()
    # One exit a minute, all on the service day; none has its entry yet.
    for ride in range(PENDING_EXITS_MAX + 1):
        world.tap(phone, GATE_OUT_02, RIDE_MIN + ride)
    world.follow()
    [past] = world.views.with_status(JourneyStatus.REFUSED, account_id=account_id)
    assert past.reason_code == EXITS_WAITING_FULL
    assert past.reason is not None
    assert str(PENDING_EXITS_MAX) in past.reason
    assert past.legs[0]["arrival"] > max(
        r.legs[0]["arrival"] for r in world.views.with_status(JourneyStatus.EXIT_PENDING)
    )
    assert past.charged_vnd == 0
    # Every exit before it still waits, and the day-end close would not charge the one past it.
    assert len(world.views.open_journeys(DAY, 2 * PENDING_EXITS_MAX)) == PENDING_EXITS_MAX
    # The oldest waiting exit was kept: its entry, uploaded last, still pairs with it.
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    ended = [r for r in world.views.for_account(account_id) if r.status == "ended"]
    assert [(r.legs[0]["from_stop_id"], r.fare_vnd) for r in ended] == [
        ("2A-01", CAT_LINH_TO_LA_THANH_VND)
    ]
    assert world.balance(account_id) == (BALANCE_VND - CAT_LINH_TO_LA_THANH_VND, 0)


def test_eighteen_rides_whose_entries_come_after_the_day_end_close_get_their_real_fares(
    world: World,
) -> None:
    # More rides than the rider's correctable journeys hold, all in one service day, each
    # ending more than a transfer window before the next begins.
    rides, every_min = 18, 66
    account_id, phone = world.rider()
    world.ledger.execute(TopUp(account_id, RIDES_TOP_UP_VND, "seed-rides"))
    for ride in range(rides):
        world.tap(phone, GATE_OUT_02, ride * every_min + RIDE_MIN)
    world.follow()
    assert world.journeys.close_service_day(DAY) == rides  # each charged the maximum, for now
    for ride in range(rides):
        world.tap(phone, GATE_IN_01, ride * every_min)
    world.follow()
    rows = world.views.for_account(account_id)
    assert [(r.status, r.fare_vnd) for r in rows] == [("ended", CAT_LINH_TO_LA_THANH_VND)] * rides
    paid_in_vnd = BALANCE_VND + RIDES_TOP_UP_VND
    assert world.balance(account_id) == (paid_in_vnd - rides * CAT_LINH_TO_LA_THANH_VND, 0)
    assert world.journeys.close_service_day(DAY) == 0


def test_at_the_bound_the_oldest_exit_of_a_closed_day_makes_room_for_a_new_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A smaller bound, same rule: the day-end close replays the rider's book for each journey
    # it closes, so closing PENDING_EXITS_MAX of one rider's exits would take minutes.
    bound = 4
    monkeypatch.setattr(metro_taps, "PENDING_EXITS_MAX", bound)
    account_id, phone = world.rider()
    for ride in range(bound):
        world.tap(phone, GATE_OUT_02, RIDE_MIN + ride * RIDE_EVERY_MIN)
    world.follow()
    assert world.journeys.close_service_day(DAY) == bound  # each charged the maximum, for now
    next_day_min = 24 * 60
    world.tap(phone, GATE_OUT_02, next_day_min + RIDE_MIN)
    world.follow()
    assert world.views.with_status(JourneyStatus.REFUSED, account_id=account_id) == []
    [waiting] = world.views.open_journeys(NEXT_DAY, 2 * bound)
    # The oldest closed exit made room; the others still take their late entries.
    for ride in (*range(1, bound), None):
        world.tap(phone, GATE_IN_01, next_day_min if ride is None else ride * RIDE_EVERY_MIN)
    world.follow()
    journey = world.journeys.get_journey(waiting)
    assert journey is not None
    assert (journey.status, journey.fare_vnd) == (JourneyStatus.ENDED, CAT_LINH_TO_LA_THANH_VND)
    statuses = sorted(r.status for r in world.views.for_account(account_id))
    assert statuses == ["closed", *["ended"] * bound]
    assert world.balance(account_id)[1] == 0


def test_the_rider_book_never_drops_a_waiting_exit_to_fit_the_bound() -> None:
    book = RiderJourneys(account_id=uuid4())
    waiting = [str(uuid4()) for _ in range(PENDING_EXITS_MAX)]
    book.point(open_journey=None, pending_exits=waiting, last_ended=None, correctable=[], at=START)
    assert book.pending_exits == waiting
    with pytest.raises(InvariantViolated):
        book.point(
            open_journey=None,
            pending_exits=[*waiting, str(uuid4())],
            last_ended=None,
            correctable=[],
            at=START,
        )
