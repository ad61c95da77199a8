"""A card reader that counts the APDUs sent through it (the card benchmark and the PC/SC tests)."""

from __future__ import annotations

from hardware.reader import CardReader


class CountingReader:
    """A `CardReader` that counts the APDUs sent through it."""

    def __init__(self, reader: CardReader) -> None:
        self.inner = reader
        self.apdus = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def is_card_present(self) -> bool:
        return self.inner.is_card_present()

    def wait_for_card(self, timeout_s: float) -> bool:
        return self.inner.wait_for_card(timeout_s)

    def wait_for_removal(self, timeout_s: float) -> bool:
        return self.inner.wait_for_removal(timeout_s)

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        self.apdus += 1
        return self.inner.transmit(apdu)

    def power_off(self) -> None:
        self.inner.power_off()
