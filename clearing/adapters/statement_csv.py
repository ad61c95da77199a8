"""The CSV fallback for a bank statement, for a bank that cannot send camt.053.

The format (docs/clearing-files.md, "Bank statements") is UTF-8, comma-separated, with this
exact header line and one booked entry per line after it:

    booking_date,end_to_end_id,amount_vnd,direction,counterparty_name,counterparty_account,bank_reference

`booking_date` is YYYY-MM-DD; `amount_vnd` is a positive whole number of dong (`125000`, or
`125000.00`: a non-zero fraction is refused); `direction` is `DBIT` or `CRDT`; the last four may
be empty. The file states no balances, so none are checked: the account and the day are given
by whoever uploads it. Every refusal names the line of the file.
"""

from __future__ import annotations

import csv
from datetime import date

from clearing.domain import limits
from clearing.domain.statements import (
    BankStatement,
    Direction,
    InvalidStatement,
    StatementEntry,
    StatementTooLarge,
    parse_date,
    parse_vnd,
)

COLUMNS = (
    "booking_date",
    "end_to_end_id",
    "amount_vnd",
    "direction",
    "counterparty_name",
    "counterparty_account",
    "bank_reference",
)


def read_statement_csv(data: bytes, *, account_id: str, statement_date: date) -> BankStatement:
    """The entries of a CSV statement of `account_id` for `statement_date`.

    Raises `InvalidStatement` (or `StatementTooLarge`, `FractionalDong`), whose `line` is the
    1-based line of the file at fault."""
    if len(data) > limits.STATEMENT_BYTES_MAX:
        raise StatementTooLarge(f"{len(data)} bytes, at most {limits.STATEMENT_BYTES_MAX}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise InvalidStatement("the file is not UTF-8", line=line) from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != ",".join(COLUMNS):
        raise InvalidStatement(f"the header is {','.join(COLUMNS)}", line=1)
    entries: list[StatementEntry] = []
    for number, row in enumerate(lines[1:], start=2):
        if not row.strip():
            continue
        if len(entries) >= limits.STATEMENT_ENTRIES_MAX:
            raise StatementTooLarge(
                f"more than {limits.STATEMENT_ENTRIES_MAX} entries", line=number
            )
        try:
            entries.append(_entry(row))
        except InvalidStatement as error:
            raise error.at_line(number) from None
    return BankStatement(
        account_id=account_id,
        statement_date=statement_date,
        opening_balance_vnd=None,
        closing_balance_vnd=None,
        entries=tuple(entries),
    )


def _entry(line: str) -> StatementEntry:
    if len(line) > limits.STATEMENT_CSV_LINE_MAX_CHARS:
        raise StatementTooLarge(
            f"a line is at most {limits.STATEMENT_CSV_LINE_MAX_CHARS} characters"
        )
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error as error:
        raise InvalidStatement(f"not a CSV line: {error}") from None
    fields = rows[0] if rows else []
    if len(fields) != len(COLUMNS):
        raise InvalidStatement(f"{len(fields)} fields, {len(COLUMNS)} expected")
    booking, end_to_end_id, amount, direction, name, account, reference = (
        field.strip() for field in fields
    )
    try:
        booking_date = parse_date(booking)
    except InvalidStatement as error:
        raise InvalidStatement(f"booking_date: {error}") from None
    try:
        parsed_direction = Direction(direction)
    except ValueError:
        raise InvalidStatement(f"direction is DBIT or CRDT: {direction[:10]!r}") from None
    return StatementEntry(
        booking_date=booking_date,
        amount_vnd=parse_vnd(amount),
        direction=parsed_direction,
        end_to_end_id=end_to_end_id or None,
        bank_reference=reference or None,
        counterparty_name=name or None,
        counterparty_account=account or None,
    )
