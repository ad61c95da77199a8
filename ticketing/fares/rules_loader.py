"""Loading a feed's rule files: calendars, timeframes, leg rules, join and transfer rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from ticketing.fares.feed import (
    TRANSFER_COUNT_UNLIMITED,
    DurationLimitType,
    FareLegJoinRule,
    FareLegRule,
    FareProduct,
    FareTransferRule,
    FareTransferType,
    LocationType,
    Service,
    Stop,
    Timeframe,
)
from ticketing.fares.tables import TIME_OF_DAY_MAX_S, Row, Table

V = TypeVar("V")
RowReader = Callable[[Row], V]

WEEKDAY_COLUMNS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EXCEPTION_ADDED = "1"
EXCEPTION_REMOVED = "2"

COLUMNS: dict[str, tuple[str, ...]] = {
    "calendar.txt": ("service_id", *WEEKDAY_COLUMNS, "start_date", "end_date"),
    "calendar_dates.txt": ("service_id", "date", "exception_type"),
    "timeframes.txt": ("timeframe_group_id", "service_id"),
    "fare_leg_rules.txt": ("fare_product_id",),
    "fare_leg_join_rules.txt": ("from_network_id", "to_network_id"),
    "fare_transfer_rules.txt": ("fare_transfer_type",),
}


@dataclass(frozen=True)
class References:
    """What a rule may point at; each rule field is checked against one of these."""

    products: Mapping[str, tuple[FareProduct, ...]]
    networks: Mapping[str, object]
    areas: Mapping[str, str]
    stops: Mapping[str, Stop]
    timeframes: Mapping[str, tuple[Timeframe, ...]]


def _optional_reference(row: Row, field: str, known: Mapping[str, object]) -> str | None:
    value = row.optional(field)
    if value is not None and value not in known:
        raise row.error(field, f"{value!r} is not defined")
    return value


def _required_reference(row: Row, field: str, known: Mapping[str, object]) -> str:
    value = row.required(field)
    if value not in known:
        raise row.error(field, f"{value!r} is not defined")
    return value


def services(calendar: Table, calendar_dates: Table) -> dict[str, Service]:
    weekly: dict[str, tuple[frozenset[int], date | None, date | None]] = {}
    for row in calendar:
        service_id = row.required("service_id")
        if service_id in weekly:
            raise row.error("service_id", f"{service_id!r} is defined twice")
        days = frozenset(i for i, name in enumerate(WEEKDAY_COLUMNS) if row.flag(name))
        first_day, last_day = row.date("start_date"), row.date("end_date")
        if last_day < first_day:
            raise row.error("end_date", "is before start_date")
        weekly[service_id] = (days, first_day, last_day)
    exceptions: dict[str, dict[date, str]] = {}
    for row in calendar_dates:
        service_id, day = row.required("service_id"), row.date("date")
        kind = row.required("exception_type")
        if kind not in (EXCEPTION_ADDED, EXCEPTION_REMOVED):
            raise row.error("exception_type", f"{kind!r} is not 1 or 2")
        if day in exceptions.setdefault(service_id, {}):
            raise row.error("date", f"{day} is listed twice for service {service_id!r}")
        exceptions[service_id][day] = kind
    result: dict[str, Service] = {}
    for service_id in weekly.keys() | exceptions.keys():
        days, start, end = weekly.get(service_id, (frozenset(), None, None))
        marks = exceptions.get(service_id, {})
        added = frozenset(d for d, k in marks.items() if k == EXCEPTION_ADDED)
        result[service_id] = Service(
            service_id, days, start, end, added, frozenset(marks.keys() - added)
        )
    return result


def timeframes(
    table: Table, known_services: Mapping[str, Service]
) -> dict[str, tuple[Timeframe, ...]]:
    groups: dict[str, list[Timeframe]] = {}
    for row in table:
        if (row.optional("start_time") is None) != (row.optional("end_time") is None):
            raise row.error("end_time", "start_time and end_time go together")
        frame = Timeframe(
            row.required("timeframe_group_id"),
            row.time_of_day_s("start_time", 0),
            row.time_of_day_s("end_time", TIME_OF_DAY_MAX_S),
            _required_reference(row, "service_id", known_services),
        )
        if frame.end_s <= frame.start_s:
            raise row.error("end_time", "is not after start_time")
        for other in groups.setdefault(frame.timeframe_group_id, []):
            overlaps = frame.start_s < other.end_s and other.start_s < frame.end_s
            if other.service_id == frame.service_id and overlaps:
                raise row.error("start_time", "overlaps another timeframe of the group and service")
        groups[frame.timeframe_group_id].append(frame)
    return {group: tuple(frames) for group, frames in groups.items()}


def fare_leg_rules(table: Table, refs: References) -> tuple[FareLegRule, ...]:
    rules: dict[str, FareLegRule] = {}
    for row in table:
        rule = FareLegRule(
            leg_group_id=row.optional("leg_group_id"),
            network_id=_optional_reference(row, "network_id", refs.networks),
            from_area_id=_optional_reference(row, "from_area_id", refs.areas),
            to_area_id=_optional_reference(row, "to_area_id", refs.areas),
            from_timeframe_group_id=_optional_reference(
                row, "from_timeframe_group_id", refs.timeframes
            ),
            to_timeframe_group_id=_optional_reference(
                row, "to_timeframe_group_id", refs.timeframes
            ),
            fare_product_id=_required_reference(row, "fare_product_id", refs.products),
            rule_priority=row.integer("rule_priority", minimum=0) or 0,
        )
        if rule.rule_id in rules:
            raise row.error("fare_product_id", f"rule {rule.rule_id!r} is defined twice")
        rules[rule.rule_id] = rule
    return tuple(rules.values())


# A join rule names where a transfer happens: a stop (platform) or a whole station.
JOIN_STOP_TYPES = (LocationType.STOP, LocationType.STATION)


def _join_stop(row: Row, field: str, refs: References) -> str | None:
    if not refs.stops:
        # A feed without stops.txt cannot be checked: any stop id is taken as it is.
        return row.optional(field)
    stop_id = _optional_reference(row, field, refs.stops)
    if stop_id is not None and refs.stops[stop_id].location_type not in JOIN_STOP_TYPES:
        raise row.error(field, f"{stop_id!r} is neither a stop nor a station")
    return stop_id


def join_rules(table: Table, refs: References) -> tuple[FareLegJoinRule, ...]:
    rules: list[FareLegJoinRule] = []
    for row in table:
        rule = FareLegJoinRule(
            _required_reference(row, "from_network_id", refs.networks),
            _required_reference(row, "to_network_id", refs.networks),
            _join_stop(row, "from_stop_id", refs),
            _join_stop(row, "to_stop_id", refs),
        )
        if (rule.from_stop_id is None) != (rule.to_stop_id is None):
            raise row.error("to_stop_id", "from_stop_id and to_stop_id go together")
        if rule in rules:
            raise row.error("from_network_id", "the same join rule is defined twice")
        rules.append(rule)
    return tuple(rules)


def transfer_rules(
    table: Table, refs: References, leg_rules: tuple[FareLegRule, ...]
) -> tuple[FareTransferRule, ...]:
    groups = {rule.leg_group_id: rule for rule in leg_rules if rule.leg_group_id is not None}
    rules: dict[str, FareTransferRule] = {}
    for row in table:
        from_group = _optional_reference(row, "from_leg_group_id", groups)
        to_group = _optional_reference(row, "to_leg_group_id", groups)
        count = row.integer("transfer_count", minimum=TRANSFER_COUNT_UNLIMITED)
        if count == 0:
            raise row.error("transfer_count", "must be -1 or at least 1")
        if (from_group == to_group) != (count is not None):
            raise row.error(
                "transfer_count", "is required when the leg groups are equal, else forbidden"
            )
        limit = row.integer("duration_limit", minimum=1)
        limit_type = row.enum("duration_limit_type", DurationLimitType)
        if (limit is None) != (limit_type is None):
            raise row.error("duration_limit_type", "goes with duration_limit, and only with it")
        transfer_type = row.enum("fare_transfer_type", FareTransferType)
        if transfer_type is None:
            raise row.error("fare_transfer_type", "is required and empty")
        rule = FareTransferRule(
            from_group,
            to_group,
            count,
            limit,
            limit_type,
            transfer_type,
            _optional_reference(row, "fare_product_id", refs.products),
        )
        if rule.rule_id in rules:
            raise row.error("fare_product_id", f"rule {rule.rule_id!r} is defined twice")
        rules[rule.rule_id] = rule
    return tuple(rules.values())
