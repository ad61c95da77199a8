"""Golden fares of the Hanoi feed, from the published numbers in HANOI.md (and the documented
invented rules of the feed's README where HANOI.md gives only a range)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ticketing.fares.engine import FareEngine
from ticketing.fares.entitlements import pass_validity
from ticketing.fares.errors import UnknownRoute, UnknownStop
from ticketing.fares.journey import Coverage, Entitlements, HeldPass, Leg
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY_8AM = datetime(2025, 6, 2, 8, 0, tzinfo=HANOI)
RIDE = timedelta(minutes=25)
FREE_CATEGORIES = ("elderly", "child", "merit", "disabled", "poor_household")
CARD = "transit_card"
APP = "mobile_app"


@pytest.fixture(scope="module")
def engine() -> FareEngine:
    return FareEngine(load_feed(HANOI_FEED_DIR))


def ride(
    network: str,
    route: str,
    origin: str,
    destination: str,
    *,
    category: str = "regular",
    medium: str = CARD,
    at: datetime = MONDAY_8AM,
) -> Leg:
    return Leg(network, route, origin, destination, at, at + RIDE, category, medium)


@pytest.mark.parametrize(
    ("network", "route", "fare_vnd"),
    [
        ("bus_8k", "09A", 8_000),
        ("bus_10k", "01", 10_000),
        ("bus_12k", "27", 12_000),
        ("bus_15k", "90", 15_000),
        ("bus_20k", "70A", 20_000),
    ],
)
def test_bus_single_ride_costs_its_route_band(
    engine: FareEngine, network: str, route: str, fare_vnd: int
) -> None:
    fare = engine.price([ride(network, route, "bus-kim-ma", "bus-cau-giay")])
    assert fare.total_vnd == fare_vnd
    assert fare.legs[0].leg_group_id == "bus"


@pytest.mark.parametrize(
    ("origin", "destination", "fare_vnd"),
    [
        ("2A-01", "2A-02", 8_000),  # shortest hop
        ("2A-12", "2A-11", 8_000),
        ("2A-01", "2A-07", 9_000),
        ("2A-03", "2A-10", 11_000),
        ("2A-01", "2A-12", 15_000),  # end to end
        ("2A-12", "2A-01", 15_000),
        ("2A-05", "2A-05", 8_000),  # in and out at one station
    ],
)
def test_line_2a_single_trip_follows_the_distance_matrix(
    engine: FareEngine, origin: str, destination: str, fare_vnd: int
) -> None:
    fare = engine.price([ride("metro_2a", "2A", origin, destination)])
    assert fare.total_vnd == fare_vnd
    assert fare.legs[0].leg_rule_id.startswith(f"metro_2a/{origin}/{destination}/")


def test_every_line_2a_pair_follows_the_documented_distance_rule(engine: FareEngine) -> None:
    with (HANOI_FEED_DIR / "stops.txt").open(encoding="utf-8") as stops:
        positions_m = {
            row["stop_id"]: int(row["line_position_m"])
            for row in csv.DictReader(stops)
            if row["stop_id"].startswith("2A-")
        }
    assert len(positions_m) == 12
    for origin, start_m in positions_m.items():
        for destination, end_m in positions_m.items():
            km = -(-abs(end_m - start_m) // 1000)
            expected = min(15_000, 8_000 + 1_000 * max(0, km - 6))
            fare = engine.price([ride("metro_2a", "2A", origin, destination)])
            assert fare.total_vnd == expected, (origin, destination)


@pytest.mark.parametrize(
    ("origin", "destination", "fare_vnd"),
    [
        ("3-01", "3-02", 8_000),
        ("3-01", "3-05", 9_000),
        ("3-08", "3-02", 11_000),
        ("3-01", "3-08", 12_000),
    ],
)
def test_line_3_single_trip_follows_the_number_of_sections(
    engine: FareEngine, origin: str, destination: str, fare_vnd: int
) -> None:
    assert engine.price([ride("metro_3", "3", origin, destination)]).total_vnd == fare_vnd


def test_mobile_app_pays_the_same_single_fare_as_the_card(engine: FareEngine) -> None:
    fare = engine.price([ride("metro_2a", "2A", "2A-01", "2A-12", medium=APP)])
    assert fare.total_vnd == 15_000


def test_bus_monthly_pass_holder_pays_nothing_on_any_route(engine: FareEngine) -> None:
    start, end = pass_validity(engine.feed, "bus_monthly_all_routes", MONDAY_8AM, HANOI)
    held = Entitlements(passes=(HeldPass("bus_monthly_all_routes", start, end),))
    fare = engine.price([ride("bus_20k", "74", "bus-my-dinh", "bus-giap-bat")], held)
    assert fare.total_vnd == 0
    assert fare.legs[0].coverage is Coverage.PASS
    assert fare.legs[0].pass_product_id == "bus_monthly_all_routes"
    assert fare.reference_total_vnd == 20_000


def test_one_route_bus_pass_covers_its_route_only(engine: FareEngine) -> None:
    start, end = pass_validity(engine.feed, "bus_monthly_one_route", MONDAY_8AM, HANOI)
    held = Entitlements(passes=(HeldPass("bus_monthly_one_route", start, end, route_id="32"),))
    on_route = engine.price([ride("bus_10k", "32", "bus-kim-ma", "bus-cau-giay")], held)
    other_route = engine.price([ride("bus_10k", "01", "bus-kim-ma", "bus-cau-giay")], held)
    assert (on_route.total_vnd, other_route.total_vnd) == (0, 10_000)


def test_monthly_pass_does_not_cover_next_month(engine: FareEngine) -> None:
    start, end = pass_validity(engine.feed, "metro_2a_monthly", MONDAY_8AM, HANOI)
    held = Entitlements(passes=(HeldPass("metro_2a_monthly", start, end),))
    july = datetime(2025, 7, 1, 0, 0, tzinfo=HANOI)
    assert end == july
    fare = engine.price([ride("metro_2a", "2A", "2A-01", "2A-12", at=july)], held)
    assert fare.total_vnd == 15_000


def test_line_2a_day_ticket_covers_every_trip_that_day_and_not_line_3(engine: FareEngine) -> None:
    start, end = pass_validity(engine.feed, "metro_2a_day", MONDAY_8AM, HANOI)
    held = Entitlements(passes=(HeldPass("metro_2a_day", start, end),))
    evening = MONDAY_8AM.replace(hour=21)
    there = engine.price([ride("metro_2a", "2A", "2A-01", "2A-12")], held)
    back = engine.price([ride("metro_2a", "2A", "2A-12", "2A-01", at=evening)], held)
    line_3 = engine.price([ride("metro_3", "3", "3-01", "3-08")], held)
    tomorrow = engine.price([ride("metro_2a", "2A", "2A-01", "2A-12", at=end)], held)
    assert (there.total_vnd, back.total_vnd) == (0, 0)
    assert (line_3.total_vnd, tomorrow.total_vnd) == (12_000, 15_000)


@pytest.mark.parametrize("category", FREE_CATEGORIES)
def test_free_category_pays_nothing_but_the_journey_is_priced(
    engine: FareEngine, category: str
) -> None:
    fare = engine.price([ride("metro_2a", "2A", "2A-01", "2A-12", category=category)])
    assert fare.total_vnd == 0
    assert fare.is_free_category
    assert fare.legs[0].fare_product_id == "metro_2a_single_15000"
    assert fare.legs[0].reference_amount_vnd == 15_000
    assert fare.reference_total_vnd == 15_000


def test_priority_rider_pays_the_regular_single_fare(engine: FareEngine) -> None:
    fare = engine.price([ride("bus_8k", "18", "bus-kim-ma", "bus-cau-giay", category="priority")])
    assert fare.total_vnd == 8_000
    assert not fare.is_free_category


def test_bus_then_metro_within_an_hour_gets_the_transfer_discount(engine: FareEngine) -> None:
    bus = ride("bus_10k", "01", "bus-kim-ma", "bus-ha-dong")
    metro = ride("metro_2a", "2A", "2A-09", "2A-01", at=bus.arrival + timedelta(minutes=20))
    fare = engine.price([bus, metro])
    assert fare.total_vnd == 10_000 + 12_000 - 3_000
    assert fare.transfer_discount_vnd == 3_000
    assert fare.transfers[0].transfer_product_id == "transfer_bus_to_metro"


def test_bus_then_metro_after_an_hour_pays_both_in_full(engine: FareEngine) -> None:
    bus = ride("bus_10k", "01", "bus-kim-ma", "bus-ha-dong")
    metro = ride("metro_2a", "2A", "2A-09", "2A-01", at=bus.arrival + timedelta(minutes=61))
    fare = engine.price([bus, metro])
    assert fare.total_vnd == 22_000
    assert fare.transfers == ()


def test_metro_then_bus_gets_no_transfer_discount(engine: FareEngine) -> None:
    metro = ride("metro_2a", "2A", "2A-01", "2A-09")
    bus = ride("bus_10k", "01", "bus-ha-dong", "bus-kim-ma", at=metro.arrival)
    assert engine.price([metro, bus]).total_vnd == 12_000 + 10_000


def test_unknown_stop_is_refused_with_a_reason(engine: FareEngine) -> None:
    with pytest.raises(UnknownStop) as refusal:
        engine.price([ride("metro_2a", "2A", "2A-01", "2A-99")])
    assert refusal.value.code == "unknown_stop"
    assert "2A-99" in refusal.value.reason


def test_bus_route_in_no_band_is_refused(engine: FareEngine) -> None:
    with pytest.raises(UnknownRoute, match="route 999"):
        engine.price([ride("bus_8k", "999", "bus-kim-ma", "bus-cau-giay")])
