"""Cards pulled away mid-validation: where to cut, and a link that loses the card's answer."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.emulator.card import CardTorn, EmulatedCard

# SELECT, OPEN reading the environment, READ the last event, DECREASE, APPEND, CLOSE, READ.
VALIDATION_APDUS = 7


VALIDATION_CLOSE_APDU = 6


VALIDATION_RATIFY_APDU = 7


@dataclass(frozen=True)
class Cut:
    """The card answers `answered` APDUs, then power fails on the next one: before the card
    acts on it, or (`acted`) after the card acted on it, so only its answer is lost."""

    answered: int
    acted: bool = False

    def reached(self, apdu: int) -> bool:
        """Whether the card acted on the `apdu`-th command (1-based) of the transaction."""
        return apdu <= self.answered + (1 if self.acted else 0)

    def __str__(self) -> str:
        return f"{'answer-lost' if self.acted else 'cut'}-after-{self.answered}"


def cuts(apdus: int) -> list[Cut | None]:
    """Every way power can fail during a transaction of `apdus` APDUs, and no failure."""
    before = [Cut(n) for n in range(apdus + 1)]
    return [*before, *(Cut(n, acted=True) for n in range(apdus)), None]


class LosesAnswer:
    """A card whose `lost`-th APDU of a power cycle is acted on, then power fails before the
    answer leaves: what `tear_after` cannot play, and what a real card does when torn mid-CLOSE."""

    def __init__(self, card: EmulatedCard, lost: int) -> None:
        self.card = card
        self.lost = lost
        self.sent = 0

    def power_on(self) -> bytes:
        self.sent = 0
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def transmit(self, apdu: bytes) -> bytes:
        self.sent += 1
        response = self.card.transmit(apdu)
        if self.sent == self.lost:
            self.card.power_off()
            raise CardTorn(f"power failed before answering APDU {self.lost}")
        return response
