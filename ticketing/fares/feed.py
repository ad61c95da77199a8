"""A GTFS-Fares v2 feed as typed, immutable values, plus our pass and cap extension (EXTENSION.md).

Money is integer VND (ISO 4217 gives VND no decimal places). Empty GTFS fields are `None`. The
loader builds these values and checks every reference; the engine only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import IntEnum, StrEnum

TRANSFER_COUNT_UNLIMITED = -1
SECONDS_PER_DAY = 24 * 3600
FEED_CURRENCY = "VND"
# The clock of a feed without agency.txt: the built-in Hanoi feed has none.
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class FareMediaType(IntEnum):
    NONE = 0
    PAPER_TICKET = 1
    TRANSIT_CARD = 2
    CEMV = 3
    MOBILE_APP = 4


class LocationType(IntEnum):
    """stops.txt `location_type`: riders board at stops (platforms), which a station groups."""

    STOP = 0
    STATION = 1
    ENTRANCE = 2
    GENERIC_NODE = 3
    BOARDING_AREA = 4


class FareTransferType(IntEnum):
    FROM_LEG_PLUS_TRANSFER = 0  # A + AB
    BOTH_LEGS_PLUS_TRANSFER = 1  # A + AB + B
    TRANSFER_ONLY = 2  # AB


class DurationLimitType(IntEnum):
    DEPARTURE_TO_ARRIVAL = 0
    DEPARTURE_TO_DEPARTURE = 1
    ARRIVAL_TO_DEPARTURE = 2
    ARRIVAL_TO_ARRIVAL = 3


class PassPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


class RouteScope(StrEnum):
    ALL = "all"
    ONE = "one"


class CapPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class RiderCategory:
    rider_category_id: str
    name: str
    is_default: bool


@dataclass(frozen=True)
class FareMedium:
    fare_media_id: str
    name: str
    fare_media_type: FareMediaType


@dataclass(frozen=True)
class FareProduct:
    """One price row: a product for one rider category (None: any) on one medium (None: any)."""

    fare_product_id: str
    name: str
    rider_category_id: str | None
    fare_media_id: str | None
    amount_vnd: int


@dataclass(frozen=True)
class Stop:
    stop_id: str
    name: str
    parent_station: str | None
    location_type: LocationType = LocationType.STOP


@dataclass(frozen=True)
class Service:
    """A set of service days: a weekly pattern in a date range, with added and removed dates."""

    service_id: str
    weekdays: frozenset[int]  # date.weekday(): Monday is 0
    start_date: date | None
    end_date: date | None
    added: frozenset[date]
    removed: frozenset[date]

    def is_active_on(self, day: date) -> bool:
        if day in self.removed:
            return False
        if day in self.added:
            return True
        if self.start_date is None or self.end_date is None:
            return False
        return self.start_date <= day <= self.end_date and day.weekday() in self.weekdays


@dataclass(frozen=True)
class Timeframe:
    """The time-of-day interval [start_s, end_s), seconds after local midnight, on service days."""

    timeframe_group_id: str
    start_s: int
    end_s: int
    service_id: str

    def contains(self, time_of_day_s: int) -> bool:
        return self.start_s <= time_of_day_s < self.end_s


@dataclass(frozen=True)
class FareLegRule:
    leg_group_id: str | None
    network_id: str | None
    from_area_id: str | None
    to_area_id: str | None
    from_timeframe_group_id: str | None
    to_timeframe_group_id: str | None
    fare_product_id: str
    rule_priority: int  # an empty value is 0, as the spec says

    @property
    def rule_id(self) -> str:
        """The primary key in one readable string, `*` for an empty field: stable across edits."""
        key = (
            self.network_id,
            self.from_area_id,
            self.to_area_id,
            self.from_timeframe_group_id,
            self.to_timeframe_group_id,
            self.fare_product_id,
        )
        return "/".join(part or "*" for part in key)


@dataclass(frozen=True)
class FareLegJoinRule:
    from_network_id: str
    to_network_id: str
    from_stop_id: str | None
    to_stop_id: str | None


@dataclass(frozen=True)
class FareTransferRule:
    from_leg_group_id: str | None
    to_leg_group_id: str | None
    transfer_count: int | None
    duration_limit_s: int | None
    duration_limit_type: DurationLimitType | None
    fare_transfer_type: FareTransferType
    fare_product_id: str | None

    @property
    def rule_id(self) -> str:
        key = (
            self.from_leg_group_id,
            self.to_leg_group_id,
            self.fare_product_id,
            None if self.transfer_count is None else str(self.transfer_count),
            None if self.duration_limit_s is None else str(self.duration_limit_s),
        )
        return "/".join(part or "*" for part in key)


@dataclass(frozen=True)
class FarePass:
    """Extension: a fare product that, once held, covers legs on its networks while valid."""

    fare_product_id: str
    period: PassPeriod
    route_scope: RouteScope
    network_ids: frozenset[str]


@dataclass(frozen=True)
class FareCap:
    """Extension: a rider category (None: every category) pays at most `cap_vnd` per period."""

    cap_id: str
    rider_category_id: str | None
    period: CapPeriod
    cap_vnd: int


@dataclass(frozen=True)
class Feed:
    rider_categories: Mapping[str, RiderCategory]
    fare_media: Mapping[str, FareMedium]
    fare_products: Mapping[str, tuple[FareProduct, ...]]
    areas: Mapping[str, str]  # area_id -> area_name
    stop_areas: Mapping[str, frozenset[str]]
    stops: Mapping[str, Stop]  # empty when the feed has no stops.txt: stops are then not checked
    networks: Mapping[str, str]  # network_id -> network_name
    route_networks: Mapping[str, str]
    services: Mapping[str, Service]
    timeframes: Mapping[str, tuple[Timeframe, ...]]
    fare_leg_rules: tuple[FareLegRule, ...]
    leg_rules_have_priority: bool  # the `rule_priority` column exists: it switches the semantics
    fare_leg_join_rules: tuple[FareLegJoinRule, ...]
    fare_transfer_rules: tuple[FareTransferRule, ...]
    passes: Mapping[str, FarePass]
    caps: tuple[FareCap, ...]
    timezone: str  # IANA name (agency.txt agency_timezone): the clock of every local time
    # The start of the SHA-256 of the feed's files as read (`loader.feed_version`): what names
    # the rules a journey was priced by. Empty for a feed built otherwise.
    version: str = ""

    @property
    def default_rider_category_id(self) -> str | None:
        defaults = [c.rider_category_id for c in self.rider_categories.values() if c.is_default]
        return defaults[0] if len(defaults) == 1 else None
