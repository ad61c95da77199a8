"""The card flows every `CardReader` driver must carry, written once and run against each driver.

The flows of tests/unit/test_card_validation.py over a real wire: the card-vectors trace byte for
byte, a bus ride, a reload, and the three tears. A test module subclasses `CardReaderContract`
as `Test...` and overrides the `present` fixture: a function that puts an `EmulatedCard` on its
reader and yields what the flows use (`CardOnReader`: the reader, connected and powered, and the
card). Every new tap powers the card off and on again through the driver, as a card leaving one
validator's field and entering the next one's would.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol
from uuid import UUID

import pytest

from hardware.counting_reader import CountingReader
from hardware.emulator.card import EmulatedCard, random_challenge
from hardware.reader import CancellableWaits, CardReader
from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.records import Environment, EventKind
from hardware.tlc1.terminal import Terminal
from tests.builders.card_emulator import (
    MASTER_KEYS,
    SERIAL,
    TRACE,
    step_name,
    trace_bytes,
    trace_card_challenges,
)
from validators.card_desk import CardDesk
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation

NETWORK = 1
NOW = 1_795_000_000
BUS = TapPoint(
    network_id=NETWORK, location=32, validator=77, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
RELOAD_VND = 50_000
APDUS_PER_VALIDATION_MAX = 8
# SELECT, OPEN, READ, DECREASE, APPEND, CLOSE: the card commits, and the ratifying READ is lost.
TEAR_AFTER_CLOSE = 6
# SELECT, OPEN, READ, DECREASE: the APPEND never arrives, nor the CLOSE.
TEAR_BEFORE_CLOSE = 4
RETAP_DELAY_S = 5
# Another validator of the network: another bus, at the next stop.
OTHER_BUS = TapPoint(
    network_id=NETWORK, location=33, validator=78, kind=EventKind.BUS_BOARDING, fare_vnd=8_000
)
# After a tear: the driver notices the card gone (pcscd at its next 400 ms poll), and back
# after the card's absence and another look; generous for a slow CI machine.
CARD_GONE_TIMEOUT_S = 3.0
CARD_BACK_TIMEOUT_S = 5.0


class CardOnReader(Protocol):
    @property
    def reader(self) -> CardReader: ...

    @property
    def card(self) -> EmulatedCard: ...


Present = Callable[[EmulatedCard], AbstractContextManager[CardOnReader]]


def vectors_card(challenges: Callable[[], bytes] = random_challenge) -> EmulatedCard:
    """The card-vectors card, blank."""
    return EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, challenges=challenges)


def terminal(reader: CardReader) -> Terminal:
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


def new_tap(reader: CardReader) -> None:
    """The card leaves one field and enters the next: unpowered, then powered again."""
    reader.power_off()
    reader.power_on()


def tap_again_after_tear(reader: CardReader) -> None:
    """What a rider does after a tear: the card leaves the field, comes back, is powered on."""
    reader.power_off()
    assert reader.wait_for_removal(CARD_GONE_TIMEOUT_S), "the driver never saw the card leave"
    assert reader.wait_for_card(CARD_BACK_TIMEOUT_S), "the torn card did not come back"
    reader.power_on()


def issue(presented: CardOnReader, purse_vnd: int = RELOAD_VND) -> None:
    desk = CardDesk(terminal(presented.reader))
    desk.personalise(
        Environment(
            network_id=NETWORK,
            issued_on=NOW - 86_400,
            rider_category=0,
            account_id=UUID("6f1c2b9e-3d4a-4b5c-8d7e-0123456789ab"),
        )
    )
    if purse_vnd:
        desk.reload(purse_vnd)


def validate(reader: CardReader, *, at: int, point: TapPoint = BUS) -> Validation:
    return CardValidator(
        terminal(reader), point, denied_serials=frozenset(), clock=lambda: at
    ).validate()


def tap(presented: CardOnReader, *, at: int = NOW, point: TapPoint = BUS) -> tuple[Outcome, int]:
    new_tap(presented.reader)
    counting = CountingReader(presented.reader)
    return validate(counting, at=at, point=point).outcome, counting.apdus


def purse(reader: CardReader) -> int:
    new_tap(reader)
    return CardDesk(terminal(reader)).purse()[1]


class CardReaderContract:
    """Override `present`: put the card on the driver's reader, connected and powered."""

    @pytest.fixture
    def present(self) -> Present:
        raise NotImplementedError

    def test_the_driver_implements_the_port_and_cancellable_waits(self, present: Present) -> None:
        with present(vectors_card()) as presented:
            assert isinstance(presented.reader, CardReader)
            assert isinstance(presented.reader, CancellableWaits)
            assert presented.reader.is_card_present()

    def test_the_card_vectors_trace_is_answered_byte_for_byte(self, present: Present) -> None:
        with present(vectors_card(trace_card_challenges())) as presented:
            for index in range(len(TRACE)):
                answer = presented.reader.transmit(trace_bytes(index, "command"))
                assert answer.hex().upper() == TRACE[index]["response"].upper(), (
                    f"APDU {index} ({step_name(index)})"
                )

    def test_a_bus_ride_takes_the_fare_in_at_most_eight_apdus(self, present: Present) -> None:
        with present(vectors_card()) as presented:
            issue(presented)
            outcome, apdus = tap(presented)
            assert outcome is Outcome.CHARGED
            assert apdus <= APDUS_PER_VALIDATION_MAX
            assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd

    def test_a_reload_adds_to_the_purse_and_proves_the_session(self, present: Present) -> None:
        with present(vectors_card()) as presented:
            issue(presented, purse_vnd=0)
            new_tap(presented.reader)
            reloaded = CardDesk(terminal(presented.reader)).reload(30_000)
            assert (reloaded.purse_before_vnd, reloaded.purse_after_vnd) == (0, 30_000)
            assert reloaded.proof.level is KeyLevel.LOAD
            assert purse(presented.reader) == 30_000

    def test_a_card_torn_before_ratifying_is_let_through_again_without_a_second_charge(
        self, present: Present
    ) -> None:
        with present(vectors_card()) as presented:
            issue(presented)
            new_tap(presented.reader)
            presented.card.tear_after = TEAR_AFTER_CLOSE
            # The CLOSE answered, so the ride is paid; only the ratifying READ met an empty field.
            assert validate(presented.reader, at=NOW).outcome is Outcome.CHARGED
            presented.card.tear_after = None
            tap_again_after_tear(presented.reader)
            assert tap(presented, at=NOW + RETAP_DELAY_S)[0] is Outcome.RETAP_AFTER_TEAR
            assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd

    def test_a_card_torn_before_close_keeps_its_purse_and_pays_once_on_the_retap(
        self, present: Present
    ) -> None:
        with present(vectors_card()) as presented:
            issue(presented)
            new_tap(presented.reader)
            presented.card.tear_after = TEAR_BEFORE_CLOSE
            assert validate(presented.reader, at=NOW).outcome is Outcome.CARD_LOST
            presented.card.tear_after = None
            tap_again_after_tear(presented.reader)
            assert purse(presented.reader) == RELOAD_VND
            assert tap(presented, at=NOW + RETAP_DELAY_S)[0] is Outcome.CHARGED
            assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd

    def test_a_torn_card_is_let_through_free_at_another_validator_of_the_network(
        self, present: Present
    ) -> None:
        # The next validator's SELECT and OPEN, through the driver's power cycles, leave the card
        # unratified, so it sees the torn ride wherever it stands (CARD.md, "Ratification").
        with present(vectors_card()) as presented:
            issue(presented)
            new_tap(presented.reader)
            presented.card.tear_after = TEAR_AFTER_CLOSE
            assert validate(presented.reader, at=NOW).outcome is Outcome.CHARGED
            presented.card.tear_after = None
            tap_again_after_tear(presented.reader)
            retap = tap(presented, at=NOW + RETAP_DELAY_S, point=OTHER_BUS)
            assert retap[0] is Outcome.RETAP_AFTER_TEAR
            assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd
