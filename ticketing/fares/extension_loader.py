"""Loading our extension files for passes and caps (format in EXTENSION.md)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

from ticketing.fares.errors import FeedError
from ticketing.fares.feed import (
    FEED_CURRENCY,
    CapPeriod,
    FareCap,
    FarePass,
    FareProduct,
    PassPeriod,
    RiderCategory,
    RouteScope,
)
from ticketing.fares.tables import Row, Table

E = TypeVar("E", bound=Enum)

COLUMNS: dict[str, tuple[str, ...]] = {
    "fare_passes.txt": ("fare_product_id", "pass_period", "route_scope"),
    "fare_pass_networks.txt": ("fare_product_id", "network_id"),
    "fare_caps.txt": ("cap_id", "cap_period", "cap_amount", "currency"),
}


def _required_enum(row: Row, field: str, kind: type[E]) -> E:
    value = row.enum(field, kind)
    if value is None:
        raise row.error(field, "is required and empty")
    return value


def passes(
    tables: Mapping[str, Table],
    products: Mapping[str, tuple[FareProduct, ...]],
    networks: Mapping[str, object],
) -> dict[str, FarePass]:
    declared: dict[str, Row] = {}
    for row in tables["fare_passes.txt"]:
        product_id = row.required("fare_product_id")
        if product_id not in products:
            raise row.error("fare_product_id", f"{product_id!r} is not a fare product")
        if product_id in declared:
            raise row.error("fare_product_id", f"pass {product_id!r} is defined twice")
        declared[product_id] = row
    covered: dict[str, set[str]] = {}
    for row in tables["fare_pass_networks.txt"]:
        product_id, network_id = row.required("fare_product_id"), row.required("network_id")
        if product_id not in declared:
            raise row.error("fare_product_id", f"{product_id!r} is not in fare_passes.txt")
        if network_id not in networks:
            raise row.error("network_id", f"{network_id!r} is not defined")
        if network_id in covered.setdefault(product_id, set()):
            raise row.error("network_id", f"{network_id!r} is listed twice for {product_id!r}")
        covered[product_id].add(network_id)
    result: dict[str, FarePass] = {}
    for product_id, row in declared.items():
        if product_id not in covered:
            raise FeedError(
                "fare_pass_networks.txt",
                0,
                "fare_product_id",
                f"pass {product_id!r} covers no network",
            )
        result[product_id] = FarePass(
            product_id,
            _required_enum(row, "pass_period", PassPeriod),
            _required_enum(row, "route_scope", RouteScope),
            frozenset(covered[product_id]),
        )
    return result


def caps(table: Table, categories: Mapping[str, RiderCategory]) -> tuple[FareCap, ...]:
    result: dict[str, FareCap] = {}
    for row in table:
        cap_id = row.required("cap_id")
        if cap_id in result:
            raise row.error("cap_id", f"{cap_id!r} is defined twice")
        category = row.optional("rider_category_id")
        if category is not None and category not in categories:
            raise row.error("rider_category_id", f"{category!r} is not defined")
        if row.required("currency") != FEED_CURRENCY:
            raise row.error("currency", f"only {FEED_CURRENCY} is supported")
        amount = row.integer("cap_amount", minimum=1)
        if amount is None:
            raise row.error("cap_amount", "is required and empty")
        result[cap_id] = FareCap(
            cap_id, category, _required_enum(row, "cap_period", CapPeriod), amount
        )
    return tuple(result.values())
