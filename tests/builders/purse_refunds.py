"""Emulated cards with a purse, decided at a validator and uploaded to the journeys world."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from hardware.emulator.card import EmulatedCard
from hardware.tlc1.records import EventKind
from tests.builders.card_purses import unix
from tests.builders.journeys import (
    GATE_IN_01,
    GATE_OUT_02,
    START,
    World,
)
from tests.tap_media import CARD_SERIAL, NETWORK, card_terminal, personalised_card
from ticketing.journeys.domain.journey import Journey
from ticketing.taps.application.ingestion import CardTap
from validators.card_desk import CardDesk
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation

PURSE_VND = 50_000


MAX_FROM_CAT_LINH_VND = 15_000  # what the entry gate at 2A-01 takes: the dearest ride from there


CAT_LINH_TO_LA_THANH_VND = 8_000  # 2A-01 to 2A-02


DEAREST_TO_LA_THANH_VND = 14_000  # an exit at 2A-02 with no entry on the card


ROUTE_01_FARE_VND = 10_000  # what a route 01 validator takes from the purse at each tap


def rider_with_card(world: World) -> tuple[UUID, EmulatedCard]:
    account_id, _ = world.rider()
    world.journeys.smart_cards.issue(account_id, serial=CARD_SERIAL.hex())
    return account_id, personalised_card(account_id, purse_vnd=PURSE_VND)


def decide(
    card: EmulatedCard, validator_id: int, minutes: int, kind: EventKind, fare_vnd: int
) -> Validation:
    """The validator `validator_id` decides on the card, `minutes` after START."""
    point = TapPoint(NETWORK, validator_id, validator_id, kind, fare_vnd)
    at = unix(minutes)
    validation = CardValidator(
        card_terminal(card), point, denied_serials=frozenset(), clock=lambda: at
    ).validate()
    assert validation.accepted, validation.outcome
    return validation


def upload(world: World, validator_id: int, validation: Validation, minutes: int) -> None:
    """The validator's outbox uploads the tap with its session proof."""
    assert validation.proof is not None
    world.seq += 1
    world.clock.now = START + timedelta(minutes=minutes)
    tap = CardTap(
        world.seq,
        world.clock.now,
        "accepted",
        validation.outcome.value,
        CARD_SERIAL.hex(),
        validation.proof,
    )
    [result] = world.taps.ingest_batch(validator_id, [tap])
    assert result.status == "accepted", result


def purse_on_card(card: EmulatedCard) -> int:
    return CardDesk(card_terminal(card)).purse()[1]


def only_journey(world: World, account_id: UUID) -> Journey:
    [journey] = world.journeys_of(account_id)
    return journey


def card_tap(
    world: World,
    card: EmulatedCard,
    validator_id: int,
    minutes: int,
    kind: EventKind,
    fare_vnd: int,
) -> Outcome:
    validation = decide(card, validator_id, minutes, kind, fare_vnd)
    upload(world, validator_id, validation, minutes)
    return validation.outcome


def enter(world: World, card: EmulatedCard, minutes: int) -> Outcome:
    return card_tap(world, card, GATE_IN_01, minutes, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND)


def leave(world: World, card: EmulatedCard, minutes: int, gate: int = GATE_OUT_02) -> Outcome:
    return card_tap(world, card, gate, minutes, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND)
