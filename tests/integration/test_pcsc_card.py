"""The card flows of tests/unit/test_card_validation.py, over the real PC/SC path.

pyscard → pcscd → vsmartcard's vpcd driver → TCP → `VpcdLink` → `EmulatedCard`, on vpcd's second
slot (see tests/integration/pcsc_card.py). Every new tap powers the card off and on again through
pcscd, as a card leaving one validator's field and entering the next one's would.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from tests.services import require_pyscard

require_pyscard()

# These reach pyscard through hardware.pcsc, so they come after the check just above.
from hardware.counting_reader import CountingReader  # noqa: E402
from hardware.emulator.vpcd_slot import PresentedCard, VpcdSlot  # noqa: E402
from hardware.reader import CardReader  # noqa: E402
from hardware.sam import SoftwareSam  # noqa: E402
from hardware.tlc1.constants import KeyLevel  # noqa: E402
from hardware.tlc1.records import Environment, EventKind  # noqa: E402
from hardware.tlc1.terminal import Terminal  # noqa: E402
from tests.builders.card_emulator import (  # noqa: E402
    MASTER_KEYS,
    TRACE,
    step_name,
    trace_bytes,
    trace_card_challenges,
)
from tests.integration.pcsc_card import (  # noqa: E402
    pcsc_card,
    second_vpcd_slot,
    tap_again_after_tear,
)
from validators.card_desk import CardDesk  # noqa: E402
from validators.card_validation import CardValidator, Outcome, TapPoint, Validation  # noqa: E402

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

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def vpcd_slot() -> VpcdSlot:
    return second_vpcd_slot()


def terminal(reader: CardReader) -> Terminal:
    return Terminal(reader, SoftwareSam(MASTER_KEYS))


def new_tap(reader: CardReader) -> None:
    """The card leaves one field and enters the next: pcscd unpowers it and powers it again."""
    reader.power_off()
    reader.power_on()


def issue(presented: PresentedCard, purse_vnd: int = RELOAD_VND) -> None:
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


def tap(presented: PresentedCard, *, at: int = NOW, point: TapPoint = BUS) -> tuple[Outcome, int]:
    new_tap(presented.reader)
    counting = CountingReader(presented.reader)
    return validate(counting, at=at, point=point).outcome, counting.apdus


def purse(reader: CardReader) -> int:
    new_tap(reader)
    return CardDesk(terminal(reader)).purse()[1]


def test_the_card_vectors_trace_is_answered_byte_for_byte_through_pcscd(
    vpcd_slot: VpcdSlot,
) -> None:
    with pcsc_card(vpcd_slot, challenges=trace_card_challenges()) as presented:
        for index in range(len(TRACE)):
            answer = presented.reader.transmit(trace_bytes(index, "command"))
            assert answer.hex().upper() == TRACE[index]["response"].upper(), (
                f"APDU {index} ({step_name(index)})"
            )


def test_a_bus_ride_through_pcscd_takes_the_fare_in_at_most_eight_apdus(
    vpcd_slot: VpcdSlot,
) -> None:
    with pcsc_card(vpcd_slot) as presented:
        issue(presented)
        outcome, apdus = tap(presented)
        assert outcome is Outcome.CHARGED
        assert apdus <= APDUS_PER_VALIDATION_MAX
        assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd


def test_a_reload_through_pcscd_adds_to_the_purse_and_proves_the_session(
    vpcd_slot: VpcdSlot,
) -> None:
    with pcsc_card(vpcd_slot) as presented:
        issue(presented, purse_vnd=0)
        new_tap(presented.reader)
        reloaded = CardDesk(terminal(presented.reader)).reload(30_000)
        assert (reloaded.purse_before_vnd, reloaded.purse_after_vnd) == (0, 30_000)
        assert reloaded.proof.level is KeyLevel.LOAD
        assert purse(presented.reader) == 30_000


def test_a_card_torn_through_pcscd_before_ratifying_is_let_through_again_without_a_second_charge(
    vpcd_slot: VpcdSlot,
) -> None:
    with pcsc_card(vpcd_slot) as presented:
        issue(presented)
        new_tap(presented.reader)
        presented.card.tear_after = TEAR_AFTER_CLOSE
        # The CLOSE answered, so the ride is paid; only the ratifying READ met an empty field.
        assert validate(presented.reader, at=NOW).outcome is Outcome.CHARGED
        presented.card.tear_after = None
        tap_again_after_tear(presented.reader)
        assert tap(presented, at=NOW + RETAP_DELAY_S)[0] is Outcome.RETAP_AFTER_TEAR
        assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd


def test_a_card_torn_through_pcscd_before_close_keeps_its_purse_and_pays_once_on_the_retap(
    vpcd_slot: VpcdSlot,
) -> None:
    with pcsc_card(vpcd_slot) as presented:
        issue(presented)
        new_tap(presented.reader)
        presented.card.tear_after = TEAR_BEFORE_CLOSE
        assert validate(presented.reader, at=NOW).outcome is Outcome.CARD_LOST
        presented.card.tear_after = None
        tap_again_after_tear(presented.reader)
        assert purse(presented.reader) == RELOAD_VND
        assert tap(presented, at=NOW + RETAP_DELAY_S)[0] is Outcome.CHARGED
        assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd


def test_a_card_torn_through_pcscd_is_let_through_free_at_another_validator_of_the_network(
    vpcd_slot: VpcdSlot,
) -> None:
    # The next validator's SELECT and OPEN, through pcscd's power cycles, leave the card
    # unratified, so it sees the torn ride wherever it stands (CARD.md, "Ratification").
    with pcsc_card(vpcd_slot) as presented:
        issue(presented)
        new_tap(presented.reader)
        presented.card.tear_after = TEAR_AFTER_CLOSE
        assert validate(presented.reader, at=NOW).outcome is Outcome.CHARGED
        presented.card.tear_after = None
        tap_again_after_tear(presented.reader)
        retap = tap(presented, at=NOW + RETAP_DELAY_S, point=OTHER_BUS)
        assert retap[0] is Outcome.RETAP_AFTER_TEAR
        assert purse(presented.reader) == RELOAD_VND - BUS.fare_vnd
