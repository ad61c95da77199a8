"""The per-rider state passes and caps need: spend per cap period, passes held."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from ticketing.journeys.domain.rider_journeys import RiderJourneys, cap_period_keys
from ticketing.journeys.domain.rider_passes import PASSES_HELD_MAX, RiderPasses, TooManyPasses
from ticketing.shared.domain.invariants import InvariantViolated

AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
HANOI_MIDNIGHT = datetime.fromisoformat("2026-11-24T00:00:00+07:00")


def test_cap_periods_are_the_day_the_iso_week_and_the_month_of_a_service_day() -> None:
    assert cap_period_keys(date(2026, 12, 31)) == {
        "day": "day:2026-12-31",
        "week": "week:2026-W53",
        "month": "month:2026-12",
    }


def test_a_fare_counts_in_each_period_and_a_correction_takes_it_back() -> None:
    book = RiderJourneys(account_id=uuid4())
    day = date(2026, 11, 23)
    book.count_fare(day=day, change_vnd=15_000, at=AT)
    book.count_fare(day=day + timedelta(days=1), change_vnd=8_000, at=AT)
    book.count_fare(day=day, change_vnd=-7_000, at=AT)
    assert book.spent_in(day) == {"day": 8_000, "week": 16_000, "month": 16_000}
    assert book.spent_in(date(2026, 12, 1)) == {"day": 0, "week": 0, "month": 0}


def test_a_zero_change_records_nothing_and_spend_never_goes_negative() -> None:
    book = RiderJourneys(account_id=uuid4())
    day = date(2026, 11, 23)
    book.count_fare(day=day, change_vnd=0, at=AT)
    assert len(book.collect_events()) == 1  # only the opening
    book.count_fare(day=day, change_vnd=-5_000, at=AT)
    assert book.spent_in(day) == {"day": 0, "week": 0, "month": 0}


def test_only_recent_periods_are_kept() -> None:
    book = RiderJourneys(account_id=uuid4())
    first = date(2026, 1, 1)
    for offset in range(100):
        book.count_fare(day=first + timedelta(days=offset), change_vnd=1_000, at=AT)
    kinds = [key.split(":")[0] for key in book.spent_vnd]
    assert (kinds.count("day"), kinds.count("week"), kinds.count("month")) == (8, 3, 2)
    assert book.spent_in(first) == {"day": 0, "week": 0, "month": 0}


def buy(passes: RiderPasses, purchase_id: str, *, at: datetime = AT) -> None:
    passes.buy(
        purchase_id=purchase_id,
        fare_product_id="metro_2a_day",
        route_id=None,
        valid_from=at,
        valid_until=at + timedelta(hours=12),
        price_vnd=30_000,
        transfer_id=f"pass:{purchase_id}",
        at=at,
    )


def test_a_pass_is_valid_from_its_start_up_to_its_end_excluded_whatever_the_timezone() -> None:
    passes = RiderPasses(account_id=uuid4())
    passes.buy(
        purchase_id="p-1",
        fare_product_id="metro_2a_day",
        route_id=None,
        valid_from=AT,
        valid_until=HANOI_MIDNIGHT,
        price_vnd=30_000,
        transfer_id="pass:p-1",
        at=AT,
    )
    assert passes.valid_at(AT - timedelta(seconds=1)) == []
    assert len(passes.valid_at(AT)) == 1
    assert len(passes.valid_at(datetime.fromisoformat("2026-11-23T16:59:59+00:00"))) == 1
    assert passes.valid_at(HANOI_MIDNIGHT.astimezone(UTC)) == []


def test_a_rider_holds_a_bounded_number_of_live_passes() -> None:
    passes = RiderPasses(account_id=uuid4())
    for index in range(PASSES_HELD_MAX):
        buy(passes, f"p-{index}")
    with pytest.raises(TooManyPasses):
        buy(passes, "one-more")


def test_a_pass_valid_for_no_time_is_a_bug() -> None:
    passes = RiderPasses(account_id=uuid4())
    with pytest.raises(InvariantViolated):
        passes.buy(
            purchase_id="p-1",
            fare_product_id="metro_2a_day",
            route_id=None,
            valid_from=AT,
            valid_until=AT,
            price_vnd=30_000,
            transfer_id="pass:p-1",
            at=AT,
        )
