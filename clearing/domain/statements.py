"""A bank's end-of-day statement of the payouts account, and how it confirms the payouts.

A cycle sends one transfer per operator (pain.001), each with an end-to-end id derived from the
cycle. The bank's statement (camt.053, or its CSV fallback) books each transfer as a debit
entry carrying that id. `match_payouts` compares the two: a payout is confirmed only by a
booked debit of the same id and the same amount; everything else is reported, never guessed.

Pure: the adapters (`clearing/adapters/camt053.py`, `statement_csv.py`) read files into these
types; nothing here reads bytes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clearing.domain import limits
from clearing.domain.errors import ClearingError


class Direction(StrEnum):
    """The ISO 20022 credit/debit indicator, as the account holder sees it: a payout leaves
    the payouts account, so the bank books it as a debit."""

    CREDIT = "CRDT"
    DEBIT = "DBIT"


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One booked movement on the account: always a positive amount and a direction.

    `end_to_end_id` is the id the payer gave the transfer (`NtryDtls/TxDtls/Refs/EndToEndId`),
    None when the bank did not report one (ISO's `NOTPROVIDED` is read as None);
    `bank_reference` is the bank's own (`AcctSvcrRef`)."""

    booking_date: date
    amount_vnd: int
    direction: Direction
    end_to_end_id: str | None
    bank_reference: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None

    def __post_init__(self) -> None:
        if type(self.amount_vnd) is not int or not 0 < self.amount_vnd <= limits.AMOUNT_MAX_VND:
            raise InvalidStatement(
                f"an entry's amount is an int of VND in 1..{limits.AMOUNT_MAX_VND}: "
                f"{self.amount_vnd!r}"
            )
        _check_text(self.end_to_end_id, "end-to-end id", limits.END_TO_END_ID_MAX_CHARS)
        _check_text(self.bank_reference, "bank reference", limits.BANK_REFERENCE_MAX_CHARS)
        _check_text(self.counterparty_name, "counterparty", limits.COUNTERPARTY_NAME_MAX_CHARS)
        _check_text(self.counterparty_account, "counterparty account", limits.ACCOUNT_ID_MAX_CHARS)

    @property
    def signed_vnd(self) -> int:
        """The entry's effect on the balance: a credit adds, a debit takes away."""
        return self.amount_vnd if self.direction is Direction.CREDIT else -self.amount_vnd


@dataclass(frozen=True, slots=True)
class BankStatement:
    """One account's statement for one day: booked entries only (a pending entry confirms
    nothing). Balances are signed (a debit balance is negative) and None when the source does
    not state them (the CSV fallback); when both are stated, the entries must take the opening
    balance to the closing one exactly, or the statement is refused as incomplete."""

    account_id: str
    statement_date: date
    opening_balance_vnd: int | None
    closing_balance_vnd: int | None
    entries: tuple[StatementEntry, ...]

    def __post_init__(self) -> None:
        _check_text(self.account_id, "account id", limits.ACCOUNT_ID_MAX_CHARS)
        if len(self.entries) > limits.STATEMENT_ENTRIES_MAX:
            raise StatementTooLarge(
                f"{len(self.entries)} entries, at most {limits.STATEMENT_ENTRIES_MAX}"
            )
        for balance in (self.opening_balance_vnd, self.closing_balance_vnd):
            if balance is not None and (
                type(balance) is not int or abs(balance) > limits.AMOUNT_MAX_VND
            ):
                raise InvalidStatement(
                    f"a balance is an int of VND within ±{limits.AMOUNT_MAX_VND}"
                )
        if self.opening_balance_vnd is not None and self.closing_balance_vnd is not None:
            moved_vnd = sum(entry.signed_vnd for entry in self.entries)
            if self.opening_balance_vnd + moved_vnd != self.closing_balance_vnd:
                raise StatementUnbalanced(
                    self.opening_balance_vnd, moved_vnd, self.closing_balance_vnd
                )


@dataclass(frozen=True, slots=True)
class ExpectedPayout:
    """A transfer the cycle instructed: to `operator_id`, `amount_vnd`, under `end_to_end_id`.

    A stand-in for the payout type of the outgoing file's module, carrying only what matching
    needs."""

    end_to_end_id: str
    operator_id: str
    amount_vnd: int

    def __post_init__(self) -> None:
        _check_text(self.end_to_end_id, "end-to-end id", limits.END_TO_END_ID_MAX_CHARS)
        if type(self.amount_vnd) is not int or not 0 < self.amount_vnd <= limits.AMOUNT_MAX_VND:
            raise InvalidStatement(f"a payout is an int of VND in 1..{limits.AMOUNT_MAX_VND}")


@dataclass(frozen=True, slots=True)
class PayoutDifference:
    """A payout whose id the bank booked, but not as instructed: `reason` says how."""

    payout: ExpectedPayout
    entry: StatementEntry
    reason: str


@dataclass(frozen=True, slots=True)
class PayoutReport:
    """What a statement says of a cycle's payouts. Every payout is in exactly one of
    `confirmed`, `missing` and `different`; every entry is matched to at most one payout, and
    the entries matched to none are `unexpected` (a second booking of a confirmed id among
    them: money may have left twice)."""

    confirmed: tuple[tuple[ExpectedPayout, StatementEntry], ...]
    missing: tuple[ExpectedPayout, ...]
    different: tuple[PayoutDifference, ...]
    unexpected: tuple[StatementEntry, ...]

    @property
    def all_confirmed(self) -> bool:
        """True when the cycle may be marked settled: no payout is missing or different."""
        return not self.missing and not self.different


def match_payouts(payouts: Iterable[ExpectedPayout], statement: BankStatement) -> PayoutReport:
    """Matches the payouts a cycle instructed against a statement's booked entries.

    A payout is confirmed by a debit of its end-to-end id and its exact amount. A payout
    whose id is booked only with another amount is different, and so is one with any credit
    under its id (the transfer came back), reported with that entry. A payout whose id is not
    on the statement is missing. Payouts keep their given order in the report; entries keep
    the statement's.
    """
    wanted = list(payouts)
    if len(wanted) > limits.PAYOUTS_MAX:
        raise StatementTooLarge(f"{len(wanted)} payouts, at most {limits.PAYOUTS_MAX}")
    seen: set[str] = set()
    for payout in wanted:
        if payout.end_to_end_id in seen:
            raise DuplicatePayout(payout.end_to_end_id)
        seen.add(payout.end_to_end_id)
    entries_by_id: Mapping[str, list[int]] = _entries_by_id(statement.entries)
    used: set[int] = set()
    confirmed: list[tuple[ExpectedPayout, StatementEntry]] = []
    missing: list[ExpectedPayout] = []
    different: list[PayoutDifference] = []
    for payout in wanted:
        candidates = entries_by_id.get(payout.end_to_end_id, [])
        outcome, taken = _outcome(payout, candidates, statement.entries)
        used.update(taken)
        if isinstance(outcome, PayoutDifference):
            different.append(outcome)
        elif outcome is None:
            missing.append(payout)
        else:
            confirmed.append((payout, outcome))
    unexpected = tuple(entry for index, entry in enumerate(statement.entries) if index not in used)
    return PayoutReport(tuple(confirmed), tuple(missing), tuple(different), unexpected)


def _entries_by_id(entries: tuple[StatementEntry, ...]) -> dict[str, list[int]]:
    found: defaultdict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(entries):
        if entry.end_to_end_id is not None:
            found[entry.end_to_end_id].append(index)
    return found


def _outcome(
    payout: ExpectedPayout, candidates: list[int], entries: tuple[StatementEntry, ...]
) -> tuple[StatementEntry | PayoutDifference | None, list[int]]:
    """The entry confirming `payout`, or how it differs, or None when it is missing; and the
    indexes of the entries this takes."""
    debits = [index for index in candidates if entries[index].direction is Direction.DEBIT]
    credits = [index for index in candidates if entries[index].direction is Direction.CREDIT]
    exact = [index for index in debits if entries[index].amount_vnd == payout.amount_vnd]
    if credits:
        # Money came back under the payout's id (a return, or a reversal of the booking): the
        # operator was not paid, whatever debit came before it.
        returned = entries[credits[0]]
        reason = f"returned: a credit of {returned.amount_vnd} VND under its id"
        return PayoutDifference(payout, returned, reason), exact[:1] + credits[:1]
    if exact:
        return entries[exact[0]], exact[:1]
    if debits:
        booked = entries[debits[0]]
        reason = f"booked {booked.amount_vnd} VND, instructed {payout.amount_vnd} VND"
        return PayoutDifference(payout, booked, reason), debits[:1]
    return None, []


# ISO 20022 amounts: at most 18 digits in all, at most 5 after the point.
_AMOUNT = re.compile(r"(?P<whole>[0-9]{1,18})(?:\.(?P<fraction>[0-9]{1,5}))?")


def parse_vnd(text: str) -> int:
    """Reads an amount of VND as a bank writes it: `125000` or `125000.00`.

    VND has no minor unit, so a fraction of zeros is accepted and anything else after the
    point is refused as a fractional dong rather than rounded. No sign, no exponent, no
    thousands separator: the direction travels separately."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidStatement(f"an amount is digits with an optional fraction: {text[:40]!r}")
    fraction = match.group("fraction")
    if fraction is not None and fraction.strip("0"):
        raise FractionalDong(text)
    amount_vnd = int(match.group("whole"))
    if amount_vnd > limits.AMOUNT_MAX_VND:
        raise InvalidStatement(f"an amount above {limits.AMOUNT_MAX_VND} VND: {text!r}")
    return amount_vnd


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(text: str) -> date:
    """Reads a date written `YYYY-MM-DD`, and nothing else `date.fromisoformat` would take
    (week dates, the basic format)."""
    if _DATE.fullmatch(text) is None:
        raise InvalidStatement(f"a date is YYYY-MM-DD: {text[:20]!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidStatement(f"no such date: {text!r}") from None


def _check_text(value: str | None, what: str, most: int) -> None:
    if value is None:
        return
    # Empty text is None (not reported), so a blank id can never match a blank id.
    if type(value) is not str or not 0 < len(value) <= most or not value.isprintable():
        raise InvalidStatement(f"the {what} is printable text of 1..{most} characters")


class InvalidStatement(ClearingError):
    """A statement, or a line of one, that cannot be read as the bank's record of the
    account: malformed, out of bounds, or not what the format says. `line` is the 1-based
    line of the file where it is known."""

    code = "statement_invalid"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line

    def at_line(self, line: int | None) -> InvalidStatement:
        """The same error, placed at `line` of the file unless it already names one."""
        if line is not None and self.line is None:
            self.line = line
            self.args = (f"line {line}: {self.args[0]}",)
        return self


class FractionalDong(InvalidStatement):
    """An amount with a non-zero fraction: VND has no minor unit."""

    code = "statement_fractional_dong"

    def __init__(self, text: str, *, line: int | None = None) -> None:
        super().__init__(f"VND has no minor unit: {text!r}", line=line)


class ForeignCurrency(InvalidStatement):
    """An amount or account in a currency other than VND: the payouts account is in VND."""

    code = "statement_currency_not_vnd"


class StatementTooLarge(InvalidStatement):
    """A file, or a list in one, beyond the named bounds of `limits`."""

    code = "statement_too_large"


class StatementUnbalanced(InvalidStatement):
    """Opening balance plus the booked entries is not the closing balance: entries are missing
    from the file, or it was cut."""

    code = "statement_unbalanced"

    def __init__(self, opening_vnd: int, moved_vnd: int, closing_vnd: int) -> None:
        super().__init__(
            f"opening {opening_vnd} VND and entries {moved_vnd:+} VND do not make the closing "
            f"{closing_vnd} VND"
        )


class DuplicatePayout(ClearingError):
    """Two payouts under one end-to-end id: the cycle's ids are unique, so this is refused."""

    code = "payout_duplicate_end_to_end_id"

    def __init__(self, end_to_end_id: str) -> None:
        super().__init__(f"two payouts under end-to-end id {end_to_end_id!r}")
