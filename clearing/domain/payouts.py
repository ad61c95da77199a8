"""A cycle's settlement instructions: one credit transfer from the scheme's settlement account
to each operator the cycle pays, as a batch a bank file (ISO 20022 pain.001) is written from.

Every id is derived from the cycle, never drawn at random or from the clock, so a re-run of a
cycle gives the same ids and a bank's duplicate check catches a file sent twice:

- the message id is `TL-<yyyymmdd>-<cycle seq>`, the cycle's business day and its sequence
  number in six digits (`TL-20261206-000042`); the one payment-information block reuses it;
- a payment's end-to-end id is `TL-<yyyymmdd>-<operator id>` (`TL-20261206-hanoi-metro`): one
  payment per operator per cycle, and the same payment keeps its id in every re-run.

ISO 20022 bounds an id to 35 characters (`Max35Text`), so an operator id longer than 23
characters cannot be named in an end-to-end id: it is refused with `InvalidPaymentId`, as is a
character outside the set every bank accepts in an id (the SWIFT "X" set, no space).

Only operators with a positive position are paid: an operator that owes (a negative position)
is collected from, which a credit transfer cannot do, and one at 0 is owed nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from clearing.domain import limits
from clearing.domain.bank_accounts import Party, check_text
from clearing.domain.errors import InvalidAmount, InvalidPaymentId, InvalidPayout, TooManyParts
from clearing.domain.money import check_amount
from clearing.domain.positions import check_operator_id

ID_PREFIX = "TL"
# The SWIFT "X" character set without the space: what every bank takes in an id.
_ID_CHARS = re.compile(r"[A-Za-z0-9/\-?:().,'+]+")


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One credit transfer to an operator: who, where, how much, under which end-to-end id."""

    operator_id: str
    creditor: Party
    amount_vnd: int
    end_to_end_id: str
    remittance: str

    def __post_init__(self) -> None:
        check_operator_id(self.operator_id)
        check_amount(self.amount_vnd, what="a payment", signed=False)
        if self.amount_vnd == 0:
            raise InvalidAmount(f"a payment to {self.operator_id!r} of 0 VND is no payment")
        check_payment_id(self.end_to_end_id)
        check_text(self.remittance, what="a payment's remittance line")


@dataclass(frozen=True, slots=True)
class PayoutBatch:
    """The payments of one cycle, in one file: all from the debtor, on one execution date."""

    message_id: str
    created_at: datetime
    execution_date: date
    debtor: Party
    instructions: tuple[PaymentInstruction, ...]

    def __post_init__(self) -> None:
        check_payment_id(self.message_id)
        if self.created_at.utcoffset() is None:
            raise InvalidPayout("a batch's creation instant has a time zone")
        if not self.instructions:
            raise InvalidPayout("a batch has at least one payment")
        if len(self.instructions) > limits.PAYOUTS_MAX:
            raise TooManyParts("payments", len(self.instructions), limits.PAYOUTS_MAX)
        ids = [instruction.end_to_end_id for instruction in self.instructions]
        if len(set(ids)) != len(ids):
            raise InvalidPayout("two payments of a batch share an end-to-end id")
        check_amount(self.total_vnd, what="a batch's total", signed=False)

    @property
    def total_vnd(self) -> int:
        """The control sum: every payment's amount added up, exactly."""
        return sum(instruction.amount_vnd for instruction in self.instructions)


def message_id(cycle_date: date, cycle_seq: int) -> str:
    """`TL-<yyyymmdd>-<cycle seq, six digits>`."""
    if type(cycle_seq) is not int or not 0 < cycle_seq <= limits.CYCLE_SEQ_MAX:
        raise InvalidPaymentId(cycle_seq, f"a cycle's sequence is 1..{limits.CYCLE_SEQ_MAX}")
    return f"{ID_PREFIX}-{cycle_date:%Y%m%d}-{cycle_seq:06d}"


def end_to_end_id(cycle_date: date, operator_id: str) -> str:
    """`TL-<yyyymmdd>-<operator id>`, refused if it would not fit in 35 characters."""
    check_operator_id(operator_id)
    payment_id = f"{ID_PREFIX}-{cycle_date:%Y%m%d}-{operator_id}"
    check_payment_id(payment_id)
    return payment_id


def day_of_end_to_end_id(payment_id: str | None) -> date | None:
    """The cycle's day in an end-to-end id this module made (`TL-<yyyymmdd>-<operator>`);
    None for any other id, as a bank statement may carry."""
    prefix = f"{ID_PREFIX}-"
    if payment_id is None or not payment_id.startswith(prefix):
        return None
    digits, dash = (
        payment_id[len(prefix) : len(prefix) + 8],
        payment_id[len(prefix) + 8 : len(prefix) + 9],
    )
    if dash != "-" or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def check_payment_id(payment_id: str) -> None:
    if not isinstance(payment_id, str) or not payment_id:
        raise InvalidPaymentId(payment_id, "an id is a non-empty string")
    if len(payment_id) > limits.PAYMENT_ID_MAX_CHARS:
        raise InvalidPaymentId(
            payment_id, f"{len(payment_id)} characters, at most {limits.PAYMENT_ID_MAX_CHARS}"
        )
    if not _ID_CHARS.fullmatch(payment_id):
        raise InvalidPaymentId(payment_id, "only letters, digits and / - ? : ( ) . , ' +")


def cycle_batch(
    *,
    cycle_date: date,
    cycle_seq: int,
    created_at: datetime,
    execution_date: date,
    debtor: Party,
    payees: Iterable[tuple[str, Party, int]],
) -> PayoutBatch:
    """The batch of a cycle from its payees (operator id, the operator as its bank knows it,
    the amount to pay), with every id derived from the cycle and the payments in operator-id
    order, so the same cycle always gives the same batch."""
    if execution_date < cycle_date:
        raise InvalidPayout(f"a cycle of {cycle_date} is not paid on {execution_date}")
    instructions = tuple(
        PaymentInstruction(
            operator_id=operator_id,
            creditor=creditor,
            amount_vnd=amount_vnd,
            end_to_end_id=end_to_end_id(cycle_date, operator_id),
            remittance=f"TapLedger settlement {cycle_date.isoformat()} {operator_id}",
        )
        for operator_id, creditor, amount_vnd in sorted(payees, key=lambda payee: payee[0])
    )
    return PayoutBatch(
        message_id=message_id(cycle_date, cycle_seq),
        created_at=created_at,
        execution_date=execution_date,
        debtor=debtor,
        instructions=instructions,
    )
