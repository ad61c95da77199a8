"""Operator reconciliation: an operator's own transaction file against our clearing lines for it.

An operator (a bus company, the metro, a parking operator) keeps its own record of the rides and
stays it was paid for. For one clearing cycle (a business day) it uploads that record; we compare
it with the lines our clearing run attributed to it, per **transaction id**: the id both sides
know, a journey's id for transit, a parking session's or detail record's id for parking, each the
aggregate's uuid as 32 lowercase hex digits (any 1..`TRANSACTION_ID_MAX_CHARS` lowercase hex
digits are accepted, so an id of another length is compared rather than refused).

**Matching is per transaction id, on the sum of its amounts, never line by line.** Either side
may hold several lines for one id: our clearing run gives a journey charged and refunded in the
same cycle as two lines (+18,000 and -18,000), a parking session's start hold and its rest as
two; the operator's file may split or repeat them differently. Only the net amount of an id is
comparable, so the lines of each side are summed per id first, and then each id is:

| outcome | when |
|---|---|
| `matched` | both sides have the id, with equal sums |
| `amount_mismatch` | both have it, with different sums (the report shows both and the difference) |
| `missing_in_ours` | only the operator has it |
| `missing_in_theirs` | only we have it |

An id whose lines sum to 0 on both sides is `matched`, and one present on one side only is
missing even when its sum there is 0: a line is evidence that the transaction exists.

Every difference is ours minus theirs: positive when we attributed more to the operator than its
file says. The report's rows are in transaction id order and its totals add up exactly (checked
with `require`), so the same lines give the same report whatever order they come in.

Pure: `clearing/adapters/reconciliation_csv.py` reads the operator's CSV and writes the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from clearing.domain import limits
from clearing.domain.errors import ClearingError
from ticketing.shared.domain.invariants import require

_TRANSACTION_ID = re.compile(rf"[0-9a-f]{{1,{limits.TRANSACTION_ID_MAX_CHARS}}}")


class Outcome(StrEnum):
    """What one transaction id's comparison found; the values are the report's words."""

    MATCHED = "matched"
    MISSING_IN_OURS = "missing_in_ours"
    MISSING_IN_THEIRS = "missing_in_theirs"
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True, slots=True)
class OurLine:
    """One of our clearing lines for the operator: a transaction id and a signed amount
    (negative for a reversal, such as a refund)."""

    transaction_id: str
    amount_vnd: int

    def __post_init__(self) -> None:
        check_transaction_id(self.transaction_id)
        check_line_amount(self.amount_vnd)


@dataclass(frozen=True, slots=True)
class TheirLine:
    """One line of the operator's file: its 1-based line number in the file (the header is
    line 1), a transaction id and a signed amount. The line number is only for the report, so
    the operator can find the line; it plays no part in matching."""

    line_no: int
    transaction_id: str
    amount_vnd: int

    def __post_init__(self) -> None:
        if type(self.line_no) is not int or self.line_no < 1:
            raise InvalidReconciliationLine(f"a line number is an int from 1: {self.line_no!r}")
        check_transaction_id(self.transaction_id)
        check_line_amount(self.amount_vnd)


@dataclass(frozen=True, slots=True)
class ReconciliationRow:
    """One transaction id's outcome. `our_vnd` and `their_vnd` are the sums of each side's
    lines, None when that side has no line for the id; `their_first_line` is the first line of
    the operator's file that names it."""

    transaction_id: str
    outcome: Outcome
    our_vnd: int | None
    their_vnd: int | None
    our_lines: int
    their_lines: int
    their_first_line: int | None

    @property
    def difference_vnd(self) -> int:
        """Ours minus theirs, a missing side counting 0: 0 exactly when matched."""
        return (self.our_vnd or 0) - (self.their_vnd or 0)


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a set of rows: how many transaction ids, each side's VND and lines."""

    transactions: int
    our_vnd: int
    their_vnd: int
    our_lines: int
    their_lines: int

    @property
    def difference_vnd(self) -> int:
        return self.our_vnd - self.their_vnd


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    """The rows in transaction id order, the totals of each outcome (every outcome, in
    `Outcome` order, zero when it has no row) and the overall totals."""

    rows: tuple[ReconciliationRow, ...]
    by_outcome: tuple[tuple[Outcome, Totals], ...]
    overall: Totals

    def totals(self, outcome: Outcome) -> Totals:
        return dict(self.by_outcome)[outcome]

    def rows_of(self, outcome: Outcome) -> tuple[ReconciliationRow, ...]:
        return tuple(row for row in self.rows if row.outcome is outcome)

    @property
    def our_total_vnd(self) -> int:
        return self.overall.our_vnd

    @property
    def their_total_vnd(self) -> int:
        return self.overall.their_vnd

    @property
    def difference_vnd(self) -> int:
        """Our total minus theirs: the sum of every row's difference."""
        return self.overall.difference_vnd

    @property
    def all_matched(self) -> bool:
        """True when the operator's file agrees with us on every transaction."""
        return self.overall.transactions == self.totals(Outcome.MATCHED).transactions


@dataclass(slots=True)
class _Side:
    """One side's lines of one transaction id, as they are summed."""

    amount_vnd: int = 0
    lines: int = 0
    first_line: int | None = None


def reconcile(ours: Iterable[OurLine], theirs: Iterable[TheirLine]) -> ReconciliationReport:
    """Compares our clearing lines for one operator and cycle with the operator's own lines.

    Each side's lines are summed per transaction id (several lines of one id are normal: a
    charge and its refund, a parking start and its rest), and each id is then `matched` (equal
    sums), `amount_mismatch` (different sums), `missing_in_ours` or `missing_in_theirs`. Rows
    are in transaction id order; the totals add up exactly.

    Raises `ReconciliationTooLarge` when either side has more than
    `limits.RECONCILIATION_LINES_MAX` lines; no more than one line beyond it is read.
    """
    our_sides, our_total_vnd, our_count = _summed(ours, "of our lines")
    their_sides, their_total_vnd, their_count = _summed(theirs, "of the operator's lines")
    rows = tuple(
        _row(transaction_id, our_sides.get(transaction_id), their_sides.get(transaction_id))
        for transaction_id in sorted(our_sides.keys() | their_sides.keys())
    )
    by_outcome = tuple(
        (outcome, _totals(row for row in rows if row.outcome is outcome)) for outcome in Outcome
    )
    report = ReconciliationReport(rows, by_outcome, _totals(rows))
    _check_adds_up(
        report, Totals(len(rows), our_total_vnd, their_total_vnd, our_count, their_count)
    )
    return report


def _summed(
    lines: Iterable[OurLine] | Iterable[TheirLine], what: str
) -> tuple[dict[str, _Side], int, int]:
    """One side's lines summed per transaction id, their total and their count; the first line
    beyond the bound is refused before it is kept."""
    sides: dict[str, _Side] = {}
    total_vnd = 0
    count = 0
    for line in lines:
        count += 1
        if count > limits.RECONCILIATION_LINES_MAX:
            raise ReconciliationTooLarge(f"more than {limits.RECONCILIATION_LINES_MAX} {what}")
        line_no = line.line_no if isinstance(line, TheirLine) else None
        _add(sides, line.transaction_id, line.amount_vnd, line_no)
        total_vnd += line.amount_vnd
    return sides, total_vnd, count


def _add(
    sides: dict[str, _Side], transaction_id: str, amount_vnd: int, line_no: int | None
) -> None:
    side = sides.setdefault(transaction_id, _Side())
    side.amount_vnd += amount_vnd
    side.lines += 1
    if line_no is not None and (side.first_line is None or line_no < side.first_line):
        side.first_line = line_no


def _row(transaction_id: str, ours: _Side | None, theirs: _Side | None) -> ReconciliationRow:
    require(ours is not None or theirs is not None, "a row's id comes from one of the sides")
    if ours is None:
        outcome = Outcome.MISSING_IN_OURS
    elif theirs is None:
        outcome = Outcome.MISSING_IN_THEIRS
    elif ours.amount_vnd == theirs.amount_vnd:
        outcome = Outcome.MATCHED
    else:
        outcome = Outcome.AMOUNT_MISMATCH
    return ReconciliationRow(
        transaction_id=transaction_id,
        outcome=outcome,
        our_vnd=None if ours is None else ours.amount_vnd,
        their_vnd=None if theirs is None else theirs.amount_vnd,
        our_lines=0 if ours is None else ours.lines,
        their_lines=0 if theirs is None else theirs.lines,
        their_first_line=None if theirs is None else theirs.first_line,
    )


def _totals(rows: Iterable[ReconciliationRow]) -> Totals:
    transactions = our_vnd = their_vnd = our_lines = their_lines = 0
    for row in rows:
        transactions += 1
        our_vnd += row.our_vnd or 0
        their_vnd += row.their_vnd or 0
        our_lines += row.our_lines
        their_lines += row.their_lines
    return Totals(transactions, our_vnd, their_vnd, our_lines, their_lines)


def _check_adds_up(report: ReconciliationReport, read: Totals) -> None:
    """The report accounts for every line read and every dong, once: the overall totals are
    what was read, the outcomes' totals add up to them, and each outcome's sums say what it
    means (a matched side equals the other, a missing side is empty)."""
    overall = report.overall
    require(overall == read, f"the report's totals {overall} are not the lines read {read}")
    parts = [totals for _, totals in report.by_outcome]
    require(
        _totals_sum(parts) == overall, "the outcomes' totals do not add up to the overall totals"
    )
    require(
        sum(row.difference_vnd for row in report.rows) == overall.difference_vnd,
        "the rows' differences do not add up to our total minus theirs",
    )
    matched = report.totals(Outcome.MATCHED)
    require(matched.our_vnd == matched.their_vnd, "matched rows differ")
    missing_ours = report.totals(Outcome.MISSING_IN_OURS)
    require(missing_ours.our_vnd == missing_ours.our_lines == 0, "a row missing in ours has ours")
    missing_theirs = report.totals(Outcome.MISSING_IN_THEIRS)
    require(
        missing_theirs.their_vnd == missing_theirs.their_lines == 0,
        "a row missing in theirs has theirs",
    )


def _totals_sum(parts: Iterable[Totals]) -> Totals:
    listed = list(parts)
    return Totals(
        sum(part.transactions for part in listed),
        sum(part.our_vnd for part in listed),
        sum(part.their_vnd for part in listed),
        sum(part.our_lines for part in listed),
        sum(part.their_lines for part in listed),
    )


def check_transaction_id(transaction_id: object) -> None:
    """A transaction id is 1..`TRANSACTION_ID_MAX_CHARS` lowercase hex digits (a uuid's hex)."""
    if type(transaction_id) is not str or _TRANSACTION_ID.fullmatch(transaction_id) is None:
        raise InvalidReconciliationLine(
            f"a transaction id is 1..{limits.TRANSACTION_ID_MAX_CHARS} lowercase hex digits: "
            f"{str(transaction_id)[:80]!r}",
            column="transaction_id",
        )


def check_line_amount(amount_vnd: object) -> None:
    """A line's amount is an int of VND, signed (a reversal is negative), within the bound."""
    if type(amount_vnd) is not int or abs(amount_vnd) > limits.AMOUNT_MAX_VND:
        raise InvalidReconciliationLine(
            f"an amount is an int of VND within ±{limits.AMOUNT_MAX_VND}: {amount_vnd!r}",
            column="amount_vnd",
        )


class InvalidReconciliationLine(ClearingError):
    """A line that cannot be compared: a transaction id or an amount that is not what the
    format says. `column` names the field at fault when it is known."""

    code = "reconciliation_line_invalid"

    def __init__(self, reason: str, *, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


class FractionalDong(InvalidReconciliationLine):
    """An amount with a non-zero fraction: VND has no minor unit, so it is refused, never
    rounded."""

    code = "reconciliation_fractional_dong"


class ReconciliationTooLarge(ClearingError):
    """An upload or a side of a comparison beyond the named bounds of `limits`."""

    code = "reconciliation_too_large"


@dataclass(frozen=True, slots=True)
class LineProblem:
    """One thing wrong with one line of an operator's file: the 1-based line (the header is
    line 1), the column when it is known, the stable code of the error and why."""

    line_no: int
    column: str | None
    code: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line_no}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class InvalidOperatorFile(ClearingError):
    """An operator's transaction file refused as a whole: nothing of it is reconciled. Every
    problem is counted (`problems_total`) and the first `RECONCILIATION_PROBLEMS_MAX` are listed
    in file order (`problems`), so the operator can fix the file in one pass."""

    code = "reconciliation_file_invalid"

    def __init__(self, problems: Iterable[LineProblem], problems_total: int) -> None:
        self.problems = tuple(problems)[: limits.RECONCILIATION_PROBLEMS_MAX]
        self.problems_total = problems_total
        require(0 < len(self.problems) <= problems_total, "a refused file lists its problems")
        more = problems_total - len(self.problems)
        listed = "; ".join(str(problem) for problem in self.problems)
        tail = f"; and {more} more" if more else ""
        super().__init__(f"the file is refused, {problems_total} problem(s): {listed}{tail}")
