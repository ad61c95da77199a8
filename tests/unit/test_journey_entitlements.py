"""Passes bought on the account and the caps of our extension, as the journey follower prices."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_02,
    FEED,
    GATE_IN_01,
    GATE_OUT_12,
    START,
    World,
    build,
)
from tests.tap_media import Phone
from ticketing.accounts.domain.commands import TopUp
from ticketing.accounts.domain.errors import InsufficientFunds, TransferConflict
from ticketing.fares.feed import CapPeriod, FareCap
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.rider_passes import (
    PassNotSoldToRider,
    PassPurchaseConflict,
    PassRouteInvalid,
    RiderPasses,
    UnknownPassProduct,
)

DAY_PASS_2A_VND = 30_000
BUS_MONTHLY_ONE_ROUTE_VND = 140_000
DAILY_CAP_VND = 20_000
MONTHLY_CAP_VND = 25_000
MINUTES_PER_DAY = 24 * 60


@pytest.fixture
def world() -> World:
    return build()


def capped(*caps: FareCap) -> World:
    return build(dataclasses.replace(FEED, caps=caps))


def bus_ride(world: World, phone: Phone, start_min: float, validator: int = BUS_01) -> None:
    world.tap(phone, validator, start_min)
    world.tap(phone, validator, start_min + 20)


# Passes


def test_a_day_pass_holder_rides_2a_for_nothing_and_the_entry_holds_nothing(world: World) -> None:
    account_id, phone = world.rider()
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND, 0)
    world.tap(phone, GATE_IN_01, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND, 0)
    world.tap(phone, GATE_OUT_12, 30)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND, 0)
    [journey] = world.journeys_of(account_id)
    assert journey.status is JourneyStatus.ENDED
    assert (journey.fare_vnd, journey.reference_vnd) == (0, 15_000)
    assert journey.pass_product_ids == ["metro_2a_day"]
    [row] = world.views.for_account(account_id)
    assert (row.fare_vnd, row.pass_product_ids, row.cap_id) == (0, ["metro_2a_day"], None)


def test_a_metro_day_pass_does_not_cover_the_bus(world: World) -> None:
    account_id, phone = world.rider()
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    bus_ride(world, phone, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND - 10_000, 0)


def test_a_one_route_bus_pass_covers_its_route_only(world: World) -> None:
    account_id, phone = world.rider()
    top_up(world, account_id, 100_000)
    world.passes.buy(
        account_id,
        purchase_id="buy-1",
        fare_product_id="bus_monthly_one_route",
        route_id="01",
    )
    paid = BALANCE_VND + 100_000 - BUS_MONTHLY_ONE_ROUTE_VND
    bus_ride(world, phone, 0, BUS_01)
    world.follow()
    assert world.balance(account_id) == (paid, 0)
    bus_ride(world, phone, 120, BUS_02)
    world.follow()
    assert world.balance(account_id) == (paid - 10_000, 0)


def test_a_pass_bought_after_the_ride_does_not_cover_it(world: World) -> None:
    account_id, phone = world.rider()
    world.tap(phone, GATE_IN_01, 0)
    world.tap(phone, GATE_OUT_12, 30)
    world.clock.now = START + timedelta(minutes=45)
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND - 15_000, 0)


def test_buying_the_same_pass_again_debits_once_and_holds_one_pass(world: World) -> None:
    account_id, _ = world.rider()
    first = world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    again = world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    assert (first.repeated, again.repeated) == (False, True)
    assert first.held == again.held
    assert world.balance(account_id) == (BALANCE_VND - DAY_PASS_2A_VND, 0)
    [held] = world.passes.held(account_id)
    assert held["transfer_id"] == first.held["transfer_id"]
    # Valid from the purchase to the end of that Hanoi calendar day (17:00 UTC).
    assert held["valid_until"] == "2026-11-23T17:00:00+00:00"


def test_a_purchase_id_used_for_another_pass_is_refused(world: World) -> None:
    account_id, _ = world.rider()
    top_up(world, account_id, 400_000)
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_day")
    with pytest.raises(TransferConflict):
        world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_3_day")
    world.passes.buy(
        account_id, purchase_id="buy-2", fare_product_id="bus_monthly_one_route", route_id="01"
    )
    with pytest.raises(PassPurchaseConflict):
        world.passes.buy(
            account_id,
            purchase_id="buy-2",
            fare_product_id="bus_monthly_one_route",
            route_id="02",
        )


@pytest.mark.parametrize(
    ("product", "route", "error"),
    [
        ("bus_single_8000", None, UnknownPassProduct),
        ("no_such_product", None, UnknownPassProduct),
        ("bus_monthly_one_route", None, PassRouteInvalid),
        ("bus_monthly_one_route", "2A", PassRouteInvalid),
        ("metro_2a_day", "2A", PassRouteInvalid),
    ],
)
def test_a_pass_sale_names_a_pass_product_and_a_route_only_when_it_needs_one(
    world: World, product: str, route: str | None, error: type[Exception]
) -> None:
    account_id, _ = world.rider()
    with pytest.raises(error):
        world.passes.buy(account_id, purchase_id="buy-1", fare_product_id=product, route_id=route)
    assert world.balance(account_id) == (BALANCE_VND, 0)
    assert world.passes.held(account_id) == []


def test_a_monthly_pass_is_not_sold_to_a_category_the_feed_does_not_price_it_for(
    world: World,
) -> None:
    account_id, _ = world.rider(category=2)  # elderly: rides free, no monthly pass row
    with pytest.raises(PassNotSoldToRider):
        world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_monthly")


def test_a_priority_rider_pays_the_priority_price_for_a_monthly_pass(world: World) -> None:
    account_id, _ = world.rider(category=1)
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_2a_monthly")
    assert world.balance(account_id) == (BALANCE_VND - 100_000, 0)


def test_a_pass_the_account_cannot_pay_for_is_not_held(world: World) -> None:
    account_id, _ = world.rider()
    with pytest.raises(InsufficientFunds):
        world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="bus_monthly_all_routes")
    assert world.passes.held(account_id) == []


def test_long_ended_passes_leave_the_state_when_a_new_one_is_bought(world: World) -> None:
    account_id, _ = world.rider()
    world.passes.buy(account_id, purchase_id="buy-1", fare_product_id="metro_3_day")
    world.clock.now = START + timedelta(days=40)
    world.passes.buy(account_id, purchase_id="buy-2", fare_product_id="metro_3_day")
    assert [p["purchase_id"] for p in world.passes.held(account_id)] == ["buy-2"]
    passes = world.journeys.get_passes(account_id)
    assert isinstance(passes, RiderPasses)
    assert passes.valid_at(START + timedelta(days=40, minutes=1)) == passes.passes


# Caps


def test_a_daily_cap_stops_charging_once_the_rider_has_paid_it() -> None:
    world = capped(FareCap("daily", None, CapPeriod.DAY, DAILY_CAP_VND))
    account_id, phone = world.rider()
    for start_min in (0, 90, 180):
        bus_ride(world, phone, start_min)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAILY_CAP_VND, 0)
    fares = [(j.fare_vnd, j.cap_id) for j in world.journeys_of(account_id)]
    assert fares == [(10_000, None), (10_000, None), (0, "daily")]
    rows = [(r.fare_vnd, r.cap_id) for r in reversed(world.views.for_account(account_id))]
    assert rows == fares


def test_the_daily_cap_starts_again_the_next_service_day() -> None:
    world = capped(FareCap("daily", None, CapPeriod.DAY, DAILY_CAP_VND))
    account_id, phone = world.rider()
    for start_min in (0, 90, 180, MINUTES_PER_DAY):
        bus_ride(world, phone, start_min)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAILY_CAP_VND - 10_000, 0)


def test_a_monthly_cap_counts_every_day_of_the_month() -> None:
    world = capped(FareCap("monthly", None, CapPeriod.MONTH, MONTHLY_CAP_VND))
    account_id, phone = world.rider()
    # A virtual card's certificate lasts a few days: three days of one month show the point.
    for start_min in (0, MINUTES_PER_DAY, 2 * MINUTES_PER_DAY, 2 * MINUTES_PER_DAY + 90):
        bus_ride(world, phone, start_min)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - MONTHLY_CAP_VND, 0)
    assert [j.fare_vnd for j in world.journeys_of(account_id)] == [10_000, 10_000, 5_000, 0]


def test_a_metro_entry_holds_only_what_the_cap_leaves() -> None:
    world = capped(FareCap("daily", None, CapPeriod.DAY, DAILY_CAP_VND))
    account_id, phone = world.rider()
    bus_ride(world, phone, 0)
    world.tap(phone, GATE_IN_01, 120)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 10_000, 10_000)
    world.tap(phone, GATE_OUT_12, 150)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - DAILY_CAP_VND, 0)


def test_adding_a_leg_never_caps_a_journey_against_its_own_first_leg() -> None:
    world = capped(FareCap("daily", None, CapPeriod.DAY, DAILY_CAP_VND))
    account_id, phone = world.rider()
    bus_ride(world, phone, 0)
    world.tap(phone, GATE_IN_01, 40)  # within the hour: joins the bus journey
    world.tap(phone, GATE_OUT_12, 70)
    world.follow()
    [journey] = world.journeys_of(account_id)
    assert (journey.fare_vnd, journey.cap_id) == (DAILY_CAP_VND, "daily")
    assert world.balance(account_id) == (BALANCE_VND - DAILY_CAP_VND, 0)


def test_a_cap_of_another_rider_category_does_not_apply() -> None:
    world = capped(FareCap("priority_daily", "priority", CapPeriod.DAY, 5_000))
    account_id, phone = world.rider()
    bus_ride(world, phone, 0)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND - 10_000, 0)


def test_a_journey_priced_before_passes_counted_still_replays() -> None:
    world = build()
    account_id, phone = world.rider()
    bus_ride(world, phone, 0)
    world.follow()
    [journey] = world.journeys_of(account_id)
    stored = world.journeys.recorder.select_events(journey.id)
    events: list[Any] = [world.journeys.mapper.to_domain_event(e) for e in stored]
    for e in events:
        if isinstance(e, Journey.Priced):
            # As stored before `pass_product_ids` and `cap_id` existed.
            del e.__dict__["pass_product_ids"], e.__dict__["cap_id"]
    replayed: Any = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, Journey)
    assert (replayed.fare_vnd, replayed.pass_product_ids, replayed.cap_id) == (10_000, [], None)


def top_up(world: World, account_id: UUID, amount_vnd: int) -> None:
    world.ledger.execute(TopUp(account_id, amount_vnd, f"extra-{account_id.hex}"))
