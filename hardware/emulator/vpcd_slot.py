"""An emulated card presented to pcscd in one of vpcd's slots, and a PC/SC reader connected to it.

pcscd's vpcd driver listens on one TCP port per slot, the first slot's port plus the slot's
index, and names the reader of slot i "Virtual PCD 00 0i". A caller names the first slot's
address (as `tapledger card emulate --vpcd` does) and the index of the slot to use. The card
benchmark (`loadtests/bench_card.py`) and the PC/SC test tier present their cards this way.

This module reaches pyscard through `hardware.pcsc`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hardware.emulator.card import EmulatedCard
from hardware.emulator.vpcd import ABSENT_S_DEFAULT, VpcdLink
from hardware.pcsc import PcscReader, list_readers

VPCD_READER_NAME = "Virtual PCD"
# pcscd polls vpcd for a card every 400 ms; these allow several polls and a slow CI machine.
SLOT_FREE_TIMEOUT_S = 3.0
CARD_SEEN_TIMEOUT_S = 5.0
LINK_STOP_TIMEOUT_S = 5.0


class VpcdSlotError(Exception):
    """The vpcd slot is missing, taken by another card, or never showed ours."""

    code = "vpcd_slot_unavailable"


@dataclass(frozen=True)
class VpcdSlot:
    """Slot `index` of the vpcd whose first slot listens on `host:first_port`."""

    host: str
    first_port: int
    index: int

    @property
    def port(self) -> int:
        return self.first_port + self.index

    def reader_name(self) -> str:
        """pcscd's name for this slot's reader; `VpcdSlotError` unless exactly one matches."""
        suffix = f" {self.index:02X}"
        names = [name for name in list_readers(VPCD_READER_NAME) if name.endswith(suffix)]
        if len(names) != 1:
            raise VpcdSlotError(
                f"pcscd lists {len(names)} readers named {VPCD_READER_NAME!r} ending {suffix!r} "
                f"(vpcd slot {self.index}, {self.host}:{self.port}); expected one"
            )
        return names[0]


@dataclass(frozen=True)
class PresentedCard:
    reader: PcscReader  # connected: the card is powered on
    card: EmulatedCard
    seen_after_s: float  # from starting the link until pcscd reported the card present


@contextmanager
def presented_card(
    card: EmulatedCard, slot: VpcdSlot, *, absent_s: float = ABSENT_S_DEFAULT
) -> Iterator[PresentedCard]:
    """`card` behind a `VpcdLink` on `slot`, in a background thread, and a reader connected to it.

    A tear (`card.tear_after`) makes vpcd see the card leave; the link brings it back after
    `absent_s`. On exit the reader is powered off and the link stopped.
    """
    reader = PcscReader(slot.reader_name())
    # Waits out the previous presentation's card, which pcscd notices gone at its next poll.
    if not reader.wait_for_removal(SLOT_FREE_TIMEOUT_S):
        raise VpcdSlotError(f"{reader.name} holds another card: something else uses this slot")
    stop = threading.Event()
    link = VpcdLink(card, host=slot.host, port=slot.port, absent_s=absent_s)
    thread = threading.Thread(target=link.run, args=(stop,), name=reader.name, daemon=True)
    started_s = time.monotonic()
    thread.start()
    try:
        if not reader.wait_for_card(CARD_SEEN_TIMEOUT_S):
            raise VpcdSlotError(
                f"{reader.name} showed no card {CARD_SEEN_TIMEOUT_S:g} s after ours"
            )
        seen_after_s = time.monotonic() - started_s
        reader.power_on()
        try:
            yield PresentedCard(reader, card, seen_after_s)
        finally:
            reader.power_off()
    finally:
        stop.set()
        thread.join(LINK_STOP_TIMEOUT_S)
    if thread.is_alive():
        raise VpcdSlotError(f"the vpcd link of {reader.name} did not stop")
