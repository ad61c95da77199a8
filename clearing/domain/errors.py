"""Operating errors of the clearing domain. Each `code` is stable and travels to clients
unchanged; bugs are `require(...)` failures, never one of these."""

from __future__ import annotations

from ticketing.shared.domain.errors import DomainError


class ClearingError(DomainError):
    code = "clearing_error"


class InvalidSplit(ClearingError):
    """A split that cannot be made exactly: a negative or oversized whole, no parts, a
    negative weight, or weights that are all 0."""

    code = "invalid_split"


class InvalidAmount(ClearingError):
    """An amount that is not an int of VND within the named bounds."""

    code = "invalid_amount"


class UnclassifiedMovement(ClearingError):
    """A ledger movement the money map has no place for: an id prefix no writer in the code
    uses, or a reference shaped like an internal one that does not parse. Never guessed to
    be revenue or a top-up: a new writer must be given a classification first."""

    code = "unclassified_movement"

    def __init__(self, kind: str, reference: str, reason: str) -> None:
        super().__init__(f"{kind} {reference!r}: {reason}")
        self.kind = kind
        self.reference = reference
        self.reason = reason


class CommissionRateMissing(ClearingError):
    """An operator earned revenue in a cycle but has no commission rate configured."""

    code = "commission_rate_missing"

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"operator {operator_id!r} has no commission rate")
        self.operator_id = operator_id


class InvalidCommissionRate(ClearingError):
    code = "commission_rate_invalid"

    def __init__(self, operator_id: str, bps: object) -> None:
        super().__init__(f"operator {operator_id!r}: commission {bps!r} bps is not 0..10000")
        self.operator_id = operator_id


class InvalidOperatorId(ClearingError):
    code = "operator_id_invalid"

    def __init__(self, operator_id: object) -> None:
        super().__init__(f"operator id {operator_id!r} is empty, too long or not printable")


class TooManyParts(ClearingError):
    """More operators, lines or parts than the named bounds allow."""

    code = "clearing_too_many_parts"

    def __init__(self, what: str, count: int, most: int) -> None:
        super().__init__(f"{count} {what}, at most {most}")


class InvalidPaymentId(ClearingError):
    """A message or end-to-end id a bank would refuse: empty, longer than ISO 20022's 35
    characters, or with a character outside the set every bank accepts in an id. Raised before
    any file is written, so a bad id never reaches a bank as invalid XML."""

    code = "payment_id_invalid"

    def __init__(self, payment_id: object, reason: str) -> None:
        super().__init__(f"payment id {str(payment_id)[:80]!r}: {reason}")
        self.payment_id = payment_id
        self.reason = reason


class InvalidBankDetails(ClearingError):
    """An IBAN, a local account number or a BIC that is not well formed."""

    code = "bank_details_invalid"

    def __init__(self, what: str, value: object, reason: str) -> None:
        super().__init__(f"{what} {str(value)[:80]!r}: {reason}")
        self.what = what
        self.reason = reason


class InvalidPayout(ClearingError):
    """A payment instruction or a batch of them that cannot be sent: a name that is empty or
    too long, two payments with one end-to-end id, no payment at all, a creation instant with
    no time zone, an execution date before the cycle's day."""

    code = "payout_invalid"


class CutOffBeyondHead(ClearingError):
    """A cut-off above the last notification the store has committed. Events committed later
    could take ids below it and be missed by this cycle and the next; a cut-off is always a
    notification id the store already holds."""

    code = "cut_off_beyond_head"

    def __init__(self, cut_off: int, head: int) -> None:
        super().__init__(f"cut-off {cut_off} is beyond the log's head {head}")
        self.cut_off = cut_off
        self.head = head
