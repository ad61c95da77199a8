"""Parking operators and their lots, created by staff; each is an aggregate named by its id.

A lot has an operator, an address, a point, opening hours in local time, a capacity per vehicle
class and the rate table it charges by. Once created, a lot's fields do not change: creating
it again with the same fields is a repeat, with others a conflict (ids are never reused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from parking.domain import limits
from parking.domain.errors import CatalogueConflict, InvalidLot
from parking.domain.tariff import MINUTES_PER_DAY, VehicleClass
from ticketing.shared.domain.ids import url_uuid5

OPERATOR_TOPIC = "parking.ParkingOperator"
LOT_TOPIC = "parking.Lot"
CATALOGUE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
LAT_MAX = 90.0
LON_MAX = 180.0
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def operator_aggregate_id(operator_id: str) -> UUID:
    return url_uuid5(f"tapledger:parking-operator:{operator_id}")


def lot_aggregate_id(lot_id: str) -> UUID:
    return url_uuid5(f"tapledger:parking-lot:{lot_id}")


def check_catalogue_id(kind: str, value: str) -> None:
    if len(value) > limits.CATALOGUE_ID_MAX_CHARS or not CATALOGUE_ID_PATTERN.fullmatch(value):
        raise InvalidLot(
            f"{kind} must be lower-case letters, digits and '-', "
            f"at most {limits.CATALOGUE_ID_MAX_CHARS} characters"
        )


def _check_text(field: str, value: str, max_chars: int) -> None:
    if not value.strip() or len(value) > max_chars or not value.isprintable():
        raise InvalidLot(f"{field} must be printable text of 1 to {max_chars} characters")


class ParkingOperator(Aggregate):
    TOPIC = OPERATOR_TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{OPERATOR_TOPIC}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{OPERATOR_TOPIC}.Created"

    class Registered(Created):
        TOPIC = f"{OPERATOR_TOPIC}.Registered"
        operator_id: str
        name: str
        at: datetime

    @event(Registered)
    def __init__(self, operator_id: str, name: str, at: datetime) -> None:
        self.operator_id = operator_id
        self.name = name
        self.registered_at = at

    @classmethod
    def create_id(cls, operator_id: str) -> UUID:
        return operator_aggregate_id(operator_id)

    @classmethod
    def register(cls, operator_id: str, name: str, at: datetime) -> ParkingOperator:
        check_catalogue_id("operator_id", operator_id)
        _check_text("name", name, limits.NAME_MAX_CHARS)
        return cls(operator_id=operator_id, name=name, at=at)

    def check_same(self, name: str) -> None:
        if name != self.name:
            raise CatalogueConflict("operator", self.operator_id)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """[opens, closes) in minutes after local midnight, wrapping past it when `closes <=
    opens`; a lot without opening hours is always open."""

    opens_minute: int
    closes_minute: int

    def __post_init__(self) -> None:
        for minute in (self.opens_minute, self.closes_minute):
            if not 0 <= minute < MINUTES_PER_DAY:
                raise InvalidLot("opening hours are times of day, 00:00 to 23:59")
        if self.opens_minute == self.closes_minute:
            raise InvalidLot("a lot open all day has no opening hours")

    def open_at(self, at: datetime) -> bool:
        local = at.astimezone(LOCAL_ZONE)
        minute = local.hour * 60 + local.minute
        if self.opens_minute < self.closes_minute:
            return self.opens_minute <= minute < self.closes_minute
        return minute >= self.opens_minute or minute < self.closes_minute


@dataclass(frozen=True, slots=True)
class LotSpec:
    """What staff say about a lot when they create it."""

    lot_id: str
    operator_id: str
    name: str
    address: str
    lat: float
    lon: float
    opening_hours: OpeningHours | None
    capacity: dict[VehicleClass, int]
    table_id: str

    def check(self) -> None:
        check_catalogue_id("lot_id", self.lot_id)
        check_catalogue_id("operator_id", self.operator_id)
        _check_text("name", self.name, limits.NAME_MAX_CHARS)
        _check_text("address", self.address, limits.ADDRESS_MAX_CHARS)
        if not (-LAT_MAX <= self.lat <= LAT_MAX and -LON_MAX <= self.lon <= LON_MAX):
            raise InvalidLot("lat must be in -90..90 and lon in -180..180")
        if not self.capacity or any(
            not 0 <= places <= limits.CAPACITY_MAX for places in self.capacity.values()
        ):
            raise InvalidLot(f"capacity is 0 to {limits.CAPACITY_MAX} places per vehicle class")
        if sum(self.capacity.values()) == 0:
            raise InvalidLot("a lot has at least one place")

    def as_event_fields(self) -> dict[str, Any]:
        hours = self.opening_hours
        return {
            "lot_id": self.lot_id,
            "operator_id": self.operator_id,
            "name": self.name,
            "address": self.address,
            "lat": self.lat,
            "lon": self.lon,
            "opens_minute": None if hours is None else hours.opens_minute,
            "closes_minute": None if hours is None else hours.closes_minute,
            "capacity": {str(cls): places for cls, places in sorted(self.capacity.items())},
            "table_id": self.table_id,
        }


class Lot(Aggregate):
    TOPIC = LOT_TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{LOT_TOPIC}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{LOT_TOPIC}.Created"

    class Registered(Created):
        TOPIC = f"{LOT_TOPIC}.Registered"
        lot_id: str
        operator_id: str
        name: str
        address: str
        lat: float
        lon: float
        opens_minute: int | None
        closes_minute: int | None
        capacity: dict[str, int]
        table_id: str
        at: datetime

    @event(Registered)
    def __init__(
        self,
        lot_id: str,
        operator_id: str,
        name: str,
        address: str,
        lat: float,
        lon: float,
        opens_minute: int | None,
        closes_minute: int | None,
        capacity: dict[str, int],
        table_id: str,
        at: datetime,
    ) -> None:
        self.lot_id = lot_id
        self.operator_id = operator_id
        self.name = name
        self.address = address
        self.lat = lat
        self.lon = lon
        self.opens_minute = opens_minute
        self.closes_minute = closes_minute
        self.capacity = dict(capacity)
        self.table_id = table_id
        self.registered_at = at

    @classmethod
    def create_id(cls, lot_id: str) -> UUID:
        return lot_aggregate_id(lot_id)

    @classmethod
    def register(cls, spec: LotSpec, at: datetime) -> Lot:
        spec.check()
        return cls(**spec.as_event_fields(), at=at)

    @property
    def opening_hours(self) -> OpeningHours | None:
        if self.opens_minute is None or self.closes_minute is None:
            return None
        return OpeningHours(self.opens_minute, self.closes_minute)

    def open_at(self, at: datetime) -> bool:
        hours = self.opening_hours
        return hours is None or hours.open_at(at)

    def places(self, vehicle_class: VehicleClass) -> int:
        return self.capacity.get(str(vehicle_class), 0)

    def check_same(self, spec: LotSpec) -> None:
        mine = {name: getattr(self, name) for name in spec.as_event_fields()}
        if mine != spec.as_event_fields():
            raise CatalogueConflict("lot", self.lot_id)
