"""Readers without hardware: a scripted card for unit tests and an adapter for an in-process card.

Both follow the port exactly (`hardware.reader.CardReader`), so a terminal cannot tell them from
a PC/SC reader. Neither ever sleeps: a wait answers at once from the current state, because a
test that needs a card to arrive later inserts it itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hardware.invariants import require
from hardware.reader import SW_BYTES, CardIOError, ReaderError

# The ATR a PC/SC reader synthesises for an ISO 14443-4 card with no historical bytes
# (PC/SC part 3): TS, T0, TD1 (T=0), TD2 (T=1), TCK.
CONTACTLESS_ATR = bytes.fromhex("3B80800101")

ScriptedResponse = bytes | ReaderError


class _FakeSlot:
    """What both fakes share: a name, a card that is present or not, and waits that answer at
    once from that state."""

    def __init__(self, name: str, *, card_present: bool) -> None:
        self._name = name
        self._present = card_present
        self._powered = False

    @property
    def name(self) -> str:
        return self._name

    def insert_card(self) -> None:
        self._present = True

    def is_card_present(self) -> bool:
        return self._present

    def wait_for_card(self, timeout_s: float) -> bool:
        require(timeout_s >= 0, "a wait needs a timeout of zero or more seconds")
        return self._present

    def wait_for_removal(self, timeout_s: float) -> bool:
        require(timeout_s >= 0, "a wait needs a timeout of zero or more seconds")
        return not self._present


class ScriptedReader(_FakeSlot):
    """A reader holding a card that answers a fixed script of exchanges, in order.

    Each entry is (expected command APDU, response). A response may also be a `CardIOError` or
    `ReaderIOError` instance, raised instead of answering, to play a torn card or a dead reader.
    Any APDU that is not the next one scripted raises `UnscriptedApdu`: the test is wrong, or
    the code under test sent something it should not have.
    """

    def __init__(
        self,
        name: str,
        script: Sequence[tuple[bytes, ScriptedResponse]],
        *,
        card_present: bool = True,
        power_on_data: bytes = CONTACTLESS_ATR,
    ) -> None:
        super().__init__(name, card_present=card_present)
        self._script = tuple(script)
        self._next = 0
        self._power_on_data = power_on_data
        self.transmitted: list[bytes] = []

    def __repr__(self) -> str:
        return f"ScriptedReader({self._name!r}, {self._next}/{len(self._script)} exchanges)"

    @property
    def unused(self) -> tuple[tuple[bytes, ScriptedResponse], ...]:
        """The exchanges not yet played; a test that expects a complete run checks it is empty."""
        return self._script[self._next :]

    def remove_card(self) -> None:
        self._present = False
        self._powered = False

    def power_on(self) -> bytes:
        if not self._present:
            raise CardIOError(f"{self._name}: no card to power on")
        self._powered = True
        return self._power_on_data

    def transmit(self, apdu: bytes) -> bytes:
        require(self._powered, "power the card on before transmitting")
        if self._next >= len(self._script):
            raise UnscriptedApdu(f"{self._name}: {apdu.hex().upper()} after the script ended")
        expected, response = self._script[self._next]
        if apdu != expected:
            raise UnscriptedApdu(
                f"{self._name}: exchange {self._next} expected {expected.hex().upper()}, "
                f"got {apdu.hex().upper()}"
            )
        self._next += 1
        self.transmitted.append(apdu)
        if isinstance(response, ReaderError):
            if isinstance(response, CardIOError):
                self.remove_card()
            raise response
        require(len(response) >= SW_BYTES, "a scripted response needs SW1 SW2")
        return response

    def power_off(self) -> None:
        self._powered = False


class ApduCard(Protocol):
    """An in-process card, such as the TLC1 emulator."""

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def transmit(self, apdu: bytes) -> bytes: ...


class CardInReader(_FakeSlot):
    """Puts an in-process card in a reader, so terminal code drives it through the port.

    The card's own "torn" exceptions are named in `lost_card_errors` (this module cannot import
    the emulator); they become `CardIOError`, and the card counts as gone from the field.
    """

    def __init__(
        self,
        card: ApduCard,
        name: str = "card in reader",
        *,
        lost_card_errors: tuple[type[Exception], ...] = (),
        card_present: bool = True,
    ) -> None:
        super().__init__(name, card_present=card_present)
        self._card = card
        self._lost_card_errors = lost_card_errors

    def __repr__(self) -> str:
        return f"CardInReader({self._name!r}, present={self._present})"

    def remove_card(self) -> None:
        """Take the card out of the field: it loses power, and with it any open session."""
        if self._powered:
            self._powered = False
            self._card.power_off()
        self._present = False

    def power_on(self) -> bytes:
        if not self._present:
            raise CardIOError(f"{self._name}: no card to power on")
        try:
            power_on_data = self._card.power_on()
        except self._lost_card_errors as error:
            self._lose_card()
            raise CardIOError(f"{self._name}: the card was lost at power-on") from error
        self._powered = True
        return power_on_data

    def transmit(self, apdu: bytes) -> bytes:
        require(self._powered, "power the card on before transmitting")
        try:
            response = self._card.transmit(apdu)
        except self._lost_card_errors as error:
            self._lose_card()
            raise CardIOError(f"{self._name}: the card was lost during {apdu[:4].hex()}") from error
        if len(response) < SW_BYTES:
            raise CardIOError(f"{self._name}: {len(response)}-byte response has no status word")
        return response

    def power_off(self) -> None:
        if self._powered:
            self._powered = False
            self._card.power_off()

    def _lose_card(self) -> None:
        # A torn card has already lost power; telling it again would be a second, fake event.
        self._powered = False
        self._present = False


class UnscriptedApdu(AssertionError):
    """A test bug: the scripted card was sent an APDU nobody scripted, or one out of order."""
