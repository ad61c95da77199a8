"""Exact splits and basis points of VND: golden examples, the refusals, and properties over
generated wholes and weights (every split sums to its whole, every share within a dong of its
exact quota, basis points mirror for reversals)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.domain import limits
from clearing.domain.errors import InvalidAmount, InvalidSplit, TooManyParts
from clearing.domain.money import basis_points, largest_remainder, split_signed

EXAMPLES = settings(max_examples=300, deadline=None)

wholes = st.integers(min_value=0, max_value=limits.AMOUNT_MAX_VND)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40).filter(
    lambda weights: sum(weights) > 0
)


@pytest.mark.parametrize(
    ("total_vnd", "weights", "shares"),
    [
        # A journey of a bus leg (8,000 alone) and a metro leg (13,000 alone) charged 18,000.
        (18_000, [8_000, 13_000], [6_857, 11_143]),
        # Three equal parts: the one dong left goes to the first (earlier part wins a tie).
        (100, [1, 1, 1], [34, 33, 33]),
        (101, [1, 1, 1], [34, 34, 33]),
        (7, [1, 1], [4, 3]),
        # Exact quotas need no rounding.
        (10, [1, 2, 3, 4], [1, 2, 3, 4]),
        # A part of weight 0 gets nothing; a whole of 0 gives nothing.
        (5, [0, 1], [0, 5]),
        (0, [3, 7], [0, 0]),
        # The largest remainder wins over position: quotas 1.2, 1.8 -> 1, 2.
        (3, [2, 3], [1, 2]),
        (1, [1], [1]),
    ],
)
def test_largest_remainder_golden(total_vnd: int, weights: list[int], shares: list[int]) -> None:
    assert largest_remainder(total_vnd, weights) == shares


@pytest.mark.parametrize(
    ("total_vnd", "weights", "error"),
    [
        (-1, [1], InvalidSplit),
        (10, [], InvalidSplit),
        (10, [1, -1], InvalidSplit),
        (10, [0, 0], InvalidSplit),
        (10, [True, 1], InvalidSplit),
        (10, [limits.WEIGHT_MAX + 1], InvalidSplit),
        (limits.AMOUNT_MAX_VND + 1, [1], InvalidAmount),
        (True, [1], InvalidAmount),
        (10, [1] * (limits.SPLIT_PARTS_MAX + 1), TooManyParts),
    ],
)
def test_largest_remainder_refuses_what_it_cannot_split_exactly(
    total_vnd: int, weights: list[int], error: type[Exception]
) -> None:
    with pytest.raises(error):
        largest_remainder(total_vnd, weights)


def test_largest_remainder_refuses_a_float_whole() -> None:
    with pytest.raises(InvalidAmount):
        largest_remainder(10.0, [1])  # type: ignore[arg-type]


@EXAMPLES
@given(wholes, weight_lists)
def test_a_split_sums_to_its_whole_and_each_share_is_within_a_dong(
    total_vnd: int, weights: list[int]
) -> None:
    shares = largest_remainder(total_vnd, weights)
    assert sum(shares) == total_vnd
    assert len(shares) == len(weights)
    weight_sum = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert type(share) is int
        assert abs(share - Fraction(total_vnd * weight, weight_sum)) < 1
        if weight == 0:
            assert share == 0


@EXAMPLES
@given(wholes, weight_lists)
def test_a_split_is_deterministic_and_never_negative(total_vnd: int, weights: list[int]) -> None:
    shares = largest_remainder(total_vnd, weights)
    assert shares == largest_remainder(total_vnd, list(weights))
    assert all(share >= 0 for share in shares)


@EXAMPLES
@given(wholes, weight_lists)
def test_a_reversal_splits_as_the_exact_mirror_of_its_line(
    total_vnd: int, weights: list[int]
) -> None:
    assert split_signed(-total_vnd, weights) == [-s for s in split_signed(total_vnd, weights)]


@pytest.mark.parametrize(
    ("amount_vnd", "bps", "result"),
    [
        (123_457, 1_000, 12_345),  # 10 % of 123,457 is 12,345.7: rounded down
        (-123_457, 1_000, -12_345),  # the reversal returns exactly what the line took
        (99_999, 0, 0),
        (99_999, 10_000, 99_999),
        (1, 9_999, 0),
        (10_000, 1, 1),
        (0, 1_000, 0),
    ],
)
def test_basis_points_golden(amount_vnd: int, bps: int, result: int) -> None:
    assert basis_points(amount_vnd, bps) == result


@pytest.mark.parametrize("bps", [-1, 10_001, True, 10.0])
def test_basis_points_refuses_a_rate_outside_the_whole(bps: int) -> None:
    with pytest.raises(InvalidAmount):
        basis_points(1_000, bps)


def test_basis_points_refuses_an_amount_beyond_the_bound() -> None:
    with pytest.raises(InvalidAmount):
        basis_points(limits.AMOUNT_MAX_VND + 1, 1_000)


@EXAMPLES
@given(
    st.integers(min_value=-limits.AMOUNT_MAX_VND, max_value=limits.AMOUNT_MAX_VND),
    st.integers(min_value=0, max_value=limits.BPS_PER_WHOLE),
)
def test_basis_points_round_toward_zero_and_mirror(amount_vnd: int, bps: int) -> None:
    taken = basis_points(amount_vnd, bps)
    exact = Fraction(amount_vnd * bps, limits.BPS_PER_WHOLE)
    assert abs(taken) <= abs(exact) < abs(taken) + 1
    assert basis_points(-amount_vnd, bps) == -taken
    assert abs(taken) <= abs(amount_vnd)
