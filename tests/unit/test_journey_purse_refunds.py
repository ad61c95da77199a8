"""A card's purse pays the dearest ride at the metro entry gate; the exit gate takes nothing more
when the card shows that entry, and the journey follower gives what the ride cost less back to
the rider's account, once."""

from __future__ import annotations

import functools
import itertools

import pytest

from hardware.tlc1.records import Contract, EventKind
from tests.builders.card_purses import unix
from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_01_REAR,
    DAY,
    GATE_IN_01,
    GATE_OUT_02,
    GATE_OUT_12,
    World,
    build,
)
from tests.builders.purse_refunds import (
    CAT_LINH_TO_LA_THANH_VND,
    DEAREST_TO_LA_THANH_VND,
    MAX_FROM_CAT_LINH_VND,
    PURSE_VND,
    ROUTE_01_FARE_VND,
    card_tap,
    decide,
    enter,
    leave,
    only_journey,
    purse_on_card,
    rider_with_card,
    upload,
)
from tests.tap_media import NETWORK, card_terminal
from ticketing.journeys.domain.journey_status import PaidFrom
from validators.card_desk import CardDesk
from validators.card_passes import CARD_PRODUCT_IDS, PassRules, card_passes
from validators.card_validation import CardValidator, Outcome, TapPoint

CARD_PRODUCT_NUMBERS = {product_id: number for number, product_id in CARD_PRODUCT_IDS.items()}


@pytest.fixture
def world() -> World:
    return build()


def test_a_short_metro_ride_on_the_purse_gets_the_rest_of_the_dearest_fare_back(
    world: World,
) -> None:
    account_id, card = rider_with_card(world)
    assert enter(world, card, 0) is Outcome.CHARGED
    assert leave(world, card, 5) is Outcome.PAID_AT_ENTRY
    world.follow()
    assert purse_on_card(card) == PURSE_VND - MAX_FROM_CAT_LINH_VND
    refund_vnd = MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
    assert world.balance(account_id) == (BALANCE_VND + refund_vnd, 0)
    journey = only_journey(world, account_id)
    assert journey.paid_from is PaidFrom.CARD_PURSE
    assert (journey.fare_vnd, journey.purse_paid_vnd) == (
        CAT_LINH_TO_LA_THANH_VND,
        MAX_FROM_CAT_LINH_VND,
    )
    assert journey.purse_refunded_vnd == refund_vnd
    assert journey.charged_vnd == 0  # the account paid nothing for the ride
    [row] = world.views.for_account(account_id)
    assert (row.paid_from, row.fare_vnd, row.charged_vnd) == (
        "card_purse",
        CAT_LINH_TO_LA_THANH_VND,
        0,
    )
    assert (row.purse_paid_vnd, row.purse_refunded_vnd) == (MAX_FROM_CAT_LINH_VND, refund_vnd)


def test_the_dearest_ride_from_the_entry_gets_nothing_back(world: World) -> None:
    account_id, card = rider_with_card(world)
    enter(world, card, 0)
    leave(world, card, 30, gate=GATE_OUT_12)
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    journey = only_journey(world, account_id)
    assert (journey.fare_vnd, journey.purse_refunded_vnd) == (MAX_FROM_CAT_LINH_VND, 0)


def test_following_again_from_the_start_refunds_nothing_twice(world: World) -> None:
    account_id, card = rider_with_card(world)
    enter(world, card, 0)
    leave(world, card, 5)
    world.follow()
    after = world.balance(account_id)
    assert world.follow_again() == 2
    assert world.balance(account_id) == after
    assert only_journey(world, account_id).purse_refunded_vnd == (
        MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
    )


def test_an_exit_uploaded_before_its_entry_is_refunded_when_the_entry_arrives(
    world: World,
) -> None:
    account_id, card = rider_with_card(world)
    entry = decide(card, GATE_IN_01, 0, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND)
    exit_ = decide(card, GATE_OUT_02, 5, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND)
    assert exit_.outcome is Outcome.PAID_AT_ENTRY
    upload(world, GATE_OUT_02, exit_, 5)  # the entry gate's outbox drains later
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)  # the exit alone paid nothing
    upload(world, GATE_IN_01, entry, 0)
    world.follow()
    refund_vnd = MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
    assert world.balance(account_id) == (BALANCE_VND + refund_vnd, 0)
    assert only_journey(world, account_id).purse_refunded_vnd == refund_vnd


def test_a_late_exit_after_the_day_end_close_refunds_the_difference(world: World) -> None:
    account_id, card = rider_with_card(world)
    enter(world, card, 0)
    world.follow()
    assert world.journeys.close_service_day(DAY) == 1
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)  # the purse paid the maximum already
    leave(world, card, 5)
    world.follow()
    assert world.balance(account_id) == (
        BALANCE_VND + MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND,
        0,
    )


def test_a_boarding_with_no_alighting_paid_its_fare_and_gets_nothing_back(world: World) -> None:
    account_id, card = rider_with_card(world)
    card_tap(world, card, BUS_01, 0, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
    world.follow()
    assert world.journeys.close_service_day(DAY) == 1
    world.follow()
    assert world.balance(account_id) == (BALANCE_VND, 0)
    journey = only_journey(world, account_id)
    assert (journey.fare_vnd, journey.purse_paid_vnd, journey.purse_refunded_vnd) == (
        ROUTE_01_FARE_VND,
        ROUTE_01_FARE_VND,
        0,
    )


def test_a_bus_ride_tapped_on_and_off_on_the_purse_gets_the_second_fare_back(
    world: World,
) -> None:
    # A bus validator cannot tell an alighting from a boarding on the card (CARD.md has no
    # alighting event), so each tap takes the route fare; the journey costs one.
    account_id, card = rider_with_card(world)
    card_tap(world, card, BUS_01, 0, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
    card_tap(world, card, BUS_01_REAR, 20, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
    world.follow()
    assert purse_on_card(card) == PURSE_VND - 2 * ROUTE_01_FARE_VND
    assert world.balance(account_id) == (BALANCE_VND + ROUTE_01_FARE_VND, 0)
    journey = only_journey(world, account_id)
    assert (journey.fare_vnd, journey.purse_paid_vnd, journey.purse_refunded_vnd) == (
        ROUTE_01_FARE_VND,
        2 * ROUTE_01_FARE_VND,
        ROUTE_01_FARE_VND,
    )


def refund_after_bus_taps(upload_order: list[int]) -> tuple[int, int]:
    """Four card taps on route 01, 10 minutes apart, decided in order and uploaded in
    `upload_order`: what came back to the account, and the fares of the rider's journeys."""
    world = build()
    account_id, card = rider_with_card(world)
    doors = [BUS_01, BUS_01_REAR, BUS_01, BUS_01_REAR]
    decided = [
        decide(card, door, 10 * k, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
        for k, door in enumerate(doors)
    ]
    for k in upload_order:
        upload(world, doors[k], decided[k], 10 * k)
    world.follow()
    fares = sum(j.fare_vnd or 0 for j in world.journeys_of(account_id))
    return world.balance(account_id)[0] - BALANCE_VND, fares


def test_card_taps_uploaded_out_of_order_get_back_what_in_order_would() -> None:
    in_order = refund_after_bus_taps([0, 1, 2, 3])
    refunded_vnd, fares_vnd = in_order
    assert refunded_vnd == 4 * ROUTE_01_FARE_VND - fares_vnd
    for order in ([3, 1, 0, 2], [1, 3, 2, 0], [2, 0, 3, 1]):
        assert refund_after_bus_taps(order) == in_order


def refund_after(taps: list[tuple[int, int, EventKind, int]], order: tuple[int, ...]) -> int:
    """Card taps (validator, minutes, kind, what the validator takes), decided on the card in
    time order and uploaded in `order`: what came back to the account."""
    world = build()
    account_id, card = rider_with_card(world)
    decided = [decide(card, v, minutes, kind, fare) for v, minutes, kind, fare in taps]
    for index in order:
        upload(world, taps[index][0], decided[index], taps[index][1])
    world.follow()
    return world.balance(account_id)[0] - BALANCE_VND


BUS_THEN_METRO_ON_THE_PURSE = [
    (BUS_01, 0, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND),
    (BUS_01_REAR, 20, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND),
    (GATE_IN_01, 30, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND),
    (GATE_OUT_12, 60, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND),
]
TWO_METRO_RIDES_ON_THE_PURSE = [
    (GATE_IN_01, 0, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND),
    (GATE_OUT_02, 10, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND),
    (GATE_IN_01, 90, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND),
    (GATE_OUT_12, 120, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_a_transfer_merged_late_on_the_purse_refunds_what_in_order_would(
    order: tuple[int, ...],
) -> None:
    # In order: two route fares and the dearest metro ride paid on the card; the journey,
    # bus then metro with the transfer discount, costs less than the bus fare and that ride.
    in_order = refund_after(BUS_THEN_METRO_ON_THE_PURSE, (0, 1, 2, 3))
    assert in_order > ROUTE_01_FARE_VND
    assert refund_after(BUS_THEN_METRO_ON_THE_PURSE, order) == in_order


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_two_metro_rides_on_the_purse_in_any_upload_order_refund_what_in_order_would(
    order: tuple[int, ...],
) -> None:
    in_order = refund_after(TWO_METRO_RIDES_ON_THE_PURSE, (0, 1, 2, 3))
    # The short ride gets back the rest of the dearest fare; the dearest ride, nothing.
    assert in_order == MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
    assert refund_after(TWO_METRO_RIDES_ON_THE_PURSE, order) == in_order


def test_a_ride_covered_by_a_pass_on_the_card_costs_the_account_nothing(world: World) -> None:
    account_id, card = rider_with_card(world)
    contract = Contract(
        product=CARD_PRODUCT_NUMBERS["metro_2a_monthly"],
        valid_from=unix(-10 * 24 * 60),
        valid_until=unix(20 * 24 * 60),
        route=0,
        network_id=NETWORK,
    )
    CardDesk(card_terminal(card)).add_contract(contract)
    rules = PassRules.at(
        card_passes(world.journeys.fares.feed), fare_network_id="metro_2a", route_id="2A"
    )
    # The entry is the pass's; the exit finds that entry on the card, as after a purse entry.
    for validator_id, minutes, kind, outcome in (
        (GATE_IN_01, 0, EventKind.METRO_ENTRY, Outcome.CONTRACT_PAID),
        (GATE_OUT_02, 20, EventKind.METRO_EXIT, Outcome.PAID_AT_ENTRY),
    ):
        point = TapPoint(NETWORK, validator_id, validator_id, kind, 15_000, passes=rules)
        clock = functools.partial(unix, minutes)
        validation = CardValidator(
            card_terminal(card), point, denied_serials=frozenset(), clock=clock
        ).validate()
        assert validation.outcome is outcome
        upload(world, validator_id, validation, minutes)
    world.follow()
    journey = only_journey(world, account_id)
    assert journey.paid_from is PaidFrom.CARD_PURSE
    assert (journey.fare_vnd, journey.charged_vnd) == (CAT_LINH_TO_LA_THANH_VND, 0)
    account = world.ledger.get_account(account_id)
    assert (account.posted_vnd, account.pending_vnd) == (BALANCE_VND, 0)
    assert purse_on_card(card) == PURSE_VND
