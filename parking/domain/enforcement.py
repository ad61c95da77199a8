"""What an officer's check of a plate in a lot answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class EnforcementStatus(StrEnum):
    PAID = "paid"  # a session is open and paid until after now
    EXPIRED = "expired"  # a session is open but its paid time has run out
    UNPAID = "unpaid"  # no session of the plate is open in the lot


def status_at(paid_until: datetime | None, now: datetime) -> EnforcementStatus:
    if paid_until is None:
        return EnforcementStatus.UNPAID
    return EnforcementStatus.PAID if now < paid_until else EnforcementStatus.EXPIRED
