"""Why a journey refuses a command."""

from __future__ import annotations

from uuid import UUID

from ticketing.shared.domain.errors import DomainError


class JourneyNotOpen(DomainError):
    code = "journey_not_open"

    def __init__(self, journey_id_: UUID, status: str) -> None:
        super().__init__(f"journey {journey_id_} is {status}, not open")


class ServiceDayNotEnded(DomainError):
    """A service day is closed only once it is over: closing it early would charge riders
    still travelling the maximum fare."""

    code = "service_day_not_ended"

    def __init__(self, day: object) -> None:
        super().__init__(f"service day {day} has not ended yet")


class JourneyNotExtendable(DomainError):
    code = "journey_not_extendable"

    def __init__(self, journey_id_: UUID) -> None:
        super().__init__(f"journey {journey_id_} cannot take another leg")
