"""Multilateral net positions of one clearing cycle: what each party receives or pays.

Sign convention: a position is what the party **receives** from the settlement; a negative
position is what it **pays in**. The parties are

- each operator: its revenue in the cycle (revenue less reversals, apportioned upstream) minus
  the scheme's commission on it;
- the scheme: the commissions;
- suspense: revenue clearing could not attribute in this cycle (a journey not found, an
  operator not configured), carved out and held until a later cycle places it;
- the rider float: the collection account that holds riders' money (account balances, card
  purses and unearned pass value). Revenue leaves it for the operators and for suspense, so
  its position is the negative of both.

The positions therefore sum to exactly 0 VND, by construction and checked. Top-ups and payouts
to riders move money between the float and the world outside the scheme, not between parties,
so they are no part of the positions.

Commission is taken once per operator per cycle, on its total revenue (`money.basis_points`,
rounded toward zero), not line by line: so `commission + net == revenue` holds exactly for each
operator, and a cycle whose reversals exceed its revenue returns commission in proportion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clearing.domain import limits
from clearing.domain.errors import (
    CommissionRateMissing,
    InvalidCommissionRate,
    InvalidOperatorId,
    TooManyParts,
)
from clearing.domain.money import basis_points, check_amount
from ticketing.shared.domain.invariants import require

SCHEME = "scheme"
SUSPENSE = "suspense"
RIDER_FLOAT = "rider_float"


@dataclass(frozen=True, slots=True)
class RevenueLine:
    """Revenue of one operator from one source (a journey's legs on its routes, a parking
    record, a pass's rides); negative for a reversal."""

    operator_id: str
    amount_vnd: int


@dataclass(frozen=True, slots=True)
class OperatorPosition:
    operator_id: str
    revenue_vnd: int
    commission_bps: int
    commission_vnd: int

    @property
    def net_vnd(self) -> int:
        """What the operator receives (negative: pays back)."""
        return self.revenue_vnd - self.commission_vnd


@dataclass(frozen=True, slots=True)
class Positions:
    operators: tuple[OperatorPosition, ...]  # by operator id
    suspense_vnd: int = 0  # revenue carved out to suspense (negative: reversals carved out)

    @property
    def revenue_vnd(self) -> int:
        return sum(position.revenue_vnd for position in self.operators)

    @property
    def scheme_vnd(self) -> int:
        """The scheme's commissions: what it receives."""
        return sum(position.commission_vnd for position in self.operators)

    @property
    def rider_float_vnd(self) -> int:
        """The float's position: it pays out every dong of revenue, attributed or not."""
        return -(self.revenue_vnd + self.suspense_vnd)

    def parties(self) -> list[tuple[str, int]]:
        """Every party and its position: operators by id, then suspense, the scheme and the
        float."""
        rows = [(position.operator_id, position.net_vnd) for position in self.operators]
        return [
            *rows,
            (SUSPENSE, self.suspense_vnd),
            (SCHEME, self.scheme_vnd),
            (RIDER_FLOAT, self.rider_float_vnd),
        ]

    @property
    def total_vnd(self) -> int:
        return sum(amount for _, amount in self.parties())


def net_positions(
    lines: Iterable[RevenueLine], commission_bps: Mapping[str, int], suspense_vnd: int = 0
) -> Positions:
    """The cycle's positions from its revenue lines, each operator's commission rate and the
    revenue carved out to suspense.

    Every operator with a line needs a rate (`CommissionRateMissing` otherwise: a missing rate
    is never read as 0). An operator whose lines sum to 0 still has its row."""
    _check_rates(commission_bps)
    revenue: dict[str, int] = {}
    for count, line in enumerate(lines, start=1):
        if count > limits.REVENUE_LINES_MAX:
            raise TooManyParts("revenue lines", count, limits.REVENUE_LINES_MAX)
        check_operator_id(line.operator_id)
        check_amount(line.amount_vnd, what="a revenue line")
        revenue[line.operator_id] = revenue.get(line.operator_id, 0) + line.amount_vnd
        if len(revenue) > limits.OPERATORS_MAX:
            raise TooManyParts("operators", len(revenue), limits.OPERATORS_MAX)
    operators = []
    for operator_id in sorted(revenue):
        total = revenue[operator_id]
        check_amount(total, what=f"operator {operator_id}'s revenue in a cycle")
        rate = commission_bps.get(operator_id)
        if rate is None:
            raise CommissionRateMissing(operator_id)
        commission = basis_points(total, rate)
        operators.append(OperatorPosition(operator_id, total, rate, commission))
    check_amount(suspense_vnd, what="a cycle's suspense")
    positions = Positions(tuple(operators), suspense_vnd)
    require(positions.total_vnd == 0, "multilateral net positions sum to zero")
    return positions


def _check_rates(commission_bps: Mapping[str, int]) -> None:
    if len(commission_bps) > limits.OPERATORS_MAX:
        raise TooManyParts("commission rates", len(commission_bps), limits.OPERATORS_MAX)
    for operator_id, bps in commission_bps.items():
        check_operator_id(operator_id)
        if type(bps) is not int or not 0 <= bps <= limits.COMMISSION_BPS_MAX:
            raise InvalidCommissionRate(operator_id, bps)


def check_operator_id(operator_id: str) -> None:
    if (
        not isinstance(operator_id, str)
        or not 0 < len(operator_id) <= limits.OPERATOR_ID_MAX_CHARS
        or not operator_id.isprintable()
        or operator_id in (SCHEME, SUSPENSE, RIDER_FLOAT)
    ):
        raise InvalidOperatorId(operator_id)
