"""The card-vectors card behind pcscd's vpcd driver, for the PC/SC tier (helpers, not collected).

The tier uses vpcd's SECOND slot: `tests.services.vpcd_address()` names the first slot (port 35963,
reader "Virtual PCD 00 00"), where a developer's `tapledger card emulate` sits by default; slot 1
is the next port and the reader "Virtual PCD 00 01". Both are derived from that one address.

Import this module only after `require_pyscard()`: it reaches pyscard through `hardware.pcsc`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from hardware.emulator.card import EmulatedCard, random_challenge
from hardware.emulator.vpcd_slot import PresentedCard, VpcdSlot, VpcdSlotError, presented_card
from tests.builders.card_emulator import MASTER_KEYS, SERIAL
from tests.services import in_ci, vpcd_address, vpcd_exclusive

SECOND_SLOT = 1
# A torn card stays away this long; pcscd must poll (every 400 ms) while it is gone to see it go.
ABSENT_S = 1.0


def second_vpcd_slot() -> VpcdSlot:
    """vpcd's second slot; skipped on a laptop, a failure under CI, when pcscd does not list it."""
    host, first_port = vpcd_address()
    slot = VpcdSlot(host, first_port, SECOND_SLOT)
    try:
        slot.reader_name()
    except VpcdSlotError as error:
        if in_ci():
            pytest.fail(f"{error}; under CI=true every tier must run", pytrace=False)
        pytest.skip(f"SKIPPED TIER: {error}")
    return slot


@contextmanager
def pcsc_card(
    slot: VpcdSlot, *, challenges: Callable[[], bytes] = random_challenge
) -> Iterator[PresentedCard]:
    """The vectors' card, blank, presented on `slot`; yields the connected reader and the card."""
    card = EmulatedCard.from_master_keys(MASTER_KEYS, SERIAL, challenges=challenges)
    with vpcd_exclusive(), presented_card(card, slot, absent_s=ABSENT_S) as presented:
        yield presented
