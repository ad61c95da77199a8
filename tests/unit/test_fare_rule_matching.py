"""The GTFS-Fares v2 rules, one small synthetic feed per rule: leg matching with and without
rule_priority, timeframes, join rules, transfer types, counts and duration limits, and our
pass and cap extension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.builders.fares import (
    BUS_RAIL_FERRY_RULES,
    CALENDAR,
    HANOI,
    JOINED_RULES,
    MONDAY,
    PASS_FILES,
    PEAK,
    PEAK_RULES,
    engine,
    leg,
)
from ticketing.fares.errors import InvalidJourney, NoProductForRider, UnknownFare
from ticketing.fares.feed import CapPeriod
from ticketing.fares.journey import Entitlements, HeldPass, Leg

SATURDAY = datetime(2025, 6, 7, 8, 0, tzinfo=HANOI)

TRANSFER_HEADER = (
    "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,"
    "fare_transfer_type,fare_product_id\n"
)


# --- fare_leg_rules.txt without rule_priority -------------------------------------------------

AREA_RULES = "network_id,from_area_id,to_area_id,fare_product_id\nrail,A,B,p3000\nrail,,,p2000\n"


def test_exact_area_match_beats_empty_areas() -> None:
    fare = engine(fare_leg_rules=AREA_RULES).price([leg("r1", "sA", "sB")])
    assert fare.total_vnd == 3000
    assert fare.legs[0].leg_rule_id == "rail/A/B/*/*/p3000"


def test_empty_area_without_priority_matches_only_areas_listed_nowhere() -> None:
    priced = engine(fare_leg_rules=AREA_RULES)
    assert priced.price([leg("r1", "sC", "sD")]).total_vnd == 2000
    with pytest.raises(UnknownFare, match="from sA to sC"):
        priced.price([leg("r1", "sA", "sC")])  # A is listed, so the empty from_area excludes it


def test_empty_network_without_priority_excludes_listed_networks() -> None:
    priced = engine(fare_leg_rules="network_id,fare_product_id\nbus,p1000\n,p500\n")
    # The cheaper catch-all would win if it matched the bus: it must not.
    assert priced.price([leg("b1")]).total_vnd == 1000
    assert priced.price([leg("f1")]).total_vnd == 500


def test_equally_specific_rules_are_alternatives_and_the_rider_gets_the_cheapest() -> None:
    priced = engine(fare_leg_rules="network_id,fare_product_id\nbus,p1500\nbus,p1000\n")
    assert priced.price([leg("b1")]).legs[0].fare_product_id == "p1000"


def test_no_matching_rule_is_an_unknown_fare_never_zero() -> None:
    priced = engine(fare_leg_rules="network_id,fare_product_id\nbus,p1000\n")
    with pytest.raises(UnknownFare) as refusal:
        priced.price([leg("r1")])
    assert refusal.value.code == "unknown_fare"
    assert "network rail" in refusal.value.reason


def test_platform_takes_its_station_area_unless_given_its_own() -> None:
    priced = engine(fare_leg_rules=AREA_RULES)
    assert priced.price([leg("r1", "sA", "sB_platform")]).total_vnd == 3000


# --- fare_leg_rules.txt with rule_priority -----------------------------------------------------


def test_with_priority_the_highest_priority_wins_over_an_exact_match() -> None:
    rules = "network_id,fare_product_id,rule_priority\nbus,p1000,0\n,p500,1\n"
    assert engine(fare_leg_rules=rules).price([leg("b1")]).total_vnd == 500


def test_with_priority_an_empty_priority_counts_as_zero() -> None:
    rules = "network_id,fare_product_id,rule_priority\nbus,p1000,\n,p1500,1\n"
    assert engine(fare_leg_rules=rules).price([leg("b1")]).total_vnd == 1500


def test_with_priority_an_empty_field_does_not_matter() -> None:
    rules = (
        "network_id,from_area_id,to_area_id,fare_product_id,rule_priority\n"
        "rail,A,B,p3000,1\nrail,,,p2000,0\n"
    )
    priced = engine(fare_leg_rules=rules)
    assert priced.price([leg("r1", "sA", "sC")]).total_vnd == 2000  # A listed, still matched
    assert priced.price([leg("r1", "sA", "sB")]).total_vnd == 3000


# --- timeframes.txt ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local_time", "fare_vnd"),
    [
        ((6, 59, 59), 1500),
        ((7, 0, 0), 4000),  # start is inclusive
        ((8, 59, 59), 4000),
        ((9, 0, 0), 1500),  # end is exclusive
    ],
)
def test_timeframe_start_is_inclusive_and_end_exclusive(
    local_time: tuple[int, int, int], fare_vnd: int
) -> None:
    priced = engine(calendar=CALENDAR, timeframes=PEAK, fare_leg_rules=PEAK_RULES)
    hour, minute, second = local_time
    at = MONDAY.replace(hour=hour, minute=minute, second=second)
    assert priced.price([leg("b1", at=at)]).total_vnd == fare_vnd


def test_timeframes_are_read_in_hanoi_local_time_from_a_utc_timestamp() -> None:
    priced = engine(calendar=CALENDAR, timeframes=PEAK, fare_leg_rules=PEAK_RULES)
    at_utc = datetime(2025, 6, 2, 0, 30, tzinfo=UTC)  # 07:30 in Hanoi, 00:30 in UTC
    assert priced.price([leg("b1", at=at_utc)]).total_vnd == 4000


def test_timeframe_applies_only_on_its_service_days() -> None:
    priced = engine(calendar=CALENDAR, timeframes=PEAK, fare_leg_rules=PEAK_RULES)
    assert priced.price([leg("b1", at=SATURDAY)]).total_vnd == 1500


def test_to_timeframe_is_matched_on_the_arrival_time() -> None:
    rules = "network_id,to_timeframe_group_id,fare_product_id\nbus,peak,p4000\nbus,,p1500\n"
    priced = engine(calendar=CALENDAR, timeframes=PEAK, fare_leg_rules=rules)
    arriving_in_peak = leg("b1", at=MONDAY.replace(hour=6, minute=45))
    arriving_after = leg("b1", at=MONDAY.replace(hour=8, minute=45))
    assert priced.price([arriving_in_peak]).total_vnd == 4000
    assert priced.price([arriving_after]).total_vnd == 1500


def test_calendar_date_exception_removes_a_service_day() -> None:
    removed = "service_id,date,exception_type\nweekdays,20250602,2\n"
    priced = engine(
        calendar=CALENDAR, calendar_dates=removed, timeframes=PEAK, fare_leg_rules=PEAK_RULES
    )
    assert priced.price([leg("b1")]).total_vnd == 1500


# --- fare_leg_join_rules.txt -------------------------------------------------------------------


def test_join_rule_prices_two_legs_as_one_effective_fare_leg() -> None:
    priced = engine(
        fare_leg_rules=JOINED_RULES,
        fare_leg_join_rules="from_network_id,to_network_id\nrail,rail\n",
    )
    first = leg("r1", "sA", "sB")
    second = leg("r1", "sB", "sC", at=first.arrival + timedelta(minutes=5))
    fare = priced.price([first, second])
    assert fare.total_vnd == 2500
    assert fare.legs[0].leg_indexes == (0, 1)


def test_without_a_join_rule_each_leg_pays_its_own_fare() -> None:
    first = leg("r1", "sA", "sB")
    second = leg("r1", "sB", "sC", at=first.arrival)
    assert engine(fare_leg_rules=JOINED_RULES).price([first, second]).total_vnd == 4000


def test_join_rule_needs_the_same_station_unless_it_names_the_stops() -> None:
    first = leg("r1", "sA", "sB")
    walk_to_other = leg("r1", "sB_other", "sC", at=first.arrival)
    plain = engine(
        fare_leg_rules=JOINED_RULES,
        fare_leg_join_rules="from_network_id,to_network_id\nrail,rail\n",
    )
    named = engine(
        fare_leg_rules=JOINED_RULES,
        fare_leg_join_rules=(
            "from_network_id,to_network_id,from_stop_id,to_stop_id\nrail,rail,sB,sB_other\n"
        ),
    )
    assert plain.price([first, walk_to_other]).total_vnd == 4000
    assert named.price([first, walk_to_other]).total_vnd == 2500


def test_join_rule_platform_and_its_station_are_the_same_station() -> None:
    priced = engine(
        fare_leg_rules=JOINED_RULES,
        fare_leg_join_rules="from_network_id,to_network_id\nrail,rail\n",
    )
    first = leg("r1", "sA", "sB_platform")
    second = leg("r1", "sB", "sC", at=first.arrival)
    assert priced.price([first, second]).total_vnd == 2500


# --- fare_transfer_rules.txt: types and arithmetic ---------------------------------------------


def bus_then_rail(gap: timedelta = timedelta(minutes=10)) -> list[Leg]:
    bus = leg("b1", "sA", "sB")
    return [bus, leg("r1", "sB", "sC", at=bus.arrival + gap)]


@pytest.mark.parametrize(
    ("transfer_type", "fare_vnd"),
    [
        (0, 1000 + 300),  # A + AB
        (1, 1000 + 300 + 2000),  # A + AB + B
        (2, 300),  # AB
    ],
)
def test_transfer_type_arithmetic(transfer_type: int, fare_vnd: int) -> None:
    rules = TRANSFER_HEADER + f"g_bus,g_rail,,,,{transfer_type},p300\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    fare = priced.price(bus_then_rail())
    assert fare.total_vnd == fare_vnd
    assert fare.transfers[0].fare_transfer_type == transfer_type


def test_type_2_on_a_second_transfer_adds_to_what_came_before() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,2,p300\ng_rail,g_ferry,,,,2,p200\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    legs = bus_then_rail()
    ferry = leg("f1", "sC", "sD", at=legs[-1].arrival)
    assert priced.price([*legs, ferry]).total_vnd == 300 + 200  # AB, then S + BC


def test_type_1_on_a_second_transfer_adds_the_transfer_and_the_next_leg() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,1,p100\ng_rail,g_ferry,,,,1,p200\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    legs = bus_then_rail()
    ferry = leg("f1", "sC", "sD", at=legs[-1].arrival)
    assert priced.price([*legs, ferry]).total_vnd == 1000 + 100 + 2000 + 200 + 500


def test_transfer_without_a_product_is_free() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    assert priced.price(bus_then_rail()).total_vnd == 1000


def test_transfer_rules_do_not_apply_in_reverse() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    rail = leg("r1", "sA", "sB")
    bus = leg("b1", "sB", "sC", at=rail.arrival)
    assert priced.price([rail, bus]).total_vnd == 3000


def test_negative_transfer_product_is_a_discount() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,1,minus500\n"
    fare = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules).price(
        bus_then_rail()
    )
    assert fare.total_vnd == 1000 + 2000 - 500
    assert fare.transfer_discount_vnd == 500


def test_discount_larger_than_the_journey_never_makes_the_fare_negative() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,1,minus9000\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    assert priced.price(bus_then_rail()).total_vnd == 0


def test_empty_from_group_matches_groups_not_listed_elsewhere() -> None:
    rules = TRANSFER_HEADER + "g_ferry,g_rail,,,,0,\n,g_rail,,,,0,p100\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    assert priced.price(bus_then_rail()).total_vnd == 1000 + 100


# --- transfer_count ----------------------------------------------------------------------------


def buses(count: int) -> list[Leg]:
    legs: list[Leg] = []
    at = MONDAY
    for _ in range(count):
        legs.append(leg("b1", "sA", "sB", at=at, duration=timedelta(minutes=10)))
        at += timedelta(minutes=15)
    return legs


def test_transfer_count_limits_how_many_transfers_a_rule_spans() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_bus,1,,,0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    assert priced.price(buses(2)).total_vnd == 1000
    assert priced.price(buses(3)).total_vnd == 2000  # the third bus starts a new sub-journey


def test_transfer_count_minus_one_is_unlimited() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_bus,-1,,,0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    assert priced.price(buses(5)).total_vnd == 1000


def test_smallest_transfer_count_covering_the_transfer_is_chosen() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_bus,1,,,0,p100\ng_bus,g_bus,-1,,,0,p200\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    fare = priced.price(buses(3))
    assert fare.total_vnd == 1000 + 100 + 200
    assert [t.transfer_product_id for t in fare.transfers] == ["p100", "p200"]


# --- duration_limit and duration_limit_type ----------------------------------------------------


@pytest.mark.parametrize(
    ("limit_type", "limit_s", "applies"),
    [
        (0, 3000, False),  # first departure 08:00 to last arrival 09:20: 80 min
        (0, 4800, True),
        (1, 3000, True),  # first departure 08:00 to last departure 08:50: exactly 50 min
        (1, 2999, False),
        (2, 1200, True),  # first arrival 08:30 to last departure 08:50: 20 min
        (2, 1199, False),
        (3, 3000, True),  # first arrival 08:30 to last arrival 09:20: 50 min
        (3, 2999, False),
    ],
)
def test_duration_limit_is_measured_per_duration_limit_type(
    limit_type: int, limit_s: int, applies: bool
) -> None:
    rules = TRANSFER_HEADER + f"g_bus,g_rail,,{limit_s},{limit_type},0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    fare = priced.price(bus_then_rail(gap=timedelta(minutes=20)))
    assert fare.total_vnd == (1000 if applies else 3000)


def test_duration_limit_of_a_repeated_rule_runs_from_its_first_leg() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_bus,-1,1800,1,0,\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    # Departures 08:00, 08:15, 08:30, 08:45: the fourth is 45 min after the first.
    fare = priced.price(buses(4))
    assert fare.total_vnd == 2000
    assert [t.to_leg for t in fare.transfers] == [1, 2]


def test_of_several_duration_limits_the_cheapest_satisfied_rule_applies() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,600,1,0,\ng_bus,g_rail,,3600,1,0,p500\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules)
    # Departure 08:00, then 08:40: only the 60-minute rule is satisfied.
    assert priced.price(bus_then_rail()).total_vnd == 1000 + 500


# --- fare products: rider category and medium --------------------------------------------------


def test_category_price_row_beats_the_any_category_row() -> None:
    priced = engine(fare_leg_rules="network_id,fare_product_id\nbus,senior_free\n")
    assert priced.price([leg("b1", category="senior")]).total_vnd == 0
    assert priced.price([leg("b1", category="adult")]).total_vnd == 1000


def test_product_not_sold_on_the_riders_medium_is_refused() -> None:
    priced = engine(fare_leg_rules="network_id,fare_product_id\nbus,card_only\n")
    assert priced.price([leg("b1", medium="card")]).total_vnd == 700
    with pytest.raises(NoProductForRider, match="medium app"):
        priced.price([leg("b1", medium="app")])


# --- extension: passes and caps ----------------------------------------------------------------


def test_pass_covered_leg_takes_no_part_in_transfers() -> None:
    rules = TRANSFER_HEADER + "g_bus,g_rail,,,,2,p300\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_transfer_rules=rules, **PASS_FILES)
    held = Entitlements(passes=(HeldPass("day_pass", MONDAY, MONDAY + timedelta(days=1)),))
    fare = priced.price(bus_then_rail(), held)
    assert fare.total_vnd == 2000
    assert fare.transfers == ()


def test_pass_outside_its_validity_covers_nothing() -> None:
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, **PASS_FILES)
    expired = HeldPass("day_pass", MONDAY - timedelta(days=1), MONDAY)
    assert priced.price([leg("b1")], Entitlements(passes=(expired,))).total_vnd == 1000


def test_cap_limits_the_fare_to_what_is_left_in_the_period() -> None:
    caps = "cap_id,rider_category_id,cap_period,cap_amount,currency\ndaily,adult,day,5000,VND\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_caps=caps)
    held = Entitlements(spent_vnd={CapPeriod.DAY: 4000})
    fare = priced.price([leg("r1")], held)
    assert (fare.total_vnd, fare.before_cap_vnd, fare.cap_id) == (1000, 2000, "daily")
    assert fare.cap_reduction_vnd == 1000
    senior = priced.price([leg("r1", category="senior")], held)
    assert senior.total_vnd == 2000  # the cap is for adults only


def test_cap_already_reached_makes_the_ride_free_but_priced() -> None:
    caps = "cap_id,cap_period,cap_amount,currency\nmonthly,month,50000,VND\n"
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES, fare_caps=caps)
    fare = priced.price([leg("r1")], Entitlements(spent_vnd={CapPeriod.MONTH: 60000}))
    assert (fare.total_vnd, fare.before_cap_vnd) == (0, 2000)


# --- the journey itself ------------------------------------------------------------------------


def test_naive_times_are_refused() -> None:
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES)
    naive = Leg(
        "bus", "b1", "sA", "sB", datetime(2025, 6, 2, 8), datetime(2025, 6, 2, 9), "adult", "card"
    )
    with pytest.raises(InvalidJourney, match="timezone"):
        priced.price([naive])


def test_legs_out_of_order_are_refused() -> None:
    priced = engine(fare_leg_rules=BUS_RAIL_FERRY_RULES)
    later, earlier = leg("b1", at=MONDAY + timedelta(hours=1)), leg("r1")
    with pytest.raises(InvalidJourney, match="departs before"):
        priced.price([later, earlier])


def test_empty_journey_is_refused() -> None:
    with pytest.raises(InvalidJourney):
        engine(fare_leg_rules=BUS_RAIL_FERRY_RULES).price([])
