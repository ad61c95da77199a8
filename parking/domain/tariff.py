"""Rate tables as values: immutable versions, each valid for a span of instants, each giving every
vehicle class it serves a set of day periods (in local time) with a pricing rule, a maximum stay
and an optional cap per 24 hours of stay.

The shapes follow APDS (RateTable, RateLineCollection, RateLine) in spirit, cut down to what
Hanoi's street parking publishes; `docs/parking-tariffs.md` describes the file format that loads
into them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from itertools import pairwise

from parking.domain.errors import NoTariffInForce, VehicleClassNotServed
from ticketing.shared.domain.invariants import require

MINUTES_PER_DAY = 24 * 60


class VehicleClass(StrEnum):
    MOTORBIKE = "motorbike"
    # A car with up to 9 seats.
    CAR = "car"
    # Anything larger: buses, vans over 9 seats, lorries.
    LARGE = "large"


@dataclass(frozen=True, slots=True)
class Tier:
    """From `start` into the stay (until the next tier), each started `block` costs `amount_vnd`."""

    start: timedelta
    block: timedelta
    amount_vnd: int
    label: str


@dataclass(frozen=True, slots=True)
class BlockRule:
    """Per started block, progressive by tier. A block is paid in full when it starts, at the
    tier in force at that moment; `visit_blocks_max` bounds the blocks paid in one visit of the
    period (iParking's "the night counts as 6 turns")."""

    tiers: tuple[Tier, ...]
    visit_blocks_max: int | None

    def __post_init__(self) -> None:
        require(bool(self.tiers) and self.tiers[0].start == timedelta(0), "tiers start at 0")


@dataclass(frozen=True, slots=True)
class FlatRule:
    """A fixed price for each visit of the period, however long: `turns` turns of `turn_vnd`."""

    turns: int
    turn_vnd: int
    label: str

    @property
    def amount_vnd(self) -> int:
        return self.turns * self.turn_vnd


Rule = BlockRule | FlatRule


@dataclass(frozen=True, slots=True)
class Period:
    """A part of every local day, [from_minute, to_minute) after midnight, wrapping past
    midnight when `to_minute <= from_minute`; a class with one period has it all day."""

    name: str
    from_minute: int
    to_minute: int
    rule: Rule


@dataclass(frozen=True, slots=True)
class ReservationTerms:
    """What booking a place of the class costs besides the stay: cancelling is free until
    `free_cancel` before the window starts, then costs `late_cancel_vnd`; a booking nobody
    arrives for costs `no_show_vnd`. Each fee is taken from the booking's hold, never more."""

    free_cancel: timedelta
    late_cancel_vnd: int
    no_show_vnd: int


# A table that says nothing about reservations charges nothing for them: cancelling is free
# until the window starts and a no-show only releases its hold. No fee is invented for it.
NO_RESERVATION_FEES = ReservationTerms(timedelta(0), 0, 0)


@dataclass(frozen=True, slots=True)
class ClassTariff:
    """What one vehicle class pays under one table version."""

    periods: tuple[Period, ...]
    max_stay: timedelta
    day_cap_vnd: int | None
    # The period in force at each minute of the local day, built once so a lookup is an index.
    by_minute: tuple[Period, ...]
    reservation: ReservationTerms = NO_RESERVATION_FEES

    @classmethod
    def of(
        cls,
        periods: tuple[Period, ...],
        max_stay: timedelta,
        day_cap_vnd: int | None,
        reservation: ReservationTerms = NO_RESERVATION_FEES,
    ) -> ClassTariff:
        by_minute: list[Period | None] = [None] * MINUTES_PER_DAY
        for period in periods:
            length = (period.to_minute - period.from_minute) % MINUTES_PER_DAY or MINUTES_PER_DAY
            for offset in range(length):
                minute = (period.from_minute + offset) % MINUTES_PER_DAY
                require(by_minute[minute] is None, "periods overlap")
                by_minute[minute] = period
        filled = tuple(p for p in by_minute if p is not None)
        require(len(filled) == MINUTES_PER_DAY, "periods cover the day")
        return cls(periods, max_stay, day_cap_vnd, filled, reservation)

    @property
    def all_day(self) -> bool:
        return len(self.periods) == 1


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """One immutable version of a table, in force for [valid_from, valid_to)."""

    version: int
    valid_from: datetime
    valid_to: datetime | None
    classes: Mapping[VehicleClass, ClassTariff]
    note: str


@dataclass(frozen=True, slots=True)
class RateTable:
    """A table's versions, in order and contiguous: each ends where the next begins."""

    table_id: str
    name: str
    time_zone: tzinfo
    versions: tuple[TariffVersion, ...]

    def __post_init__(self) -> None:
        require(bool(self.versions), "a table has a version")
        for before, after in pairwise(self.versions):
            require(before.valid_to == after.valid_from, "versions are contiguous")

    def index_at(self, at: datetime) -> int:
        """The index of the version in force at `at`; `NoTariffInForce` outside every version."""
        starts = [version.valid_from for version in self.versions]
        index = bisect_right(starts, at) - 1
        if index < 0:
            raise NoTariffInForce(self.table_id, at)
        valid_to = self.versions[index].valid_to
        if valid_to is not None and at >= valid_to:
            raise NoTariffInForce(self.table_id, at)
        return index

    def version_at(self, at: datetime) -> TariffVersion:
        return self.versions[self.index_at(at)]

    def tariff(self, index: int, vehicle_class: VehicleClass) -> ClassTariff:
        version = self.versions[index]
        found = version.classes.get(vehicle_class)
        if found is None:
            raise VehicleClassNotServed(self.table_id, version.version, vehicle_class)
        return found
