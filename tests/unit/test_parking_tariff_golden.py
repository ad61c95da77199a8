"""Golden prices of the Hanoi street-parking tables (HANOI.md, and the rules
docs/parking-tariffs.md chooses where HANOI.md is silent)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from parking.domain.errors import (
    InvalidStay,
    NoTariffInForce,
    StayTooLong,
    VehicleClassNotServed,
)
from parking.domain.pricing import Quote, quote
from parking.domain.tariff import RateTable, VehicleClass
from tests.parking_tables import HANOI, dong_da, dong_da_revised, iparking

CAR = VehicleClass.CAR
MOTORBIKE = VehicleClass.MOTORBIKE
MONDAY = datetime(2025, 6, 2, tzinfo=HANOI)
TEN_AM = MONDAY.replace(hour=10)


def at(hour: int, minute: int = 0, *, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def price(table: RateTable, vehicle: VehicleClass, start: datetime, end: datetime) -> Quote:
    return quote(table, vehicle, start, end)


def local(instant: datetime) -> str:
    return instant.astimezone(HANOI).strftime("%d %H:%M")


@pytest.mark.parametrize(
    ("minutes", "fee_vnd"),
    [
        (1, 25_000),
        (60, 25_000),
        (61, 50_000),
        (120, 50_000),
        (121, 85_000),
        (180, 85_000),
        (240, 120_000),
        (241, 165_000),
        (300, 165_000),
        (420, 255_000),
        (480, 300_000),
    ],
)
def test_dong_da_car_pays_25k_35k_then_45k_per_started_hour(minutes: int, fee_vnd: int) -> None:
    stay = price(dong_da(), CAR, TEN_AM, TEN_AM + timedelta(minutes=minutes))
    assert stay.total_vnd == fee_vnd


def test_dong_da_car_segments_follow_the_tiers() -> None:
    stay = price(dong_da(), CAR, TEN_AM, at(15, 30))
    assert [(local(s.start), local(s.end), s.blocks, s.amount_vnd) for s in stay.segments] == [
        ("02 10:00", "02 12:00", 2, 50_000),
        ("02 12:00", "02 14:00", 2, 70_000),
        ("02 14:00", "02 15:30", 2, 90_000),
    ]
    assert stay.total_vnd == 210_000


@pytest.mark.parametrize(("hours", "before_cap_vnd"), [(9, 345_000), (10, 390_000)])
def test_dong_da_whole_day_costs_at_most_300k(hours: int, before_cap_vnd: int) -> None:
    stay = price(dong_da(), CAR, TEN_AM, TEN_AM + timedelta(hours=hours))
    assert sum(segment.before_cap_vnd for segment in stay.segments) == before_cap_vnd
    assert stay.total_vnd == 300_000


def test_dong_da_cap_covers_24_hours_from_arrival_across_midnight() -> None:
    stay = price(dong_da(), CAR, at(20), at(8, day=1))
    assert stay.total_vnd == 300_000


def test_cap_starts_again_after_24_hours_of_stay() -> None:
    stay = quote(dong_da(), CAR, TEN_AM, TEN_AM + timedelta(hours=30), allow_overstay=True)
    # The second day of stay is hours 25-30, all at 45,000.
    assert stay.total_vnd == 300_000 + 6 * 45_000


@pytest.mark.parametrize(
    ("end", "fee_vnd"),
    [
        (at(10, 1), 25_000),
        (at(12), 25_000),
        (at(12, 1), 60_000),
        (at(13), 60_000),
        (at(13, 30), 95_000),
        (at(14, 1), 140_000),
    ],
)
def test_iparking_car_pays_one_turn_for_two_hours_then_progressive(
    end: datetime, fee_vnd: int
) -> None:
    assert price(iparking(), CAR, TEN_AM, end).total_vnd == fee_vnd


def test_iparking_overnight_counts_as_six_turns() -> None:
    stay = price(iparking(), CAR, at(18), at(6, day=1))
    assert stay.total_vnd == 6 * 25_000
    assert [(s.period, s.blocks) for s in stay.segments] == [("night", 6)]


def test_iparking_evening_pays_its_started_turns_only() -> None:
    assert price(iparking(), CAR, at(20), at(22)).total_vnd == 25_000
    assert price(iparking(), CAR, at(20), at(22, 1)).total_vnd == 50_000


def test_iparking_stay_across_the_night_splits_at_18_and_06() -> None:
    stay = price(iparking(), CAR, at(17), at(8, day=1))
    assert [(local(s.start), local(s.end), s.period, s.amount_vnd) for s in stay.segments] == [
        ("02 17:00", "02 18:00", "day", 25_000),
        ("02 18:00", "03 06:00", "night", 150_000),
        # The morning is hours 14-15 of the stay: the top tier.
        ("03 06:00", "03 08:00", "day", 90_000),
    ]
    assert stay.total_vnd == 265_000


@pytest.mark.parametrize(
    ("start", "end", "fee_vnd"),
    [
        (at(10), at(11), 5_000),
        (at(6), at(18), 5_000),
        (at(20), at(21), 8_000),
        (at(18), at(6, day=1), 8_000),
        (at(17), at(19), 13_000),
        (at(5), at(7), 13_000),
        (at(10), at(10, day=1), 18_000),
    ],
)
def test_motorbike_pays_5k_a_day_turn_and_8k_a_night_turn(
    start: datetime, end: datetime, fee_vnd: int
) -> None:
    for table in (iparking(), dong_da()):
        assert price(table, MOTORBIKE, start, end).total_vnd == fee_vnd


def test_a_started_block_is_paid_to_the_microsecond() -> None:
    hour = TEN_AM + timedelta(hours=1)
    assert price(dong_da(), CAR, TEN_AM, hour).total_vnd == 25_000
    assert price(dong_da(), CAR, TEN_AM, hour + timedelta(microseconds=1)).total_vnd == 50_000


def test_stay_of_exactly_the_maximum_is_priced() -> None:
    stay = price(dong_da(), CAR, TEN_AM, TEN_AM + timedelta(hours=24))
    assert not stay.over_max_stay
    assert stay.max_stay == timedelta(hours=24)


def test_stay_over_the_maximum_is_refused() -> None:
    with pytest.raises(StayTooLong) as raised:
        price(iparking(), CAR, TEN_AM, TEN_AM + timedelta(hours=24, seconds=1))
    assert raised.value.code == "stay_too_long"


def test_overstay_is_priced_and_flagged_when_allowed() -> None:
    end = TEN_AM + timedelta(hours=25)
    stay = quote(iparking(), CAR, TEN_AM, end, allow_overstay=True)
    assert stay.over_max_stay
    assert stay.segments[-1].end == end


def test_stay_crossing_a_version_change_is_priced_by_each_version_for_its_part() -> None:
    table = dong_da_revised()
    stay = price(
        table,
        CAR,
        datetime(2025, 12, 31, 22, tzinfo=HANOI),
        datetime(2026, 1, 1, 2, 30, tzinfo=HANOI),
    )
    assert [(local(s.start), local(s.end), s.version, s.amount_vnd) for s in stay.segments] == [
        ("31 22:00", "01 00:00", 1, 2 * 25_000),
        ("01 00:00", "01 02:00", 2, 2 * 40_000),
        ("01 02:00", "01 02:30", 2, 50_000),
    ]
    assert stay.total_vnd == 180_000


def test_block_started_before_a_version_change_keeps_its_price() -> None:
    change = datetime(2026, 1, 1, 0, 30, tzinfo=HANOI)
    table = dong_da_revised(change)
    stay = price(table, CAR, datetime(2025, 12, 31, 23, tzinfo=HANOI), change + timedelta(hours=1))
    assert [(s.version, s.blocks, s.amount_vnd) for s in stay.segments] == [
        (1, 2, 50_000),
        # 00:30-01:00 lies in the block version 1 priced at 00:00.
        (2, 0, 0),
        # Hour 3 of the stay, at version 2's price.
        (2, 1, 40_000),
    ]


def test_stay_before_the_first_version_has_no_tariff() -> None:
    start = datetime(2017, 12, 31, 23, tzinfo=HANOI)
    with pytest.raises(NoTariffInForce) as raised:
        price(dong_da(), CAR, start, start + timedelta(hours=2))
    assert raised.value.code == "no_tariff_in_force"


def test_large_vehicles_have_no_published_street_price() -> None:
    with pytest.raises(VehicleClassNotServed) as raised:
        price(iparking(), VehicleClass.LARGE, TEN_AM, at(11))
    assert raised.value.code == "vehicle_class_not_served"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (TEN_AM.replace(tzinfo=None), at(11).replace(tzinfo=None)),
        (TEN_AM, TEN_AM),
        (at(11), TEN_AM),
        (TEN_AM, TEN_AM + timedelta(days=7, seconds=1)),
    ],
    ids=["naive", "empty", "backwards", "longer than a week"],
)
def test_malformed_stays_are_refused(start: datetime, end: datetime) -> None:
    with pytest.raises(InvalidStay) as raised:
        quote(dong_da(), CAR, start, end, allow_overstay=True)
    assert raised.value.code == "invalid_stay"


def test_iparking_full_day_and_night_stops_at_the_whole_day_price() -> None:
    stay = price(iparking(), CAR, at(6), at(6, day=1))
    # The day alone lists 25,000 + 2 x 35,000 + 8 x 45,000 = 455,000; the night 150,000.
    assert sum(segment.before_cap_vnd for segment in stay.segments) == 605_000
    assert stay.total_vnd == 300_000
    assert stay.segments[-1].period == "night"
    assert stay.segments[-1].amount_vnd == 0
