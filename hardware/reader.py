"""The reader port: what the terminal needs from a card reader, and the only two ways it fails.

Modelled on Keyple's `ReaderSpi`. A driver (PC/SC, a fake, later a phone's NFC) implements
`CardReader`; the terminal code never sees the driver's library or its exceptions. Optional
abilities are separate small protocols a caller tests for with `isinstance`, never flags.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

SW_BYTES = 2  # every response ends with SW1 SW2


@runtime_checkable
class CardReader(Protocol):
    """One reader slot or contactless field, holding at most one card.

    `power_on`, `transmit` and `power_off` belong to one thread at a time (the transaction);
    the waits may run in another thread. Only `ReaderIOError` and `CardIOError` escape.
    """

    @property
    def name(self) -> str:
        """The reader's name as its driver lists it."""
        ...

    def is_card_present(self) -> bool:
        """Whether a card is in the field right now, without waiting."""
        ...

    def wait_for_card(self, timeout_s: float) -> bool:
        """Block until a card is present (True) or `timeout_s` passes (False)."""
        ...

    def wait_for_removal(self, timeout_s: float) -> bool:
        """Block until the field is empty (True) or `timeout_s` passes (False)."""
        ...

    def power_on(self) -> bytes:
        """Power and connect the card; return its power-on data (the ATR)."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU; return the response data followed by SW1 SW2.

        The response always has at least the two status bytes; anything shorter is a
        `CardIOError`, so callers may rely on it.
        """
        ...

    def power_off(self) -> None:
        """Disconnect and unpower the card. Does nothing when the card is not powered."""
        ...


@runtime_checkable
class CancellableWaits(Protocol):
    """A reader whose blocking waits another thread can cut short, for a clean shutdown."""

    def cancel_waits(self) -> None:
        """Make every `wait_for_card` / `wait_for_removal` in progress return False now."""
        ...


class ReaderError(Exception):
    """The base of the only two errors a reader raises."""


class ReaderIOError(ReaderError):
    """The reader or the service behind it (pcscd, a USB link) failed; the card may be fine."""


class CardIOError(ReaderError):
    """The card left the field, stopped answering, or answered something that is not an APDU
    response. Whatever the card was doing is unfinished; its secure session drops it."""
