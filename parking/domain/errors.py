"""Operating errors of parking's tariff core. Each `code` is stable and travels to clients
unchanged; bugs are `require(...)` failures, never one of these."""

from __future__ import annotations

from datetime import datetime, timedelta

from ticketing.shared.domain.errors import DomainError


class ParkingError(DomainError):
    code = "parking_error"


class TariffFileInvalid(ParkingError):
    """A rate table file breaks the format: names the file, the field (as a path such as
    `versions[0].classes.car.periods[1].rule`) and what is wrong with it."""

    code = "tariff_file_invalid"

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file = file
        self.field = field
        self.message = message
        super().__init__(f"{file}: {field or '(whole file)'}: {message}")


class InvalidStay(ParkingError):
    """The stay itself is malformed: naive instants, an end not after the start, or a stay longer
    than the engine prices at all."""

    code = "invalid_stay"


class NoTariffInForce(ParkingError):
    code = "no_tariff_in_force"

    def __init__(self, table_id: str, at: datetime) -> None:
        super().__init__(f"rate table {table_id!r} has no version in force at {at.isoformat()}")


class VehicleClassNotServed(ParkingError):
    code = "vehicle_class_not_served"

    def __init__(self, table_id: str, version: int, vehicle_class: str) -> None:
        super().__init__(
            f"rate table {table_id!r} version {version} has no prices for {vehicle_class!r}"
        )


class StayTooLong(ParkingError):
    """The stay is longer than the table's maximum stay for the vehicle class."""

    code = "stay_too_long"

    def __init__(self, stay: timedelta, max_stay: timedelta) -> None:
        self.stay = stay
        self.max_stay = max_stay
        super().__init__(f"a stay of {stay} is longer than the maximum stay of {max_stay}")


class PlateUnreadable(ParkingError):
    code = "plate_unreadable"

    def __init__(self, text: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"licence plate {text[:40]!r} cannot be read: {reason}")
