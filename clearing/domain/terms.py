"""The terms a cycle settles on: the scheme's settlement account, and for each operator its
commission rate and the account it is paid to. Configuration, not events: a change of terms
applies to the cycles closed after it, and a closed cycle keeps the rates it recorded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from clearing.domain.bank_accounts import Party
from clearing.domain.errors import ClearingError
from clearing.domain.positions import check_operator_id


@dataclass(frozen=True, slots=True)
class OperatorTerms:
    commission_bps: int
    payee: Party


@dataclass(frozen=True, slots=True)
class SettlementTerms:
    scheme: Party  # pays every payout, keeps the commissions
    operators: Mapping[str, OperatorTerms]

    def __post_init__(self) -> None:
        for operator_id in self.operators:
            check_operator_id(operator_id)

    @property
    def commission_bps(self) -> dict[str, int]:
        return {op: terms.commission_bps for op, terms in sorted(self.operators.items())}

    def payee(self, operator_id: str) -> Party:
        terms = self.operators.get(operator_id)
        if terms is None:
            raise PayeeUnknown(operator_id)
        return terms.payee


class PayeeUnknown(ClearingError):
    """An operator is owed a payout but the terms name no account to pay it to."""

    code = "payee_unknown"

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"operator {operator_id!r} has no account to be paid to in the terms")
        self.operator_id = operator_id
