"""A card torn from the field after its CLOSE paid, though the rider never saw the green light;
the re-tap is let through free and its session proves the torn one (spec/CARD.md, "Ratification").
The journey follower books that proof as the payment it is, once, and never as a tap of its own:
the re-tap neither boards nor alights, whichever validator of the network took it and whichever
of the two taps reached the backend first."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import timedelta
from uuid import UUID

import pytest

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.records import EventKind
from hardware.tlc1.terminal import Terminal
from tests.builders.card_purses import unix
from tests.builders.card_tearing import LosesAnswer
from tests.builders.journeys import (
    BALANCE_VND,
    BUS_01,
    BUS_01_REAR,
    BUS_02,
    DAY,
    GATE_IN_01,
    GATE_OUT_02,
    START,
    World,
    build,
)
from tests.builders.purse_refunds import (
    CAT_LINH_TO_LA_THANH_VND,
    DEAREST_TO_LA_THANH_VND,
    MAX_FROM_CAT_LINH_VND,
    PURSE_VND,
    ROUTE_01_FARE_VND,
    decide,
    only_journey,
    purse_on_card,
    rider_with_card,
    upload,
)
from tests.tap_media import MASTER_KEYS, NETWORK
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.taps.application.ingestion import CardTap
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation

# The card's APDUs up to its CLOSE in a validation (SELECT, OPEN, READ, DECREASE, APPEND, CLOSE);
# the seventh, the READ that ratifies, is where the tear comes.
CLOSE_APDU = 6
# A re-tap's APDUs up to its CLOSE: SELECT, OPEN, READ the event, READ the purse, CLOSE.
RETAP_CLOSE_APDU = 5
RETAP_AFTER_S = 5
BOARD_MIN, ALIGHT_MIN = 0, 20
ROUTE = ("mode", "route_id", "from_stop_id", "to_stop_id")
BOARDING = TapPoint(NETWORK, BUS_01, BUS_01, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)


@pytest.fixture
def world() -> World:
    return build()


def torn_terminal(card: EmulatedCard, *, answer_lost: bool) -> Terminal:
    """A power cycle torn at the CLOSE's answer (`answer_lost`: the card committed, the
    validator never heard), else right after it, at the ratifying READ."""
    if answer_lost:
        reader = CardInReader(LosesAnswer(card, CLOSE_APDU), "torn", lost_card_errors=(CardTorn,))
    else:
        card.tear_after = CLOSE_APDU
        reader = CardInReader(card, "torn", lost_card_errors=(CardTorn,))
    reader.power_on()
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


def torn_tap(card: EmulatedCard, point: TapPoint, at: int, *, answer_lost: bool) -> Validation:
    """A tap at `point` whose card leaves the field at the CLOSE, as `torn_terminal` says."""
    terminal = torn_terminal(card, answer_lost=answer_lost)
    validation = CardValidator(
        terminal, point, denied_serials=frozenset(), clock=lambda: at
    ).validate()
    card.tear_after = None
    return validation


def torn_boarding(card: EmulatedCard, *, answer_lost: bool) -> Validation:
    return torn_tap(card, BOARDING, unix(BOARD_MIN), answer_lost=answer_lost)


def upload_card_lost(world: World, validation: Validation) -> None:
    """A tap whose CLOSE answer never came carries no proof: the backend records it refused."""
    assert validation.outcome is Outcome.CARD_LOST
    assert validation.proof is None
    world.seq += 1
    world.clock.now = START + timedelta(minutes=BOARD_MIN)
    tap = CardTap(world.seq, world.clock.now, "refused", validation.outcome.value, None, None)
    [result] = world.taps.ingest_batch(BUS_01, [tap])
    assert result.status == "refused", result


def retap(
    card: EmulatedCard,
    validator_id: int,
    seconds: int = RETAP_AFTER_S,
    *,
    torn: bool = False,
    torn_at: tuple[TapPoint, int] = (BOARDING, BOARD_MIN),
) -> Validation:
    """The rider taps again at `validator_id`, `seconds` after the torn tap (at `torn_at`'s
    point, minutes after START); `torn`: the card leaves again at the ratifying READ, so the
    next tap is a re-tap too.

    Today's validator lets a re-tap through only at the torn event's own point; another change
    lets it through at any validator of the network. The session is the same either way (read
    the event and the purse, close with no change), so the point here claims the torn location
    while the tap is uploaded from `validator_id`, wherever that stands."""
    torn_point, minutes = torn_at
    point = replace(torn_point, validator=validator_id)
    at = unix(minutes) + seconds
    terminal = _fresh_terminal(card)
    card.tear_after = RETAP_CLOSE_APDU if torn else None
    validation = CardValidator(
        terminal, point, denied_serials=frozenset(), clock=lambda: at
    ).validate()
    card.tear_after = None
    assert validation.outcome is Outcome.RETAP_AFTER_TEAR
    return validation


def _fresh_terminal(card: EmulatedCard) -> Terminal:
    reader = CardInReader(card, "emulated", lost_card_errors=(CardTorn,))
    reader.power_on()
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


@dataclass
class Ride:
    """A boarding at BUS_01 torn at its CLOSE, its re-tap(s), and the real tap-off at
    BUS_01_REAR; each decided on the card in that order, uploaded when a test says."""

    world: World
    account_id: UUID
    card: EmulatedCard
    torn: Validation
    retaps: list[tuple[int, Validation]]
    alighting: Validation

    def upload_torn(self) -> None:
        if self.torn.proof is None:
            upload_card_lost(self.world, self.torn)
        else:
            upload(self.world, BUS_01, self.torn, BOARD_MIN)

    def upload_retap(self, index: int = 0) -> None:
        validator_id, validation = self.retaps[index]
        self.world.seq += 1
        self.world.clock.now = START + timedelta(minutes=BOARD_MIN, seconds=RETAP_AFTER_S)
        assert validation.proof is not None
        tap = CardTap(
            self.world.seq,
            self.world.clock.now,
            "accepted",
            validation.outcome.value,
            validation.proof.serial.hex(),
            validation.proof,
        )
        [result] = self.world.taps.ingest_batch(validator_id, [tap])
        assert result.status == "accepted", result

    def upload_alighting(self) -> None:
        upload(self.world, BUS_01_REAR, self.alighting, ALIGHT_MIN)

    def refunded_vnd(self) -> int:
        return self.world.balance(self.account_id)[0] - BALANCE_VND


def torn_ride(world: World, *, answer_lost: bool, retap_at: tuple[int, ...] = (BUS_01,)) -> Ride:
    account_id, card = rider_with_card(world)
    torn = torn_boarding(card, answer_lost=answer_lost)
    last = len(retap_at) - 1
    retaps = [(v, retap(card, v, RETAP_AFTER_S + k, torn=k < last)) for k, v in enumerate(retap_at)]
    alighting = decide(card, BUS_01_REAR, ALIGHT_MIN, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
    return Ride(world, account_id, card, torn, retaps, alighting)


def legs(world: World, account_id: UUID) -> list[tuple[str, ...]]:
    return [
        tuple(getattr(leg, key) for key in ROUTE)
        for journey in world.journeys_of(account_id)
        for leg in journey.legs
    ]


KIM_MA_TO_MY_DINH = [("bus", "01", "bus-kim-ma", "bus-my-dinh")]


# Item 12: the CLOSE answer was lost, so the re-tap's proof is the only record of the fare.


def test_a_retap_after_a_lost_close_answer_books_the_torn_fare_as_paid_from_the_purse(
    world: World,
) -> None:
    ride = torn_ride(world, answer_lost=True)
    assert ride.torn.outcome is Outcome.CARD_LOST
    assert purse_on_card(ride.card) == PURSE_VND - 2 * ROUTE_01_FARE_VND  # boarding, tap-off
    ride.upload_torn()
    ride.upload_retap()
    world.follow()
    journey = only_journey(world, ride.account_id)
    assert journey.purse_paid_vnd == ROUTE_01_FARE_VND
    assert journey.legs[0].departure == START  # when the card paid


def test_a_lost_close_answer_then_the_tap_off_costs_one_fare(world: World) -> None:
    ride = torn_ride(world, answer_lost=True)
    ride.upload_torn()
    ride.upload_retap()
    ride.upload_alighting()
    world.follow()
    journey = only_journey(world, ride.account_id)
    assert legs(world, ride.account_id) == KIM_MA_TO_MY_DINH
    assert (journey.fare_vnd, journey.purse_paid_vnd) == (ROUTE_01_FARE_VND, 2 * ROUTE_01_FARE_VND)
    assert ride.refunded_vnd() == ROUTE_01_FARE_VND  # the tap-off's fare comes back


def test_a_second_retap_books_the_torn_fare_once(world: World) -> None:
    ride = torn_ride(world, answer_lost=True, retap_at=(BUS_01, BUS_01))
    ride.upload_retap(0)
    ride.upload_retap(1)
    world.follow()
    assert only_journey(world, ride.account_id).purse_paid_vnd == ROUTE_01_FARE_VND
    ride.upload_alighting()
    world.follow()
    assert legs(world, ride.account_id) == KIM_MA_TO_MY_DINH
    assert ride.refunded_vnd() == ROUTE_01_FARE_VND


def test_following_again_books_a_recovered_fare_once(world: World) -> None:
    ride = torn_ride(world, answer_lost=True)
    ride.upload_retap()
    ride.upload_alighting()
    world.follow()
    before = world.balance(ride.account_id)
    assert world.follow_again() == 2
    assert world.balance(ride.account_id) == before
    assert only_journey(world, ride.account_id).purse_paid_vnd == 2 * ROUTE_01_FARE_VND


# Item 13: the torn tap reached the backend too; the re-tap must not pair as its alighting.


@pytest.mark.parametrize("retap_first", [False, True], ids=["torn-first", "retap-first"])
def test_a_tear_a_retap_and_the_real_tap_off_cost_one_fare(world: World, retap_first: bool) -> None:
    ride = torn_ride(world, answer_lost=False)
    assert ride.torn.outcome is Outcome.CHARGED  # the validator heard the CLOSE answer
    if retap_first:
        ride.upload_retap()
        ride.upload_torn()
    else:
        ride.upload_torn()
        ride.upload_retap()
    ride.upload_alighting()
    world.follow()
    journey = only_journey(world, ride.account_id)
    assert legs(world, ride.account_id) == KIM_MA_TO_MY_DINH
    assert journey.status is JourneyStatus.ENDED
    assert (journey.fare_vnd, journey.purse_paid_vnd) == (ROUTE_01_FARE_VND, 2 * ROUTE_01_FARE_VND)
    assert ride.refunded_vnd() == ROUTE_01_FARE_VND


def test_a_torn_tap_uploaded_after_the_tap_off_changes_nothing(world: World) -> None:
    ride = torn_ride(world, answer_lost=False)
    ride.upload_retap()
    ride.upload_alighting()
    world.follow()
    before = (world.balance(ride.account_id), legs(world, ride.account_id))
    ride.upload_torn()
    world.follow()
    assert (world.balance(ride.account_id), legs(world, ride.account_id)) == before
    assert only_journey(world, ride.account_id).purse_paid_vnd == 2 * ROUTE_01_FARE_VND


def test_a_retap_alone_after_the_torn_tap_opens_nothing(world: World) -> None:
    ride = torn_ride(world, answer_lost=False)
    ride.upload_torn()
    ride.upload_retap()
    world.follow()
    journey = only_journey(world, ride.account_id)
    assert [(leg.entry_tap is None, leg.exit_tap is None) for leg in journey.legs] == [
        (False, True)
    ]
    assert journey.purse_paid_vnd == ROUTE_01_FARE_VND
    assert world.journeys.close_service_day(DAY) == 1
    world.follow()
    assert world.balance(ride.account_id) == (BALANCE_VND, 0)


# The re-tap taken at another validator of the network: the card's proof names the boarding.


@pytest.mark.parametrize("other", [BUS_01_REAR, BUS_02], ids=["rear-door", "other-route"])
@pytest.mark.parametrize("answer_lost", [True, False], ids=["answer-lost", "torn-at-ratify"])
def test_a_retap_at_another_validator_recovers_the_boarding_where_the_card_paid(
    world: World, other: int, answer_lost: bool
) -> None:
    ride = torn_ride(world, answer_lost=answer_lost, retap_at=(other,))
    ride.upload_retap()
    ride.upload_torn()
    ride.upload_alighting()
    world.follow()
    journey = only_journey(world, ride.account_id)
    assert legs(world, ride.account_id) == KIM_MA_TO_MY_DINH
    assert (journey.fare_vnd, journey.purse_paid_vnd) == (ROUTE_01_FARE_VND, 2 * ROUTE_01_FARE_VND)
    assert ride.refunded_vnd() == ROUTE_01_FARE_VND


# A metro ride on the purse, its entry and its exit each torn at the ratifying READ and tapped
# again: the exit's session paid nothing (its entry did), yet its re-tap must not end another ride.

ENTRY = TapPoint(NETWORK, GATE_IN_01, GATE_IN_01, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND)
EXIT = TapPoint(NETWORK, GATE_OUT_02, GATE_OUT_02, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND)
EXIT_MIN = 5


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))), ids=str)
def test_a_metro_ride_torn_at_both_gates_and_tapped_again_refunds_what_an_untorn_one_would(
    order: tuple[int, ...],
) -> None:
    world = build()
    account_id, card = rider_with_card(world)
    entry = torn_tap(card, ENTRY, unix(0), answer_lost=False)
    entry_again = retap(card, GATE_IN_01, torn_at=(ENTRY, 0))
    exit_ = torn_tap(card, EXIT, unix(EXIT_MIN), answer_lost=False)
    exit_again = retap(card, GATE_OUT_02, torn_at=(EXIT, EXIT_MIN))
    assert (entry.outcome, exit_.outcome) == (Outcome.CHARGED, Outcome.PAID_AT_ENTRY)
    taps = [
        (GATE_IN_01, entry, 0),
        (GATE_IN_01, entry_again, 0),
        (GATE_OUT_02, exit_, EXIT_MIN),
        (GATE_OUT_02, exit_again, EXIT_MIN),
    ]
    for index in order:
        upload(world, *taps[index])
    world.follow()
    journey = only_journey(world, account_id)
    assert [(leg.from_stop_id, leg.to_stop_id) for leg in journey.legs] == [("2A-01", "2A-02")]
    assert journey.purse_paid_vnd == MAX_FROM_CAT_LINH_VND
    refund_vnd = MAX_FROM_CAT_LINH_VND - CAT_LINH_TO_LA_THANH_VND
    assert world.balance(account_id) == (BALANCE_VND + refund_vnd, 0)
