"""Properties every quote keeps, on every shipped table and the test tables: a longer stay never
costs less, the segments tile the stay, and every amount is a non-negative whole number of VND."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from parking.domain.limits import CAP_WINDOW, STAY_LIMIT
from parking.domain.pricing import Quote, quote
from parking.domain.tariff import RateTable, VehicleClass
from tests.parking_tables import (
    HANOI,
    NEW_YEAR_2026,
    dong_da,
    dong_da_revised,
    iparking,
    small_table,
)

CAR = VehicleClass.CAR
MOTORBIKE = VehicleClass.MOTORBIKE

TABLE_MAKERS: list[tuple[Callable[[], RateTable], VehicleClass]] = [
    (iparking, CAR),
    (iparking, MOTORBIKE),
    (dong_da, CAR),
    (dong_da, MOTORBIKE),
    (dong_da_revised, CAR),
    (small_table, CAR),
    (small_table, VehicleClass.LARGE),
]
TABLES = st.sampled_from(TABLE_MAKERS).map(lambda pair: (pair[0](), pair[1]))
# Around a version change of the revised table, so stays cross it often.
STARTS = st.datetimes(
    min_value=datetime(2025, 12, 24), max_value=datetime(2026, 1, 8), timezones=st.just(HANOI)
)
STAYS = st.timedeltas(min_value=timedelta(microseconds=1), max_value=STAY_LIMIT)


def price(table: RateTable, vehicle: VehicleClass, start: datetime, stay: timedelta) -> Quote:
    return quote(table, vehicle, start, start + stay, allow_overstay=True)


@settings(max_examples=300, deadline=None)
@given(TABLES, STARTS, STAYS, STAYS)
def test_fee_never_decreases_as_a_stay_gets_longer(
    table_and_class: tuple[RateTable, VehicleClass],
    start: datetime,
    one: timedelta,
    other: timedelta,
) -> None:
    table, vehicle = table_and_class
    shorter, longer = sorted((one, other))
    assert (
        price(table, vehicle, start, shorter).total_vnd
        <= price(table, vehicle, start, longer).total_vnd
    )


@settings(max_examples=300, deadline=None)
@given(TABLES, STARTS, STAYS)
def test_segments_tile_the_stay_exactly(
    table_and_class: tuple[RateTable, VehicleClass], start: datetime, stay: timedelta
) -> None:
    table, vehicle = table_and_class
    segments = price(table, vehicle, start, stay).segments
    assert segments[0].start == start
    assert segments[-1].end == start + stay
    for segment, following in pairwise(segments):
        assert segment.end == following.start
    assert all(segment.start < segment.end for segment in segments)


@settings(max_examples=300, deadline=None)
@given(TABLES, STARTS, STAYS)
def test_every_amount_is_a_non_negative_whole_number_of_vnd(
    table_and_class: tuple[RateTable, VehicleClass], start: datetime, stay: timedelta
) -> None:
    table, vehicle = table_and_class
    result = price(table, vehicle, start, stay)
    for segment in result.segments:
        for amount in (segment.amount_vnd, segment.before_cap_vnd, segment.blocks):
            assert type(amount) is int
            assert amount >= 0
        assert segment.amount_vnd <= segment.before_cap_vnd
    assert type(result.total_vnd) is int
    assert result.total_vnd == sum(segment.amount_vnd for segment in result.segments)


@settings(max_examples=200, deadline=None)
@given(STARTS, STAYS)
def test_no_24_hours_of_a_car_stay_cost_more_than_the_whole_day_price(
    start: datetime, stay: timedelta
) -> None:
    for table in (dong_da(), iparking()):
        charged_by_window: dict[int, int] = {}
        for segment in price(table, CAR, start, stay).segments:
            window = (segment.start - start) // CAP_WINDOW
            charged_by_window[window] = charged_by_window.get(window, 0) + segment.amount_vnd
        assert max(charged_by_window.values()) <= 300_000


@settings(max_examples=200, deadline=None)
@given(STARTS, STAYS)
def test_no_segment_straddles_a_version_change(start: datetime, stay: timedelta) -> None:
    for segment in price(dong_da_revised(), CAR, start, stay).segments:
        assert not segment.start < NEW_YEAR_2026 < segment.end
        assert segment.version == (1 if segment.start < NEW_YEAR_2026 else 2)


def _local_period(instant: datetime) -> str:
    return "day" if 6 <= instant.astimezone(HANOI).hour < 18 else "night"


@settings(max_examples=200, deadline=None)
@given(STARTS, STAYS)
def test_segments_split_at_every_day_and_night_boundary(start: datetime, stay: timedelta) -> None:
    for segment in price(iparking(), CAR, start, stay).segments:
        last_instant = segment.end - timedelta(microseconds=1)
        assert _local_period(segment.start) == _local_period(last_instant) == segment.period
