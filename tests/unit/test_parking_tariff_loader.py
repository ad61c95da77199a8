"""The tariff loader refuses every bad file with a `TariffFileInvalid` naming the file, the field
and the problem; the shipped Hanoi tables load and are installed with the package."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from parking.adapters.lot_files import HANOI_DEFAULT_LOTS
from parking.adapters.tariff_files import TARIFF_DIR, load_rate_table, load_rate_tables
from parking.domain.errors import TariffFileInvalid
from parking.domain.limits import TARIFF_FILE_BYTES_MAX
from parking.domain.tariff import NO_RESERVATION_FEES, VehicleClass
from parking.domain.tariff_format import parse_rate_table
from tests.parking_tables import small_document
from ticketing.shared.domain.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]
Document = dict[str, Any]


def test_shipped_hanoi_tables_load_with_cars_and_motorbikes() -> None:
    tables = load_rate_tables()
    assert sorted(tables) == ["hanoi-dong-da", "hanoi-iparking"]
    for table in tables.values():
        classes = table.versions[0].classes
        assert set(classes) == {VehicleClass.CAR, VehicleClass.MOTORBIKE}


def test_package_data_installs_every_tariff_and_lots_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["parking"]
    shipped = {path for pattern in patterns for path in (ROOT / "parking").glob(pattern)}
    data_files = set(TARIFF_DIR.glob("*")) | set(HANOI_DEFAULT_LOTS.parent.glob("*"))
    assert shipped == data_files
    assert set(TARIFF_DIR.glob("*")) != set()
    assert HANOI_DEFAULT_LOTS in shipped


def test_small_document_is_valid() -> None:
    table = parse_rate_table(json.dumps(small_document()), "small.json")
    assert table.table_id == "test-street"


def test_reservation_terms_are_read_per_class() -> None:
    document = small_document()
    car(document)["reservation"] = TERMS
    table = parse_rate_table(json.dumps(document), "small.json")
    terms = table.tariff(0, VehicleClass.CAR).reservation
    assert (terms.free_cancel, terms.late_cancel_vnd, terms.no_show_vnd) == (
        timedelta(minutes=60),
        10_000,
        25_000,
    )


def test_a_class_without_reservation_terms_charges_no_reservation_fees() -> None:
    table = parse_rate_table(json.dumps(small_document()), "small.json")
    assert table.tariff(0, VehicleClass.CAR).reservation == NO_RESERVATION_FEES


def test_shipped_hanoi_tables_say_their_reservation_terms() -> None:
    for table in load_rate_tables().values():
        for vehicle_class in (VehicleClass.CAR, VehicleClass.MOTORBIKE):
            terms = table.tariff(0, vehicle_class).reservation
            assert terms.free_cancel == timedelta(minutes=60)
            assert 0 < terms.late_cancel_vnd < terms.no_show_vnd
        assert "not published" in table.versions[0].note


def car(document: Document) -> Document:
    car_tariff: Document = document["versions"][0]["classes"]["car"]
    return car_tariff


def day_rule(document: Document) -> Document:
    rule: Document = car(document)["periods"][0]["rule"]
    return rule


def second_version(document: Document) -> Document:
    first = document["versions"][0]
    second: Document = json.loads(json.dumps(first))
    first["valid_to"] = "2026-01-01T00:00:00+07:00"
    second.update(version=2, valid_from="2026-01-01T00:00:00+07:00")
    document["versions"].append(second)
    return second


def setting(
    path: Callable[[Document], Document], key: str, value: object
) -> Callable[[Document], None]:
    return lambda document: path(document).__setitem__(key, value)


def root(document: Document) -> Document:
    return document


def first_version(document: Document) -> Document:
    version: Document = document["versions"][0]
    return version


def first_tier(document: Document) -> Document:
    tier: Document = day_rule(document)["tiers"][0]
    return tier


def day_period(document: Document) -> Document:
    period: Document = car(document)["periods"][0]
    return period


def add_tier(from_minute: int, block_minutes: int) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        tier = {"from_minute": from_minute, "block_minutes": block_minutes, "amount_vnd": 1}
        day_rule(document)["tiers"].append(tier)

    return change


def version_gap(document: Document) -> None:
    second_version(document)["valid_from"] = "2026-01-02T00:00:00+07:00"


def version_not_increasing(document: Document) -> None:
    second_version(document)["version"] = 1


def single_period_not_all_day(document: Document) -> None:
    car(document)["periods"].pop()


TERMS = {"free_cancel_minutes": 60, "late_cancel_vnd": 10_000, "no_show_vnd": 25_000}


def terms_with(**fields: object) -> dict[str, object]:
    return {**TERMS, **fields}


BAD_DOCUMENTS: list[tuple[str, Callable[[Document], None], str, str]] = [
    (
        "reservation fee not whole dong",
        setting(car, "reservation", terms_with(no_show_vnd=2.5)),
        "versions[0].classes.car.reservation.no_show_vnd",
        "integer",
    ),
    (
        "reservation free cancel beyond a day",
        setting(car, "reservation", terms_with(free_cancel_minutes=1441)),
        "versions[0].classes.car.reservation.free_cancel_minutes",
        "outside 0..1440",
    ),
    (
        "reservation term missing",
        setting(car, "reservation", {"free_cancel_minutes": 60, "late_cancel_vnd": 0}),
        "versions[0].classes.car.reservation",
        "'no_show_vnd' is missing",
    ),
    (
        "reservation term unknown",
        setting(car, "reservation", terms_with(refund_percent=50)),
        "versions[0].classes.car.reservation",
        "unknown field 'refund_percent'",
    ),
    ("wrong format", setting(root, "format", "apds"), "format", "must be"),
    ("foreign currency", setting(root, "currency", "USD"), "currency", "VND"),
    ("bad table id", setting(root, "table_id", "Hanoi Street"), "table_id", "lower-case"),
    ("unknown zone", setting(root, "time_zone", "Asia/Hanoi_City"), "time_zone", "IANA"),
    ("unknown field", setting(root, "operator", "x"), "", "unknown field 'operator'"),
    ("no versions", setting(root, "versions", []), "versions", "1..64"),
    (
        "naive instant",
        setting(first_version, "valid_from", "2025-01-01T00:00"),
        "versions[0].valid_from",
        "offset",
    ),
    (
        "not an instant",
        setting(first_version, "valid_from", "soon"),
        "versions[0].valid_from",
        "ISO 8601",
    ),
    (
        "ends before it starts",
        setting(first_version, "valid_to", "2024-01-01T00:00:00+07:00"),
        "versions[0].valid_to",
        "after",
    ),
    ("gap between versions", version_gap, "versions[1]", "no gap"),
    ("versions out of order", version_not_increasing, "versions[1]", "increase"),
    ("no classes", setting(first_version, "classes", {}), "versions[0].classes", "at least one"),
    (
        "unknown vehicle class",
        lambda d: first_version(d)["classes"].__setitem__("bus", {}),
        "versions[0].classes",
        "unknown field 'bus'",
    ),
    (
        "max stay zero",
        setting(car, "max_stay_minutes", 0),
        "versions[0].classes.car.max_stay_minutes",
        "outside",
    ),
    (
        "cap of floats",
        setting(car, "day_cap_vnd", 300000.0),
        "versions[0].classes.car.day_cap_vnd",
        "integer",
    ),
    (
        "amount as float",
        setting(first_tier, "amount_vnd", 25000.5),
        "versions[0].classes.car.periods[0].rule.tiers[0].amount_vnd",
        "integer",
    ),
    (
        "amount as bool",
        setting(first_tier, "amount_vnd", True),
        "versions[0].classes.car.periods[0].rule.tiers[0].amount_vnd",
        "integer",
    ),
    (
        "amount as text",
        setting(first_tier, "amount_vnd", "25000"),
        "versions[0].classes.car.periods[0].rule.tiers[0].amount_vnd",
        "integer",
    ),
    (
        "negative amount",
        setting(first_tier, "amount_vnd", -1),
        "versions[0].classes.car.periods[0].rule.tiers[0].amount_vnd",
        "outside",
    ),
    (
        "block of zero minutes",
        setting(first_tier, "block_minutes", 0),
        "versions[0].classes.car.periods[0].rule.tiers[0].block_minutes",
        "outside",
    ),
    (
        "typo in a tier",
        lambda d: first_tier(d).__setitem__("amount_vn", 1),
        "versions[0].classes.car.periods[0].rule.tiers[0]",
        "unknown field 'amount_vn'",
    ),
    (
        "first tier not at 0",
        setting(first_tier, "from_minute", 30),
        "versions[0].classes.car.periods[0].rule.tiers[0]",
        "from_minute 0",
    ),
    (
        "tiers not increasing",
        add_tier(0, 60),
        "versions[0].classes.car.periods[0].rule.tiers[1]",
        "increase",
    ),
    (
        "tier of part blocks",
        add_tier(90, 60),
        "versions[0].classes.car.periods[0].rule.tiers[0]",
        "whole number",
    ),
    (
        "unknown rule kind",
        setting(day_rule, "kind", "hourly"),
        "versions[0].classes.car.periods[0].rule.kind",
        "'blocks' or 'flat'",
    ),
    (
        "flat rule with tiers",
        lambda d: day_period(d).__setitem__(
            "rule", {"kind": "flat", "turns": 1, "turn_vnd": 5, "tiers": []}
        ),
        "versions[0].classes.car.periods[0].rule",
        "unknown field 'tiers'",
    ),
    (
        "time 24:00",
        setting(day_period, "to", "24:00"),
        "versions[0].classes.car.periods[0].to",
        "HH:MM",
    ),
    (
        "time without zero",
        setting(day_period, "from", "6:00"),
        "versions[0].classes.car.periods[0].from",
        "HH:MM",
    ),
    (
        "periods overlap",
        setting(day_period, "to", "19:00"),
        "versions[0].classes.car.periods",
        "cover the day",
    ),
    (
        "periods leave a gap",
        setting(day_period, "to", "17:00"),
        "versions[0].classes.car.periods",
        "cover the day",
    ),
    (
        "empty period",
        setting(day_period, "to", "06:00"),
        "versions[0].classes.car.periods",
        "empty",
    ),
    (
        "same names",
        setting(day_period, "name", "night"),
        "versions[0].classes.car.periods",
        "differ",
    ),
    (
        "one period not all day",
        single_period_not_all_day,
        "versions[0].classes.car.periods",
        "all day",
    ),
    (
        "missing field",
        lambda d: day_period(d).pop("rule"),
        "versions[0].classes.car.periods[0]",
        "'rule' is missing",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param(change, field, message, id=name)
        for name, change, field, message in BAD_DOCUMENTS
    ],
)
def test_bad_document_is_refused_naming_the_field(
    change: Callable[[Document], None], field: str, message: str
) -> None:
    document = small_document()
    change(document)
    with pytest.raises(TariffFileInvalid) as raised:
        parse_rate_table(json.dumps(document), "bad.json")
    error = raised.value
    assert (error.file, error.field) == ("bad.json", field)
    assert message in error.message
    assert error.code == "tariff_file_invalid"
    assert isinstance(error, DomainError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "must be an object"),
        ('{"format": 1, "format": 2}', "appears twice"),
        ("x" * (TARIFF_FILE_BYTES_MAX + 1), "longer than"),
    ],
    ids=["truncated", "a list", "duplicate key", "too long"],
)
def test_text_that_is_not_a_tariff_document_is_refused(text: str, message: str) -> None:
    with pytest.raises(TariffFileInvalid, match=message):
        parse_rate_table(text, "bad.json")


def test_missing_file_is_a_tariff_error(tmp_path: Path) -> None:
    with pytest.raises(TariffFileInvalid, match="cannot be read"):
        load_rate_table(tmp_path / "absent.json")


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(TariffFileInvalid, match="UTF-8"):
        load_rate_table(path)


def test_two_files_with_one_table_id_are_refused(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps(small_document()))
    with pytest.raises(TariffFileInvalid, match="used twice") as raised:
        load_rate_tables(tmp_path)
    assert raised.value.file == "b.json"
