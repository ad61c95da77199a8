"""Exact integer arithmetic on VND: splitting a whole by weights and taking basis points.

VND has no minor unit, so every share is a whole dong and every split must add back up to its
whole exactly. Nothing here uses a float.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearing.domain import limits
from clearing.domain.errors import InvalidAmount, InvalidSplit, TooManyParts


def largest_remainder(total_vnd: int, weights: Sequence[int]) -> list[int]:
    """Splits `total_vnd` into one share per weight, in proportion, adding up to it exactly.

    The largest-remainder (Hamilton) method: each part first gets the floor of its exact
    quota `total * w / sum(w)`; the dong still left (fewer than the number of parts) go one
    each to the parts with the largest remainders. Ties are broken by position: the earlier
    part wins, so callers give parts in a stable order (legs in travel order, operators by
    id) and the same input always gives the same shares. Every share differs from its exact
    quota by less than one dong, and a part of weight 0 gets 0.
    """
    check_amount(total_vnd, what="the whole of a split")
    if total_vnd < 0:
        raise InvalidSplit(f"the whole of a split is never negative: {total_vnd}")
    if not weights:
        raise InvalidSplit("a split has at least one part")
    if len(weights) > limits.SPLIT_PARTS_MAX:
        raise TooManyParts("parts of a split", len(weights), limits.SPLIT_PARTS_MAX)
    for weight in weights:
        if type(weight) is not int or not 0 <= weight <= limits.WEIGHT_MAX:
            raise InvalidSplit(f"a weight is an int in 0..{limits.WEIGHT_MAX}: {weight!r}")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise InvalidSplit("the weights of a split are all 0")
    shares: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        share, remainder = divmod(total_vnd * weight, weight_sum)
        shares.append(share)
        remainders.append(remainder)
    left_vnd = total_vnd - sum(shares)
    # Largest remainder first; among equal remainders, the earlier part.
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:left_vnd]:
        shares[index] += 1
    return shares


def split_signed(amount_vnd: int, weights: Sequence[int]) -> list[int]:
    """`largest_remainder` for an amount of either sign: a negative amount (a reversal) is
    split as its magnitude and negated, so reversing a line reverses each share exactly."""
    shares = largest_remainder(abs(amount_vnd), weights)
    return shares if amount_vnd >= 0 else [-share for share in shares]


def basis_points(amount_vnd: int, bps: int) -> int:
    """`bps` basis points of `amount_vnd`, rounded toward zero.

    For a positive amount that is the floor (a commission never takes a part of a dong from
    the operator); for a negative amount (a reversal) it is the exact mirror, so
    `basis_points(-a, r) == -basis_points(a, r)` and a reversed line returns exactly the
    commission its line took.
    """
    check_amount(amount_vnd, what="an amount taken basis points of", signed=True)
    if type(bps) is not int or not 0 <= bps <= limits.BPS_PER_WHOLE:
        raise InvalidAmount(f"basis points are an int in 0..{limits.BPS_PER_WHOLE}: {bps!r}")
    magnitude = abs(amount_vnd) * bps // limits.BPS_PER_WHOLE
    return magnitude if amount_vnd >= 0 else -magnitude


def check_amount(amount_vnd: int, *, what: str, signed: bool = True) -> None:
    """An int of VND within `AMOUNT_MAX_VND` either way (or from 0 when not `signed`)."""
    # bool is an int in Python; an amount of True is a bug at the edge, not one dong.
    low = -limits.AMOUNT_MAX_VND if signed else 0
    if type(amount_vnd) is not int or not low <= amount_vnd <= limits.AMOUNT_MAX_VND:
        raise InvalidAmount(f"{what} is an int of VND in {low}..{limits.AMOUNT_MAX_VND}")
