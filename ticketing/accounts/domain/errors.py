"""Operating errors of the ledger. Each `code` is stable and travels to clients unchanged."""

from __future__ import annotations

from uuid import UUID

from ticketing.accounts.domain import limits
from ticketing.shared.domain.errors import Contended, DomainError


class LedgerError(DomainError):
    """An operating error of the ledger: bad input or a state that refuses the request."""

    code = "ledger_error"


class AmountOutOfRange(LedgerError):
    code = "amount_out_of_range"

    def __init__(self, amount_vnd: object, max_vnd: int) -> None:
        super().__init__(f"amount {amount_vnd!r} VND is not an integer in 1..{max_vnd:,}")


class BalanceLimitExceeded(LedgerError):
    code = "balance_limit_exceeded"

    def __init__(self, posted_vnd: int, amount_vnd: int) -> None:
        super().__init__(
            f"a top-up of {amount_vnd:,} VND on a balance of {posted_vnd:,} VND would pass the "
            f"account limit of {limits.BALANCE_MAX_VND:,} VND"
        )


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"

    def __init__(self, available_vnd: int, amount_vnd: int, overdraft_vnd: int) -> None:
        super().__init__(
            f"{amount_vnd:,} VND asked, {available_vnd:,} VND available "
            f"(overdraft {overdraft_vnd:,} VND)"
        )


class UnknownRiderCategory(LedgerError):
    code = "unknown_rider_category"

    def __init__(self, rider_category: object) -> None:
        super().__init__(f"rider category {rider_category!r} is not in 0..6")


class InvalidText(LedgerError):
    code = "invalid_text"

    def __init__(self, field: str, max_chars: int) -> None:
        super().__init__(f"{field} must be printable and at most {max_chars} characters")


class HoldTtlOutOfRange(LedgerError):
    code = "hold_ttl_out_of_range"

    def __init__(self, ttl_s: int) -> None:
        super().__init__(
            f"hold lifetime {ttl_s} s is outside {limits.HOLD_TTL_MIN_S}..{limits.HOLD_TTL_MAX_S} s"
        )


class TooManyPendingHolds(LedgerError):
    code = "too_many_pending_holds"

    def __init__(self, pending: int) -> None:
        super().__init__(f"the account already has {pending} pending holds")


class HoldNotPending(LedgerError):
    code = "hold_not_pending"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"hold {hold_id!r} is not pending on this account")


class PostExceedsHold(LedgerError):
    code = "post_exceeds_hold"

    def __init__(self, hold_id: str, amount_vnd: int, held_vnd: int) -> None:
        super().__init__(
            f"cannot post {amount_vnd:,} VND of hold {hold_id!r}, which holds {held_vnd:,} VND"
        )


class HoldNotYetExpired(LedgerError):
    code = "hold_not_yet_expired"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"hold {hold_id!r} has not reached its expiry")


class AccountClosed(LedgerError):
    code = "account_closed"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} is closed")


class AccountBlocked(LedgerError):
    code = "account_blocked"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} is blocked")


class AccountAlreadyBlocked(LedgerError):
    code = "account_already_blocked"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} is already blocked")


class AccountNotBlocked(LedgerError):
    code = "account_not_blocked"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"account {account_id} is not blocked")


class AccountHasPendingHolds(LedgerError):
    code = "account_has_pending_holds"

    def __init__(self, account_id: UUID, pending: int) -> None:
        super().__init__(f"account {account_id} has {pending} pending holds; settle them first")


class AccountInDebt(LedgerError):
    code = "account_in_debt"

    def __init__(self, account_id: UUID, posted_vnd: int) -> None:
        super().__init__(f"account {account_id} owes {-posted_vnd:,} VND; top it up first")


class AccountNotFound(LedgerError):
    code = "account_not_found"

    def __init__(self, account_id: UUID) -> None:
        super().__init__(f"no account {account_id}")


class InvalidTransferId(LedgerError):
    code = "invalid_transfer_id"

    def __init__(self, transfer_id: str) -> None:
        super().__init__(
            f"transfer id {transfer_id[:80]!r} must be 1..{limits.TRANSFER_ID_MAX_CHARS} "
            "characters of letters, digits and . _ : -"
        )


class TransferConflict(LedgerError):
    """The id names an earlier transfer whose content differs from this request."""

    code = "transfer_conflict"

    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"transfer id {transfer_id!r} was already used for a different request")


class HoldNotFound(LedgerError):
    code = "hold_not_found"

    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id!r} on this account")


class HoldAlreadyResolved(LedgerError):
    """Posting, voiding or expiring a hold that was already posted, voided or expired."""

    code = "hold_already_resolved"

    def __init__(self, hold_id: str, outcome: str) -> None:
        super().__init__(f"hold {hold_id!r} was already {outcome}")
        self.outcome = outcome


class LedgerBusy(LedgerError, Contended):
    """Concurrent writers kept winning the race for one account; the caller may retry. A
    `Contended` that keeps the code clients of the ledger were promised, and a `LedgerError`
    so that a batch answers it in place of the one command it refuses."""

    code = "ledger_busy"
