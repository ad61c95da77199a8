"""Load a fare feed from a directory or from a mapping of file name to CSV text, checking it whole.

Every problem is a `FeedError` naming the file, the row and the field: unknown references,
duplicate keys, overlapping timeframes, values out of range. A feed that loads prices cleanly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from ticketing.fares import agency_loader, extension_loader, network_loader, rules_loader
from ticketing.fares.errors import FeedError
from ticketing.fares.feed import (
    FEED_CURRENCY,
    FareMediaType,
    FareMedium,
    FareProduct,
    Feed,
    LocationType,
    RiderCategory,
    Stop,
)
from ticketing.fares.tables import Row, Table, parse_table

HANOI_FEED_DIR = Path(__file__).parent / "feeds" / "hanoi"
FEED_FILE_CHARS_MAX = 20_000_000
# Hex digits of the SHA-256 that names a feed's version (64 bits: a city has few feeds).
FEED_VERSION_HEX_CHARS = 16

# Each file the loader reads, with the columns that must be in its header.
COLUMNS: dict[str, tuple[str, ...]] = {
    "rider_categories.txt": ("rider_category_id", "rider_category_name"),
    "fare_media.txt": ("fare_media_id", "fare_media_type"),
    "fare_products.txt": ("fare_product_id", "amount", "currency"),
    "areas.txt": ("area_id",),
    "stop_areas.txt": ("area_id", "stop_id"),
    "stops.txt": ("stop_id",),
    **agency_loader.COLUMNS,
    **network_loader.COLUMNS,
    **rules_loader.COLUMNS,
    **extension_loader.COLUMNS,
}
REQUIRED_FILES = ("fare_products.txt", "fare_leg_rules.txt")

K = TypeVar("K")
V = TypeVar("V")


def load_feed(source: Path | str | Mapping[str, str]) -> Feed:
    """Read and check a feed: a directory of `.txt` files, or file names mapped to their text."""
    texts = _read_directory(Path(source)) if isinstance(source, Path | str) else dict(source)
    for name in REQUIRED_FILES:
        if name not in texts:
            raise FeedError(name, 0, "", "required file is missing")
    tables = {name: parse_table(name, texts.get(name), cols) for name, cols in COLUMNS.items()}

    categories = _rider_categories(tables["rider_categories.txt"])
    media = _fare_media(tables["fare_media.txt"])
    products = _fare_products(tables["fare_products.txt"], categories, media)
    areas = _unique(tables["areas.txt"], "area_id", lambda r: r.optional("area_name") or "")
    stops = _stops(tables["stops.txt"])
    stop_areas: dict[str, set[str]] = {}
    for row in tables["stop_areas.txt"]:
        area_id = _reference(row, "area_id", areas)
        stop_id = row.required("stop_id") if not stops else _reference(row, "stop_id", stops)
        if area_id in stop_areas.setdefault(stop_id, set()):
            raise row.error("stop_id", f"stop {stop_id!r} is already in area {area_id!r}")
        stop_areas[stop_id].add(area_id)
    networks, route_networks = network_loader.networks(tables)
    services = rules_loader.services(tables["calendar.txt"], tables["calendar_dates.txt"])
    timeframes = rules_loader.timeframes(tables["timeframes.txt"], services)
    references = rules_loader.References(
        products=products, networks=networks, areas=areas, stops=stops, timeframes=timeframes
    )
    leg_rules = rules_loader.fare_leg_rules(tables["fare_leg_rules.txt"], references)
    return Feed(
        rider_categories=_frozen(categories),
        fare_media=_frozen(media),
        fare_products=_frozen(products),
        areas=_frozen(areas),
        stop_areas=_frozen({stop: frozenset(ids) for stop, ids in stop_areas.items()}),
        stops=_frozen(stops),
        networks=_frozen(networks),
        route_networks=_frozen(route_networks),
        services=_frozen(services),
        timeframes=_frozen(timeframes),
        fare_leg_rules=leg_rules,
        leg_rules_have_priority="rule_priority" in tables["fare_leg_rules.txt"].columns,
        fare_leg_join_rules=rules_loader.join_rules(tables["fare_leg_join_rules.txt"], references),
        fare_transfer_rules=rules_loader.transfer_rules(
            tables["fare_transfer_rules.txt"], references, leg_rules
        ),
        passes=_frozen(extension_loader.passes(tables, products, networks)),
        caps=extension_loader.caps(tables["fare_caps.txt"], categories),
        timezone=agency_loader.timezone(tables[agency_loader.AGENCY_FILE]),
        version=feed_version(texts),
    )


def feed_version(texts: Mapping[str, str]) -> str:
    """The start of the SHA-256 of the feed files the loader reads (names and texts, by name):
    the same files give the same version in every process, any change to them another."""
    digest = hashlib.sha256()
    for name in sorted(name for name in texts if name in COLUMNS):
        for part in (name, texts[name]):
            encoded = part.encode()
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
    return digest.hexdigest()[:FEED_VERSION_HEX_CHARS]


def _read_directory(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        raise FeedError(str(directory), 0, "", "is not a directory")
    texts: dict[str, str] = {}
    for name in COLUMNS:
        path = directory / name
        if path.is_file():
            if path.stat().st_size > FEED_FILE_CHARS_MAX:
                raise FeedError(name, 0, "", f"larger than {FEED_FILE_CHARS_MAX} bytes")
            texts[name] = path.read_text(encoding="utf-8-sig")
    return texts


def _frozen(values: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(values))


def _reference(row: Row, field: str, known: Iterable[str]) -> str:
    value = row.required(field)
    if value not in known:
        raise row.error(field, f"{value!r} is not defined")
    return value


def _unique(table: Table, key: str, value_of: rules_loader.RowReader[V]) -> dict[str, V]:
    values: dict[str, V] = {}
    for row in table:
        identifier = row.required(key)
        if identifier in values:
            raise row.error(key, f"{identifier!r} is defined twice")
        values[identifier] = value_of(row)
    return values


def _rider_categories(table: Table) -> dict[str, RiderCategory]:
    def build(row: Row) -> RiderCategory:
        return RiderCategory(
            row.required("rider_category_id"),
            row.required("rider_category_name"),
            row.flag("is_default_fare_category"),
        )

    categories = _unique(table, "rider_category_id", build)
    if categories and sum(c.is_default for c in categories.values()) != 1:
        raise FeedError(table.file, 0, "is_default_fare_category", "needs exactly one default")
    return categories


def _fare_media(table: Table) -> dict[str, FareMedium]:
    def build(row: Row) -> FareMedium:
        kind = row.enum("fare_media_type", FareMediaType)
        if kind is None:
            raise row.error("fare_media_type", "is required and empty")
        return FareMedium(
            row.required("fare_media_id"), row.optional("fare_media_name") or "", kind
        )

    return _unique(table, "fare_media_id", build)


def _fare_products(
    table: Table, categories: Mapping[str, RiderCategory], media: Mapping[str, FareMedium]
) -> dict[str, tuple[FareProduct, ...]]:
    products: dict[str, list[FareProduct]] = {}
    for row in table:
        category = row.optional("rider_category_id")
        medium = row.optional("fare_media_id")
        if category is not None:
            _reference(row, "rider_category_id", categories)
        if medium is not None:
            _reference(row, "fare_media_id", media)
        product = FareProduct(
            row.required("fare_product_id"),
            row.optional("fare_product_name") or "",
            category,
            medium,
            amount_vnd(row, "amount", "currency"),
        )
        rows = products.setdefault(product.fare_product_id, [])
        if any((p.rider_category_id, p.fare_media_id) == (category, medium) for p in rows):
            raise row.error("fare_product_id", "same product, rider category and medium twice")
        rows.append(product)
        listed = {p.rider_category_id for p in rows} - {None}
        if sum(categories[c].is_default for c in listed if c is not None) > 1:
            raise row.error("rider_category_id", "a product has more than one default category")
    return {product_id: tuple(rows) for product_id, rows in products.items()}


def amount_vnd(row: Row, field: str, currency_field: str) -> int:
    """A currency amount in VND: ISO 4217 gives VND no decimals, so a decimal point is an error."""
    if row.required(currency_field) != FEED_CURRENCY:
        raise row.error(currency_field, f"only {FEED_CURRENCY} is supported")
    text = row.required(field)
    if not text.lstrip("-").isdigit():
        raise row.error(field, f"{text!r} is not a whole number of VND")
    return int(text)


def _stops(table: Table) -> dict[str, Stop]:
    def build(row: Row) -> Stop:
        kind = row.enum("location_type", LocationType)
        return Stop(
            row.required("stop_id"),
            row.optional("stop_name") or "",
            None,
            # An empty location_type is a stop (platform), as the reference says.
            LocationType.STOP if kind is None else kind,
        )

    stops = _unique(table, "stop_id", build)
    for row in table:
        if row.optional("parent_station") is not None:
            stop = stops[row.required("stop_id")]
            parent = _reference(row, "parent_station", stops)
            stops[stop.stop_id] = replace(stop, parent_station=parent)
    return stops
