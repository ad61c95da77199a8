"""An operator's transaction file (CSV) in, the reconciliation report (CSV) out.

The upload (docs/clearing-files.md, "Reconciliation") is UTF-8, a byte-order mark allowed, with
a header line naming its columns in any order: `transaction_id` and `amount_vnd` required,
`business_date` (YYYY-MM-DD) and `description` optional and not used for matching; no other
column. A header alone is a valid file of no lines. Blank lines are skipped.

- `transaction_id`: hex digits as we write them (a journey's, a parking session's or record's
  id). Capitals and a uuid's canonical hyphenated form are the same number, so they are read as
  the 32 lowercase hex digits; anything else is refused.
- `amount_vnd`: whole dong, a `-` for a reversal: `125000`, `-18000`. A spreadsheet's `.00` (or
  `.0`) is accepted; any other fraction is refused as fractional dong, never rounded. A
  thousands separator is refused, whichever it is: Vietnamese writes 125 thousand `125.000` and
  one and a half `1,5`, English the reverse, so `125,000` and `125.000` could each be read a
  thousand times wrong. This is why `parse_vnd` of the bank statements is not reused: a bank
  writes ISO amounts, where `125.000` is 125 dong.

An upload with any bad line is refused as a whole (`InvalidOperatorFile`), listing every
problem up to `RECONCILIATION_PROBLEMS_MAX` with its line number (the header is line 1) and
column, so one correction fixes the file; a file or a line count beyond the bounds is a
`ReconciliationTooLarge`. Lines are read one at a time from the bytes, so nothing but the kept
lines grows with the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator

from clearing.domain import limits
from clearing.domain.reconciliation import (
    FractionalDong,
    InvalidOperatorFile,
    InvalidReconciliationLine,
    LineProblem,
    Outcome,
    ReconciliationReport,
    ReconciliationTooLarge,
    TheirLine,
    Totals,
)
from clearing.domain.statements import InvalidStatement, parse_date

REQUIRED_COLUMNS = ("transaction_id", "amount_vnd")
OPTIONAL_COLUMNS = ("business_date", "description")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

REPORT_COLUMNS = (
    "kind",
    "transaction_id",
    "outcome",
    "transactions",
    "our_vnd",
    "their_vnd",
    "difference_vnd",
    "our_lines",
    "their_lines",
    "their_first_line",
)
# The `outcome` of the last totals row, over every outcome.
ALL_OUTCOMES = "all"

_HEX_ID = re.compile(rf"[0-9A-Fa-f]{{1,{limits.TRANSACTION_ID_MAX_CHARS}}}")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_AMOUNT = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]{1,18})(?:\.(?P<fraction>[0-9]{1,2}))?")
_SEPARATED = re.compile(r"-?[0-9]{1,3}(?:[.,][0-9]{3})+(?:[.,][0-9]+)?")


def read_operator_file(data: bytes) -> list[TheirLine]:
    """The lines of an operator's transaction file, in file order.

    Raises `ReconciliationTooLarge` beyond `RECONCILIATION_FILE_BYTES_MAX` bytes or
    `RECONCILIATION_LINES_MAX` lines, and `InvalidOperatorFile` listing every bad line (up to
    `RECONCILIATION_PROBLEMS_MAX`) when any line, or the header, is bad."""
    if len(data) > limits.RECONCILIATION_FILE_BYTES_MAX:
        raise ReconciliationTooLarge(
            f"{len(data)} bytes, at most {limits.RECONCILIATION_FILE_BYTES_MAX}"
        )
    lines = _numbered_lines(data.removeprefix(codecs.BOM_UTF8))
    columns = _header(next(lines, (1, b"")))
    problems: list[LineProblem] = []
    problems_total = 0
    read: list[TheirLine] = []
    rows_seen = 0
    for line_no, raw in lines:
        if not raw.strip():
            continue
        rows_seen += 1
        if rows_seen > limits.RECONCILIATION_LINES_MAX:
            raise ReconciliationTooLarge(
                f"line {line_no}: more than {limits.RECONCILIATION_LINES_MAX} lines"
            )
        found = _line(line_no, raw, columns)
        if isinstance(found, TheirLine):
            read.append(found)
            continue
        problems_total += len(found)
        problems.extend(found[: limits.RECONCILIATION_PROBLEMS_MAX - len(problems)])
    if problems_total:
        raise InvalidOperatorFile(problems, problems_total)
    return read


def _numbered_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each line of the file with its 1-based number, its line break taken off (`\\n` or
    `\\r\\n`). UTF-8 never puts the byte of `\\n` inside a character, so splitting the bytes
    first is safe, and a line that is not UTF-8 is named by its number."""
    for line_no, raw in enumerate(io.BytesIO(data), start=1):
        yield line_no, raw.removesuffix(b"\n").removesuffix(b"\r")


def _header(numbered: tuple[int, bytes]) -> tuple[str, ...]:
    line_no, raw = numbered
    expected = f"{','.join(REQUIRED_COLUMNS)}[,{'][,'.join(OPTIONAL_COLUMNS)}]"

    def refused(reason: str) -> InvalidOperatorFile:
        problem = LineProblem(line_no, None, InvalidOperatorFile.code, reason)
        return InvalidOperatorFile([problem], 1)

    try:
        fields = _fields(raw)
    except InvalidReconciliationLine as error:
        raise refused(f"the header: {error.reason}; expected {expected}") from None
    names = tuple(field.strip() for field in fields)
    unknown = [name for name in names if name not in COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if not any(names):
        raise refused(f"a header line is required: {expected}")
    if unknown or repeated or missing:
        said = [f"unknown column {name[:40]!r}" for name in unknown]
        said += [f"column {name!r} twice" for name in repeated]
        said += [f"no {name!r} column" for name in missing]
        if any(";" in name or "\t" in name for name in unknown):
            said.append("columns are separated by commas")
        raise refused(f"the header: {', '.join(said)}; expected {expected}")
    return names


def _fields(raw: bytes) -> list[str]:
    """The fields of one line, `"` quoting allowed; a line break inside a field is not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidReconciliationLine("the line is not UTF-8") from None
    if len(text) > limits.RECONCILIATION_LINE_MAX_CHARS:
        raise InvalidReconciliationLine(
            f"longer than {limits.RECONCILIATION_LINE_MAX_CHARS} characters"
        )
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as error:
        raise InvalidReconciliationLine(f"not a CSV line: {error}") from None
    return rows[0] if rows else []


def _line(line_no: int, raw: bytes, columns: tuple[str, ...]) -> TheirLine | list[LineProblem]:
    """The line, or every problem found on it (each column is checked, so a line with a bad id
    and a bad amount says both)."""
    problems: list[LineProblem] = []

    def note(error: InvalidReconciliationLine, column: str | None) -> None:
        problems.append(LineProblem(line_no, column or error.column, error.code, error.reason))

    try:
        fields = _fields(raw)
    except InvalidReconciliationLine as error:
        note(error, None)
        return problems
    if len(fields) != len(columns):
        note(InvalidReconciliationLine(f"{len(fields)} fields, {len(columns)} expected"), None)
        return problems
    values = dict(zip(columns, (field.strip() for field in fields), strict=True))
    transaction_id = amount_vnd = None
    try:
        transaction_id = parse_transaction_id(values["transaction_id"])
    except InvalidReconciliationLine as error:
        note(error, "transaction_id")
    try:
        amount_vnd = parse_amount(values["amount_vnd"])
    except InvalidReconciliationLine as error:
        note(error, "amount_vnd")
    if values.get("business_date"):
        try:
            parse_date(values["business_date"])
        except InvalidStatement as error:
            note(InvalidReconciliationLine(str(error)), "business_date")
    if len(values.get("description", "")) > limits.RECONCILIATION_DESCRIPTION_MAX_CHARS:
        reason = f"at most {limits.RECONCILIATION_DESCRIPTION_MAX_CHARS} characters"
        note(InvalidReconciliationLine(reason), "description")
    if problems or transaction_id is None or amount_vnd is None:
        return problems
    return TheirLine(line_no, transaction_id, amount_vnd)


def parse_transaction_id(text: str) -> str:
    """A transaction id as the operator wrote it, as we write it: lowercase hex digits. A uuid
    in its hyphenated form, or hex in capitals, is the same id; nothing else is guessed."""
    if _UUID.fullmatch(text):
        return text.replace("-", "").lower()
    if _HEX_ID.fullmatch(text):
        return text.lower()
    shown = text[:40]
    raise InvalidReconciliationLine(
        f"a transaction id is the journey's, parking session's or record's id, in hex digits "
        f"(or as a uuid), at most {limits.TRANSACTION_ID_MAX_CHARS}: {shown!r}",
        column="transaction_id",
    )


def parse_amount(text: str) -> int:
    """Whole dong, `-` for a reversal: `125000`, `-18000`, `125000.00`. A non-zero fraction is
    `FractionalDong`; a thousands separator (`125,000`, `125.000`) is refused as ambiguous."""
    match = _AMOUNT.fullmatch(text)
    if match is None:
        if _SEPARATED.fullmatch(text):
            reason = (
                f"write whole dong without separators ({text[:20]!r}): 125,000 and 125.000 "
                f"mean different amounts in Vietnamese and English notation"
            )
        else:
            reason = f"an amount is whole dong, digits with an optional '-': {text[:40]!r}"
        raise InvalidReconciliationLine(reason, column="amount_vnd")
    fraction = match.group("fraction")
    if fraction is not None and fraction.strip("0"):
        raise FractionalDong(f"VND has no minor unit: {text!r}", column="amount_vnd")
    amount_vnd = int(match.group("whole"))
    if amount_vnd > limits.AMOUNT_MAX_VND:
        raise InvalidReconciliationLine(
            f"an amount beyond {limits.AMOUNT_MAX_VND} VND: {text[:40]!r}", column="amount_vnd"
        )
    return -amount_vnd if match.group("sign") else amount_vnd


def write_report_csv(report: ReconciliationReport) -> bytes:
    """The report as one CSV table, UTF-8 with `\\n` line endings: the header, a `transaction`
    row per transaction id in id order, then a `total` row per outcome (every outcome, in the
    report's order, even when 0) and a last `total` row of outcome `all`.

    The same report gives the same bytes. Every cell is a hex id, an outcome word or an
    integer, so no cell can start a spreadsheet formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for row in report.rows:
        writer.writerow(
            (
                "transaction",
                row.transaction_id,
                row.outcome.value,
                1,
                _cell(row.our_vnd),
                _cell(row.their_vnd),
                row.difference_vnd,
                row.our_lines,
                row.their_lines,
                _cell(row.their_first_line),
            )
        )
    for outcome, totals in (*report.by_outcome, (ALL_OUTCOMES, report.overall)):
        writer.writerow(_total_row(outcome, totals))
    return out.getvalue().encode("utf-8")


def _total_row(outcome: Outcome | str, totals: Totals) -> tuple[str | int, ...]:
    return (
        "total",
        "",
        str(outcome),
        totals.transactions,
        totals.our_vnd,
        totals.their_vnd,
        totals.difference_vnd,
        totals.our_lines,
        totals.their_lines,
        "",
    )


def _cell(value: int | None) -> str | int:
    """A side with no line is an empty cell, so it is never confused with a line of 0 VND."""
    return "" if value is None else value
