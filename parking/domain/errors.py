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


class OperatorNotFound(ParkingError):
    code = "operator_not_found"

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"no parking operator {operator_id!r}")


class LotNotFound(ParkingError):
    code = "lot_not_found"

    def __init__(self, lot_id: str) -> None:
        super().__init__(f"no parking lot {lot_id!r}")


class CatalogueConflict(ParkingError):
    """An operator or a lot of this id exists with other fields: ids are never reused."""

    code = "catalogue_conflict"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} exists with other fields; ids are never reused")


class UnknownRateTable(ParkingError):
    code = "unknown_rate_table"

    def __init__(self, table_id: str) -> None:
        super().__init__(f"no rate table {table_id!r} is loaded")


class InvalidLot(ParkingError):
    code = "invalid_lot"


class LotClosed(ParkingError):
    code = "lot_closed"

    def __init__(self, lot_id: str, at: datetime) -> None:
        super().__init__(f"lot {lot_id!r} is closed at {at.isoformat()}")


class NoPlaceFree(ParkingError):
    code = "no_place_free"

    def __init__(self, lot_id: str, vehicle_class: str) -> None:
        super().__init__(f"lot {lot_id!r} has no free place for a {vehicle_class}")


class QuoteNotFound(ParkingError):
    code = "quote_not_found"

    def __init__(self, quote_id: object) -> None:
        super().__init__(f"no quote {quote_id}")


class QuoteExpired(ParkingError):
    code = "quote_expired"

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"the quote expired at {expired_at.isoformat()}; ask for a new one")


class QuoteMismatch(ParkingError):
    code = "quote_mismatch"

    def __init__(self, what: str) -> None:
        super().__init__(f"the quote is for another {what}")


class PaidUntilInvalid(ParkingError):
    """Neither or both of `paid_until` and `quote_id`, or a paid end not after the start."""

    code = "paid_until_invalid"


class PayerMissing(ParkingError):
    code = "payer_missing"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CodeRefused(ParkingError):
    """A scanned TL1 code the backend would refuse at a validator; the code carries the reason."""

    code = "code_refused"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        # `code_stale` stays itself; `card_denied` becomes `code_card_denied`.
        self.code = reason if reason.startswith("code_") else f"code_{reason}"
        super().__init__(f"the scanned code is refused: {reason}")


class CodeAlreadyUsed(ParkingError):
    code = "code_already_used"

    def __init__(self) -> None:
        super().__init__("this code was already used; ask the rider to show a fresh one")


class SessionAlreadyOpen(ParkingError):
    code = "session_already_open"

    def __init__(self, plate: str, lot_id: str, session_id: object) -> None:
        self.session_id = session_id
        super().__init__(f"plate {plate} already has session {session_id} open in lot {lot_id!r}")

    def details(self) -> dict[str, str]:
        return {"session_id": str(self.session_id)}


class SessionNotFound(ParkingError):
    code = "session_not_found"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"no parking session {session_id}")


class SessionEnded(ParkingError):
    code = "session_ended"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"parking session {session_id} has ended")


class ExtensionNotLater(ParkingError):
    code = "extension_not_later"

    def __init__(self, paid_until: datetime) -> None:
        super().__init__(f"an extension must end after the paid end {paid_until.isoformat()}")


class RequestIdReused(ParkingError):
    """A request id seen before with another body: a retry must repeat its request exactly."""

    code = "request_id_reused"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request id {request_id!r} was used for another request")


class RecordNotFound(ParkingError):
    code = "record_not_found"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"no detail record for session {session_id}: it has not ended")


class CreditExceedsFee(ParkingError):
    code = "credit_exceeds_fee"

    def __init__(self, fee_vnd: int, credited_vnd: int, amount_vnd: int) -> None:
        super().__init__(
            f"a credit of {amount_vnd} VND would take the credits past the fee of {fee_vnd} VND"
            f" ({credited_vnd} VND credited already)"
        )


class ActionTimeOutOfRange(ParkingError):
    """A handheld's queued action stamped too long ago, or in the future."""

    code = "action_time_out_of_range"


class InvalidCredit(ParkingError):
    code = "invalid_credit"


class InvalidReservation(ParkingError):
    """A window that is not bookable: not ahead of now, too far ahead, or malformed."""

    code = "invalid_reservation"


class ReservationNotFound(ParkingError):
    code = "reservation_not_found"

    def __init__(self, reservation_id: object) -> None:
        super().__init__(f"no parking reservation {reservation_id!r}")


class ReservationClosed(ParkingError):
    """The reservation was fulfilled, cancelled or marked a no-show: it takes no other change."""

    code = "reservation_closed"

    def __init__(self, reservation_id: str, state: str) -> None:
        self.state = state
        super().__init__(f"parking reservation {reservation_id!r} is {state}")


class ArrivalOutsideWindow(ParkingError):
    code = "arrival_outside_window"

    def __init__(self, opens_at: datetime, closes_at: datetime) -> None:
        super().__init__(
            f"a reservation is taken up from {opens_at.isoformat()} until {closes_at.isoformat()}"
        )
