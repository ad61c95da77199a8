"""The documented rules that turn one payment into revenue lines of operators.

- A journey's charge (or its reversal) is split over its legs in proportion to each leg's
  standalone fare: what that leg alone would have cost the rider. The operator of a leg is
  the operator of its route. Legs whose standalone fares are all 0 share equally.
- A pass's price is earned when its validity ends: split over the rides it covered in
  proportion to each ride's standalone fare. A pass that covered no ride that would have cost
  anything (unused value) is split equally among the operators of the networks it covers:
  they sold the access it bought.

Every split is `money.split_signed`, so the lines of a payment add up to it exactly. Parts are
kept in the order given (legs in travel order, rides in the order they were made), which is
the tie-break of the rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearing.domain.errors import InvalidSplit
from clearing.domain.money import split_signed
from clearing.domain.positions import RevenueLine, check_operator_id


@dataclass(frozen=True, slots=True)
class Part:
    """One leg or ride: the operator it earns for, and its standalone fare (its weight)."""

    operator_id: str
    standalone_fare_vnd: int


def apportion(amount_vnd: int, parts: Sequence[Part]) -> list[RevenueLine]:
    """One revenue line per part, adding up to `amount_vnd` (negative for a reversal); in
    proportion to the standalone fares, or equally when they are all 0."""
    if not parts:
        raise InvalidSplit("a payment is apportioned over at least one part")
    for part in parts:
        check_operator_id(part.operator_id)
    weights = [part.standalone_fare_vnd for part in parts]
    if all(weight == 0 for weight in weights):
        weights = [1] * len(parts)
    shares = split_signed(amount_vnd, weights)
    return [RevenueLine(part.operator_id, share) for part, share in zip(parts, shares, strict=True)]


def apportion_journey(amount_vnd: int, legs: Sequence[Part]) -> list[RevenueLine]:
    """A journey's charge (or its reversal, negative) over its legs."""
    return apportion(amount_vnd, legs)


def apportion_pass(
    price_vnd: int, rides: Sequence[Part], network_operators: Sequence[str]
) -> list[RevenueLine]:
    """A pass's price over the rides it covered; its unused value (no ride with a standalone
    fare) equally over the distinct operators of the networks it covers, by operator id."""
    if any(ride.standalone_fare_vnd > 0 for ride in rides):
        return apportion(price_vnd, rides)
    operators = sorted(set(network_operators))
    if not operators:
        raise InvalidSplit("a pass that covered no paid ride needs its networks' operators")
    return apportion(price_vnd, [Part(operator_id, 1) for operator_id in operators])
