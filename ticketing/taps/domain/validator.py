"""A validator: a bus validator, a metro gate or a parking handheld, registered once by its id.

Its id is what the device writes into every tap (`(validator_id, seq)`) and into the event
records of the cards it charges (a u32, spec/CARD.md), so it is chosen by the operator, not here.

A device numbers its taps itself, so a device whose state was wiped numbers them from 1 again.
Re-enrolling it gives it a new *epoch*: its taps are then known by `(validator_id, epoch, seq)`,
and the new numbering cannot meet the old one. Registration is epoch 0, so taps recorded before
epochs existed keep their meaning.

Staff revoke a validator (a stolen or retired device): its tokens stop working and its uploads
are refused (and recorded, `device_refusal`). Enrolling it again (a new epoch, from an
enrolment code or by staff) lets a device in its place work again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import Contended, DomainError
from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.Validator"
# The card's event record holds the validator and the location as u32, the network as u16.
VALIDATOR_ID_MAX = 0xFFFF_FFFF
LOCATION_MAX = 0xFFFF_FFFF
NETWORK_ID_MAX = 0xFFFF
# A stop or route id of the fare feed (GTFS ids are short in practice).
FARE_ID_MAX_CHARS = 64
# Re-enrolments of one validator: one a day for 179 years; more is a runaway script.
EPOCH_MAX = 0xFFFF


class ValidatorKind(StrEnum):
    BUS = "bus"
    METRO_GATE = "metro_gate"
    PARKING_HANDHELD = "parking_handheld"


class Direction(StrEnum):
    """Which way a metro gate lets riders through; bus validators and handhelds have none."""

    NONE = ""
    ENTRY = "entry"
    EXIT = "exit"


class Validator(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Registered(Created):
        TOPIC = f"{TOPIC_PREFIX}.Registered"
        validator_id: int
        kind: str
        network_id: int
        location: int
        at: datetime
        # Where the validator stands in fare terms (the fare feed's ids); empty when unknown.
        stop_id: str
        route_id: str
        direction: str

    class Enrolled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Enrolled"
        epoch: int
        at: datetime

    class Revoked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Revoked"
        at: datetime

    @staticmethod
    def create_id(validator_id: int) -> UUID:
        return url_uuid5(f"/tapledger/validators/{validator_id}")

    @event(Registered)
    def __init__(
        self,
        validator_id: int,
        kind: str,
        network_id: int,
        location: int,
        at: datetime,
        stop_id: str = "",
        route_id: str = "",
        direction: str = "",
    ) -> None:
        # The kind is kept as its string value: aggregate state stays JSON-native. The fare
        # terms default to empty so validators registered before they existed still replay.
        self.validator_id = validator_id
        self.kind_code = kind
        self.network_id = network_id
        self.location = location
        self.registered_at = at
        self.stop_id = stop_id
        self.route_id = route_id
        self.direction_code = direction
        self.epoch = 0  # registering is the first enrolment
        # When staff last revoked it; None while it may upload (an enrolment clears it).
        self.revoked_at: datetime | None = None

    @classmethod
    def register(
        cls,
        *,
        validator_id: int,
        kind: str,
        network_id: int,
        location: int,
        at: datetime,
        stop_id: str = "",
        route_id: str = "",
        direction: str = "",
    ) -> Validator:
        check_validator_id(validator_id)
        if kind not in set(ValidatorKind):
            raise InvalidValidator(f"kind {kind[:40]!r} is not one of {', '.join(ValidatorKind)}")
        if type(network_id) is not int or not 0 <= network_id <= NETWORK_ID_MAX:
            raise InvalidValidator(f"network id {network_id!r} is not a u16")
        if type(location) is not int or not 0 <= location <= LOCATION_MAX:
            raise InvalidValidator(f"location {location!r} is not a u32")
        check_fare_id("stop id", stop_id)
        check_fare_id("route id", route_id)
        if direction not in set(Direction):
            raise InvalidValidator(f"direction {direction[:20]!r} is neither entry nor exit")
        if direction != Direction.NONE and kind != ValidatorKind.METRO_GATE:
            raise InvalidValidator("only a metro gate has a direction")
        return cls(
            validator_id=validator_id,
            kind=ValidatorKind(kind).value,
            network_id=network_id,
            location=location,
            at=at,
            stop_id=stop_id,
            route_id=route_id,
            direction=direction,
        )

    def enrol(self, *, at: datetime) -> None:
        """Starts a new epoch: the device restarts its numbering without meeting its old taps."""
        if self.epoch >= EPOCH_MAX:
            raise TooManyEnrolments(self.validator_id)
        self._enrolled(epoch=self.epoch + 1, at=at)

    @event(Enrolled)
    def _enrolled(self, epoch: int, at: datetime) -> None:
        self.epoch = epoch
        self.revoked_at = None

    def revoke(self, *, at: datetime) -> bool:
        """Revokes the validator; False (and no event) when it is revoked already."""
        if self.revoked_at is not None:
            return False
        self._revoked(at=at)
        return True

    @event(Revoked)
    def _revoked(self, at: datetime) -> None:
        self.revoked_at = at

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def check_not_revoked(self) -> None:
        """A revoked validator uploads nothing and is given no token until enrolled again."""
        if self.revoked_at is not None:
            raise ValidatorRevoked(self.validator_id)

    def check_epoch(self, epoch: int) -> None:
        """An upload names an epoch this validator was given (an older one is a late upload)."""
        if type(epoch) is not int or not 0 <= epoch <= self.epoch:
            raise EpochNotEnrolled(self.validator_id, epoch)

    @property
    def kind(self) -> ValidatorKind:
        return ValidatorKind(self.kind_code)

    @property
    def direction(self) -> Direction:
        return Direction(self.direction_code)


def check_validator_id(validator_id: int) -> None:
    # bool is an int in Python; a validator id of True is a bug at the edge.
    if type(validator_id) is not int or not 1 <= validator_id <= VALIDATOR_ID_MAX:
        raise InvalidValidator(f"validator id {validator_id!r} is not in 1..{VALIDATOR_ID_MAX}")


def check_fare_id(field: str, value: str) -> None:
    # Fare feed ids are short printable tokens (GTFS ids); empty means "not said".
    if len(value) > FARE_ID_MAX_CHARS or not value.isprintable() or value != value.strip():
        raise InvalidValidator(f"{field} must be at most {FARE_ID_MAX_CHARS} printable characters")


class InvalidValidator(DomainError):
    code = "invalid_validator"


class ValidatorNotFound(DomainError):
    code = "validator_not_found"

    def __init__(self, validator_id: int) -> None:
        super().__init__(f"no validator {validator_id}")


class ValidatorAlreadyRegistered(DomainError):
    code = "validator_already_registered"

    def __init__(self, validator_id: int) -> None:
        super().__init__(f"validator {validator_id} is already registered")


class EpochNotEnrolled(DomainError):
    code = "epoch_not_enrolled"

    def __init__(self, validator_id: int, epoch: object) -> None:
        super().__init__(f"validator {validator_id} was never enrolled in epoch {epoch!r}")


class TooManyEnrolments(DomainError):
    code = "too_many_enrolments"

    def __init__(self, validator_id: int) -> None:
        super().__init__(f"validator {validator_id} was enrolled {EPOCH_MAX} times already")


class ValidatorRevoked(DomainError):
    code = "validator_revoked"

    def __init__(self, validator_id: int) -> None:
        super().__init__(
            f"validator {validator_id} is revoked; enrol it again (an enrolment code) to use it"
        )


class DeviceTokenRevoked(DomainError):
    """A validator's token that was replaced (a newer one issued) or revoked by staff."""

    code = "device_token_revoked"

    def __init__(self, validator_id: int) -> None:
        super().__init__(f"this token of validator {validator_id} was revoked or replaced")


class ValidatorBusy(Contended):
    """Enrolments of one validator kept racing each other; the caller may retry. A `Contended`
    that keeps the code validator clients were promised."""

    code = "validator_busy"
