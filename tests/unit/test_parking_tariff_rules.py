"""How each rule of the tariff format prices a stay, on a small synthetic table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parking.domain.pricing import quote
from parking.domain.tariff import VehicleClass
from tests.parking_tables import HANOI, small_table

CAR = VehicleClass.CAR
DAY = datetime(2025, 3, 3, tzinfo=HANOI)


def test_a_night_visit_pays_at_most_its_maximum_of_blocks() -> None:
    stay = quote(small_table(), CAR, DAY.replace(hour=18), DAY.replace(hour=6) + timedelta(days=1))
    assert [(s.period, s.blocks, s.amount_vnd) for s in stay.segments] == [("night", 6, 60_000)]


def test_each_visit_of_a_period_starts_its_blocks_afresh() -> None:
    # 17:30 starts a day hour (to 18:30); the night visit starts its own hour at 18:00.
    stay = quote(
        small_table(), CAR, DAY.replace(hour=17, minute=30), DAY.replace(hour=18, minute=30)
    )
    assert [(s.period, s.blocks, s.amount_vnd) for s in stay.segments] == [
        ("day", 1, 20_000),
        ("night", 1, 10_000),
    ]


def test_periods_are_local_time_whatever_zone_the_stay_is_given_in() -> None:
    # 10:30-11:30 UTC is 17:30-18:30 in Hanoi (UTC+7).
    start = datetime(2025, 3, 3, 10, 30, tzinfo=UTC)
    stay = quote(small_table(), CAR, start, start + timedelta(hours=1))
    assert stay.segments[0].end == datetime(2025, 3, 3, 11, 0, tzinfo=UTC)
    assert stay.total_vnd == 30_000


def test_flat_rule_charges_once_per_visit_however_long() -> None:
    table = small_table()
    short = quote(table, VehicleClass.LARGE, DAY.replace(hour=9), DAY.replace(hour=9, minute=5))
    long = quote(table, VehicleClass.LARGE, DAY.replace(hour=9), DAY.replace(hour=19))
    assert short.total_vnd == long.total_vnd == 100_000


def test_an_all_day_period_is_one_visit_across_midnight() -> None:
    stay = quote(small_table(), VehicleClass.LARGE, DAY.replace(hour=22), DAY + timedelta(hours=26))
    assert [(s.period, s.blocks, s.amount_vnd) for s in stay.segments] == [("day", 1, 100_000)]


def test_segments_carry_the_rule_that_priced_them() -> None:
    stay = quote(small_table(), CAR, DAY.replace(hour=10), DAY.replace(hour=11))
    assert stay.segments[0].rule == "20,000 VND per started 60 min"
    assert stay.table_id == "test-street"
