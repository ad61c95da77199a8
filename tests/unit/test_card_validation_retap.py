"""A tap torn at any APDU, then a re-tap at another validator of the network: one fare, once.

CARD.md, "Ratification": a card torn between CLOSE and the ratifying READ comes back unratified
(SELECT and OPEN do not ratify, and the flag outlives the field) with a very recent event of its
network, and any validator of the network lets it through without charging. Power fails in both
ways at every APDU of the first tap: before the card acts on a command, or after it acted and
before its answer left (`LosesAnswer`), the case of a committed CLOSE the validator never heard.
"""

from __future__ import annotations

import pytest

from hardware.emulator.card import CardTorn, EmulatedCard
from hardware.fake_reader import CardInReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import RECORDS_PER_FILE, Sfi
from hardware.tlc1.records import Event, EventKind, is_blank
from hardware.tlc1.terminal import Terminal
from tests.builders.card_tearing import (
    VALIDATION_APDUS,
    VALIDATION_CLOSE_APDU,
    VALIDATION_RATIFY_APDU,
    Cut,
    LosesAnswer,
    cuts,
)
from tests.builders.card_validation import (
    MASTER_KEYS,
    METRO_IN,
    NETWORK,
    NOW,
    issued_card,
    purse,
)
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation

PURSE_VND = 50_000
FRONT_DOOR = TapPoint(
    network_id=NETWORK, location=32, validator=77, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
# Other validators of the network: the rear door of the next bus at the next stop, the next gate
# of the same station, an entry gate of another station, and an exit gate.
REAR_DOOR = TapPoint(
    network_id=NETWORK, location=33, validator=78, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
NEXT_GATE = TapPoint(
    network_id=NETWORK, location=1, validator=102, kind=EventKind.METRO_ENTRY, fare_vnd=19_000
)
OTHER_STATION = TapPoint(
    network_id=NETWORK, location=5, validator=501, kind=EventKind.METRO_ENTRY, fare_vnd=15_000
)
EXIT_GATE = TapPoint(
    network_id=NETWORK, location=3, validator=302, kind=EventKind.METRO_EXIT, fare_vnd=17_000
)
RIDES = {
    "bus-other-validator": (FRONT_DOOR, REAR_DOOR),
    "metro-next-gate": (METRO_IN, NEXT_GATE),
    "metro-other-station": (METRO_IN, OTHER_STATION),
    "metro-exit-gate": (METRO_IN, EXIT_GATE),
}
RETAP_AFTER_S = 5
TORN_CUTS = [
    c for c in cuts(VALIDATION_APDUS) if c is not None and not c.reached(VALIDATION_RATIFY_APDU)
]


def tap(card: EmulatedCard, point: TapPoint, at: int, cut: Cut | None = None) -> Validation:
    """One tap in a new power cycle, torn as `cut` says."""
    card.tear_after = cut.answered if cut is not None and not cut.acted else None
    in_field = LosesAnswer(card, cut.answered + 1) if cut is not None and cut.acted else card
    reader = CardInReader(in_field, "validator", lost_card_errors=(CardTorn,))
    reader.power_on()
    validator = CardValidator(
        Terminal(reader, SoftwareSam(MASTER_KEYS)),
        point,
        denied_serials=frozenset(),
        clock=lambda: at,
    )
    result = validator.validate()
    card.tear_after = None
    return result


def events(card: EmulatedCard) -> list[Event]:
    raws = card.image.records[Sfi.EVENT_LOG][: RECORDS_PER_FILE[Sfi.EVENT_LOG]]
    return [Event.decode(raw) for raw in raws if not is_blank(raw)]


@pytest.mark.parametrize("ride", list(RIDES), ids=str)
@pytest.mark.parametrize("cut", TORN_CUTS, ids=str)
def test_a_tap_torn_at_any_apdu_is_never_charged_twice_at_another_validator(
    cut: Cut, ride: str
) -> None:
    first_point, retap_point = RIDES[ride]
    card = issued_card(PURSE_VND)

    first = tap(card, first_point, NOW, cut)
    retap = tap(card, retap_point, NOW + RETAP_AFTER_S)

    committed = cut.reached(VALIDATION_CLOSE_APDU)
    assert retap.accepted
    if committed:
        # The card paid at the first validator; the re-tap elsewhere takes nothing more.
        assert retap.charged_vnd == 0
        assert purse(card) == PURSE_VND - first_point.fare_vnd
        assert [e.amount for e in events(card) if e.amount] == [first_point.fare_vnd]
    else:
        # Nothing was written: the re-tap is the ride, and it pays once.
        assert first.outcome is Outcome.CARD_LOST
        assert retap.outcome is Outcome.CHARGED
        assert purse(card) == PURSE_VND - retap_point.fare_vnd


@pytest.mark.parametrize("cut", [c for c in TORN_CUTS if c.reached(VALIDATION_CLOSE_APDU)], ids=str)
def test_the_retap_elsewhere_proves_the_torn_ride_and_leaves_the_card_ratified(cut: Cut) -> None:
    card = issued_card(PURSE_VND)
    tap(card, FRONT_DOOR, NOW, cut)
    assert not card.image.ratified  # SELECT and OPEN of the next validator must not change it

    retap = tap(card, REAR_DOOR, NOW + RETAP_AFTER_S)

    assert (retap.outcome, retap.charged_vnd) == (Outcome.RETAP_AFTER_TEAR, 0)
    assert retap.proof is not None
    assert retap.recovered is not None
    assert (retap.recovered.validator, retap.recovered.at) == (FRONT_DOOR.validator, NOW)
    assert card.image.ratified
    # Now ratified, a later tap elsewhere is a new ride and pays.
    assert tap(card, REAR_DOOR, NOW + 600).outcome is Outcome.CHARGED


def test_a_ratified_ride_then_a_tap_at_another_validator_is_a_new_ride() -> None:
    # The rider saw the green light: the next tap elsewhere is not a recovery.
    card = issued_card(PURSE_VND)
    assert tap(card, FRONT_DOOR, NOW).outcome is Outcome.CHARGED
    assert tap(card, REAR_DOOR, NOW + RETAP_AFTER_S).outcome is Outcome.CHARGED
    assert purse(card) == PURSE_VND - FRONT_DOOR.fare_vnd - REAR_DOOR.fare_vnd


def test_an_unratified_ride_older_than_the_window_frees_nothing() -> None:
    card = issued_card(PURSE_VND)
    tap(card, FRONT_DOOR, NOW, Cut(VALIDATION_CLOSE_APDU))  # committed, READ lost
    late = tap(card, REAR_DOOR, NOW + 121)
    assert late.outcome is Outcome.CHARGED


def test_an_unratified_event_of_another_network_frees_nothing() -> None:
    card = issued_card(PURSE_VND)
    tap(card, FRONT_DOOR, NOW, Cut(VALIDATION_CLOSE_APDU))
    elsewhere = TapPoint(
        network_id=NETWORK + 1, location=1, validator=9, kind=EventKind.BUS_BOARDING, fare_vnd=1
    )
    assert tap(card, elsewhere, NOW + RETAP_AFTER_S).outcome is Outcome.OTHER_NETWORK
