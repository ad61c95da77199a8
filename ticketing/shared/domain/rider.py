"""Rider categories, shared by virtual cards (spec/QR.md) and smart cards (spec/CARD.md)."""

from enum import IntEnum


class RiderCategory(IntEnum):
    REGULAR = 0
    PRIORITY = 1
    ELDERLY = 2
    CHILD = 3
    MERIT = 4
    DISABLED = 5
    POOR_HOUSEHOLD = 6

    @property
    def rides_free(self) -> bool:
        """Hanoi carries these groups free on bus and metro; their rides are still recorded."""
        return self >= RiderCategory.ELDERLY
