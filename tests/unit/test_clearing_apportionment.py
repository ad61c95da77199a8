"""The apportionment rules of the money map: a journey's charge over its legs by standalone
fare, a pass's price over the rides it covered, its unused value over its networks' operators;
every split adds up to its payment, and a reversal mirrors its charge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.domain.apportionment import Part, apportion_journey, apportion_pass
from clearing.domain.errors import InvalidOperatorId, InvalidSplit
from clearing.domain.positions import RevenueLine

EXAMPLES = settings(max_examples=200, deadline=None)
BUS = "transerco"
METRO = "hanoi-metro"


def test_a_bus_then_metro_journey_is_split_by_each_legs_standalone_fare() -> None:
    # Bus 8,000 alone, metro 13,000 alone, 18,000 with the transfer discount of 3,000.
    legs = [Part(BUS, 8_000), Part(METRO, 13_000)]
    assert apportion_journey(18_000, legs) == [
        RevenueLine(BUS, 6_857),
        RevenueLine(METRO, 11_143),
    ]
    # Its refund is the exact mirror.
    assert apportion_journey(-18_000, legs) == [
        RevenueLine(BUS, -6_857),
        RevenueLine(METRO, -11_143),
    ]


def test_a_journey_whose_legs_are_all_free_alone_shares_equally() -> None:
    assert apportion_journey(5, [Part(BUS, 0), Part(METRO, 0)]) == [
        RevenueLine(BUS, 3),
        RevenueLine(METRO, 2),
    ]


def test_a_journey_without_legs_or_with_a_bad_operator_is_refused() -> None:
    with pytest.raises(InvalidSplit):
        apportion_journey(8_000, [])
    with pytest.raises(InvalidOperatorId):
        apportion_journey(8_000, [Part("", 8_000)])


def test_a_monthly_pass_is_earned_over_its_rides_by_their_standalone_fares() -> None:
    rides = [Part(METRO, 13_000), Part(METRO, 8_000), Part(BUS, 8_000), Part(METRO, 8_000)]
    lines = apportion_pass(200_000, rides, [METRO])
    assert [line.amount_vnd for line in lines] == [70_271, 43_243, 43_243, 43_243]
    assert sum(line.amount_vnd for line in lines) == 200_000


def test_an_unused_pass_goes_equally_to_its_networks_operators() -> None:
    lines = apportion_pass(280_000 + 1, [], ["transerco", "bus-b", "transerco"])
    assert lines == [RevenueLine("bus-b", 140_001), RevenueLine("transerco", 140_000)]
    # Rides free alone (a free category's rides) earn nothing; the pass is unused value.
    assert apportion_pass(30_000, [Part(METRO, 0)], [METRO]) == [RevenueLine(METRO, 30_000)]


def test_an_unused_pass_with_no_operator_to_earn_it_is_refused() -> None:
    with pytest.raises(InvalidSplit):
        apportion_pass(30_000, [], [])


parts = st.lists(
    st.builds(Part, st.sampled_from([BUS, METRO, "op-c"]), st.integers(0, 20_000)),
    min_size=1,
    max_size=30,
)


@EXAMPLES
@given(st.integers(min_value=-2_000_000, max_value=2_000_000), parts)
def test_a_journeys_lines_add_up_to_its_charge(amount_vnd: int, legs: list[Part]) -> None:
    lines = apportion_journey(amount_vnd, legs)
    assert sum(line.amount_vnd for line in lines) == amount_vnd
    assert [line.operator_id for line in lines] == [leg.operator_id for leg in legs]


@EXAMPLES
@given(
    st.integers(min_value=1, max_value=2_000_000), st.lists(parts.map(lambda p: p[0]), max_size=30)
)
def test_a_passs_lines_add_up_to_its_price(price_vnd: int, rides: list[Part]) -> None:
    lines = apportion_pass(price_vnd, rides, [METRO, BUS])
    assert sum(line.amount_vnd for line in lines) == price_vnd
    assert all(line.amount_vnd >= 0 for line in lines)
