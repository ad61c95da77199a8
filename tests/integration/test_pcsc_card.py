"""The card flows of the reader contract (tests/card_reader_contract.py), over the real PC/SC path.

pyscard → pcscd → vsmartcard's vpcd driver → TCP → `VpcdLink` → `EmulatedCard`, on vpcd's second
slot (see tests/integration/pcsc_card.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from tests.services import require_pyscard

require_pyscard()

# These reach pyscard through hardware.pcsc, so they come after the check just above.
from hardware.emulator.card import EmulatedCard  # noqa: E402
from hardware.emulator.vpcd_slot import PresentedCard, VpcdSlot, presented_card  # noqa: E402
from tests.card_reader_contract import CardOnReader, CardReaderContract, Present  # noqa: E402
from tests.integration.pcsc_card import ABSENT_S, second_vpcd_slot  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def vpcd_slot() -> VpcdSlot:
    return second_vpcd_slot()


class TestPcscReader(CardReaderContract):
    @pytest.fixture
    def present(self, vpcd_slot: VpcdSlot) -> Present:
        def on_slot(card: EmulatedCard) -> AbstractContextManager[CardOnReader]:
            return _on_slot(card, vpcd_slot)

        return on_slot


@contextmanager
def _on_slot(card: EmulatedCard, slot: VpcdSlot) -> Iterator[PresentedCard]:
    with presented_card(card, slot, absent_s=ABSENT_S) as presented:
        yield presented
