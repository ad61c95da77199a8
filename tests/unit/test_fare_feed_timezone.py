"""A feed's local time is its agencies' agency_timezone (agency.txt); without agency.txt it is
Asia/Ho_Chi_Minh. Timeframes and pass validity are read on that clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.builders.fares import (
    BUS_RAIL_FERRY_RULES,
    CALENDAR,
    HANOI,
    MONDAY,
    PASS_FILES,
    PEAK,
    PEAK_RULES,
    VALID,
    engine,
    leg,
    with_changes,
)
from ticketing.fares.entitlements import pass_validity
from ticketing.fares.errors import FeedError
from ticketing.fares.feed import DEFAULT_TIMEZONE
from ticketing.fares.loader import load_feed

AGENCY_HEADER = "agency_id,agency_name,agency_url,agency_timezone\n"


def test_feed_timezone_is_the_agencies_timezone() -> None:
    agency = (
        AGENCY_HEADER + "a,A,https://a.example,Europe/Paris\nb,B,https://b.example,Europe/Paris\n"
    )
    assert load_feed(with_changes(agency=agency)).timezone == "Europe/Paris"


def test_feed_without_agency_file_is_in_hanoi_time() -> None:
    assert load_feed(VALID).timezone == DEFAULT_TIMEZONE == "Asia/Ho_Chi_Minh"


@pytest.mark.parametrize(
    ("agency", "row", "field"),
    [
        pytest.param(
            AGENCY_HEADER
            + "a,A,https://a.example,Europe/Paris\nb,B,https://b.example,Asia/Tokyo\n",
            3,
            "agency_timezone",
            id="agencies-in-two-timezones",
        ),
        pytest.param(
            AGENCY_HEADER + "a,A,https://a.example,Mars/Olympus_Mons\n",
            2,
            "agency_timezone",
            id="unknown-timezone",
        ),
        pytest.param(
            AGENCY_HEADER + "a,A,https://a.example,/etc/localtime\n",
            2,
            "agency_timezone",
            id="timezone-as-a-path",
        ),
        pytest.param(
            AGENCY_HEADER + "a,A,https://a.example,\n", 2, "agency_timezone", id="timezone-empty"
        ),
        pytest.param(
            "agency_id,agency_name\na,A\n", 1, "agency_timezone", id="timezone-column-missing"
        ),
        pytest.param(AGENCY_HEADER, 0, "agency_timezone", id="no-agency-listed"),
    ],
)
def test_broken_agency_file_is_refused_naming_row_and_field(
    agency: str, row: int, field: str
) -> None:
    with pytest.raises(FeedError) as error:
        load_feed(with_changes(agency=agency))
    assert (error.value.file, error.value.row, error.value.field) == ("agency.txt", row, field)


TOKYO = ZoneInfo("Asia/Tokyo")
AGENCIES_IN_TOKYO = (
    "agency_id,agency_name,agency_url,agency_timezone\n"
    "metro,Metro,https://metro.example,Asia/Tokyo\nbus,Bus,https://bus.example,Asia/Tokyo\n"
)


def test_timeframes_are_read_in_the_timezone_of_the_feeds_agencies() -> None:
    priced = engine(
        agency=AGENCIES_IN_TOKYO, calendar=CALENDAR, timeframes=PEAK, fare_leg_rules=PEAK_RULES
    )
    # 07:30 in Tokyo is 05:30 in Hanoi, and 07:30 in Hanoi is 09:30 in Tokyo.
    assert priced.price([leg("b1", at=MONDAY.replace(tzinfo=TOKYO, minute=30))]).total_vnd == 4000
    assert priced.price([leg("b1", at=MONDAY.replace(minute=30))]).total_vnd == 1500
    assert priced.timezone == TOKYO


def test_feed_without_agencies_keeps_hanoi_time() -> None:
    assert engine(fare_leg_rules=BUS_RAIL_FERRY_RULES).timezone == HANOI


def test_day_pass_ends_at_midnight_in_the_feeds_timezone() -> None:
    priced = engine(agency=AGENCIES_IN_TOKYO, fare_leg_rules=BUS_RAIL_FERRY_RULES, **PASS_FILES)
    bought_at = datetime(2025, 6, 2, 23, 0, tzinfo=TOKYO)  # 21:00 in Hanoi
    valid_from, valid_until = pass_validity(priced.feed, "day_pass", bought_at)
    assert (valid_from, valid_until) == (bought_at, datetime(2025, 6, 3, tzinfo=TOKYO))
