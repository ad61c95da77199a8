"""Multilateral net positions: a golden cycle of metro, bus and parking operators, the
refusals (a missing or impossible rate, a reserved or empty operator id), and properties over
generated cycles: positions sum to exactly 0 VND, commission plus net is revenue for each
operator, every dong of revenue is in exactly one operator's position."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.domain import limits
from clearing.domain.errors import (
    CommissionRateMissing,
    InvalidAmount,
    InvalidCommissionRate,
    InvalidOperatorId,
)
from clearing.domain.positions import RIDER_FLOAT, SCHEME, SUSPENSE, RevenueLine, net_positions

EXAMPLES = settings(max_examples=200, deadline=None)
RATES = {"hanoi-metro": 1_000, "transerco": 500, "iparking-hk": 1_000}


def test_a_cycle_of_three_operators() -> None:
    lines = [
        RevenueLine("hanoi-metro", 11_143),
        RevenueLine("transerco", 6_857),
        RevenueLine("hanoi-metro", 1_234_567),
        RevenueLine("iparking-hk", 25_000),
        RevenueLine("iparking-hk", -5_001),  # a parking credit reverses part of a fee
        RevenueLine("transerco", 493_143),
    ]
    positions = net_positions(lines, RATES)
    rows = [
        (p.operator_id, p.revenue_vnd, p.commission_vnd, p.net_vnd) for p in positions.operators
    ]
    assert rows == [
        ("hanoi-metro", 1_245_710, 124_571, 1_121_139),
        ("iparking-hk", 19_999, 1_999, 18_000),
        ("transerco", 500_000, 25_000, 475_000),
    ]  # fmt: skip
    assert positions.scheme_vnd == 151_570
    assert positions.rider_float_vnd == -1_765_709
    assert positions.parties()[-2:] == [(SCHEME, 151_570), (RIDER_FLOAT, -1_765_709)]
    assert positions.total_vnd == 0


def test_an_operator_whose_reversals_exceed_its_revenue_pays_back_with_its_commission() -> None:
    positions = net_positions([RevenueLine("iparking-hk", -25_000)], RATES)
    (operator,) = positions.operators
    assert (operator.commission_vnd, operator.net_vnd) == (-2_500, -22_500)
    assert positions.parties() == [
        ("iparking-hk", -22_500),
        (SUSPENSE, 0),
        (SCHEME, -2_500),
        (RIDER_FLOAT, 25_000),
    ]


def test_a_cycle_without_revenue_has_only_zero_positions() -> None:
    positions = net_positions([], RATES)
    assert positions.parties() == [(SUSPENSE, 0), (SCHEME, 0), (RIDER_FLOAT, 0)]


def test_revenue_carved_out_to_suspense_is_paid_by_the_float_and_held_apart() -> None:
    positions = net_positions([RevenueLine("hanoi-metro", 10_000)], RATES, suspense_vnd=7_000)
    assert positions.parties()[-3:] == [(SUSPENSE, 7_000), (SCHEME, 1_000), (RIDER_FLOAT, -17_000)]
    assert positions.total_vnd == 0


def test_a_missing_rate_is_refused_never_read_as_zero() -> None:
    with pytest.raises(CommissionRateMissing):
        net_positions([RevenueLine("new-operator", 1_000)], RATES)


@pytest.mark.parametrize("bps", [-1, limits.COMMISSION_BPS_MAX + 1, True, 10.0])
def test_an_impossible_rate_is_refused(bps: int) -> None:
    with pytest.raises(InvalidCommissionRate):
        net_positions([], {"hanoi-metro": bps})


@pytest.mark.parametrize("operator_id", ["", SCHEME, RIDER_FLOAT, "x" * 65, "tab\there"])
def test_an_operator_id_that_could_be_mistaken_is_refused(operator_id: str) -> None:
    with pytest.raises(InvalidOperatorId):
        net_positions([RevenueLine(operator_id, 1)], {**RATES, "ok": 0})


def test_an_amount_beyond_the_bound_is_refused() -> None:
    with pytest.raises(InvalidAmount):
        net_positions([RevenueLine("transerco", limits.AMOUNT_MAX_VND + 1)], RATES)


operators = st.sampled_from(["op-a", "op-b", "op-c", "op-d", "op-e"])
lines = st.lists(
    st.builds(
        RevenueLine,
        operators,
        st.integers(min_value=-2_000_000, max_value=20_000_000),
    ),
    max_size=60,
)
rates = st.fixed_dictionaries(
    {name: st.integers(min_value=0, max_value=limits.BPS_PER_WHOLE) for name in "abcde"}
).map(lambda by_letter: {f"op-{letter}": bps for letter, bps in by_letter.items()})


@EXAMPLES
@given(lines, rates)
def test_positions_sum_to_zero_and_commission_plus_net_is_revenue(
    cycle: list[RevenueLine], commission_bps: dict[str, int]
) -> None:
    positions = net_positions(cycle, commission_bps)
    assert positions.total_vnd == 0
    assert sum(amount for _, amount in positions.parties()) == 0
    for operator in positions.operators:
        assert operator.commission_vnd + operator.net_vnd == operator.revenue_vnd
        assert abs(operator.commission_vnd) <= abs(operator.revenue_vnd)
    # Every dong of revenue is in exactly one operator's position.
    for operator in positions.operators:
        own = [line.amount_vnd for line in cycle if line.operator_id == operator.operator_id]
        assert operator.revenue_vnd == sum(own)
    assert {p.operator_id for p in positions.operators} == {line.operator_id for line in cycle}
    assert positions.revenue_vnd == sum(line.amount_vnd for line in cycle)
    assert positions.scheme_vnd == sum(p.commission_vnd for p in positions.operators)


@EXAMPLES
@given(lines, rates)
def test_positions_do_not_depend_on_the_order_of_lines(
    cycle: list[RevenueLine], commission_bps: dict[str, int]
) -> None:
    assert net_positions(cycle, commission_bps) == net_positions(cycle[::-1], commission_bps)
