"""`tapledger clearing`: run a day's cycle, confirm payouts from the bank's statement, list
the cycles."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from clearing.adapters.camt053 import read_camt053
from clearing.adapters.statement_csv import read_statement_csv
from clearing.domain.limits import STATEMENT_BYTES_MAX
from clearing.domain.statements import BankStatement, StatementTooLarge
from tapledger.bootstrap import bootstrap
from tapledger.clearing_tables import (
    confirmation_table,
    cycles_table,
    flagged_reasons,
    positions_table,
)
from ticketing.shared.domain.errors import DomainError

EXIT_BAD_INPUT = 2

clearing_app = typer.Typer(
    no_args_is_help=True, help="Clearing: daily cycles, positions, files, bank confirmation."
)
console = Console()


class StatementFormat(StrEnum):
    AUTO = "auto"
    CAMT053 = "camt053"
    CSV = "csv"


def _fail(error: DomainError) -> typer.Exit:
    console.print(f"{error.code}: {error}", style="red", markup=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


@clearing_app.command("run")
def run(
    day: Annotated[
        datetime,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The business day (Hanoi time)"),
    ],
) -> None:
    """Runs the cycle of an ended business day: opens and closes it (once) and writes its
    files under <data>/clearing/<date>/; running it again writes the same bytes."""
    container = bootstrap()
    try:
        # The journeys follower charges what the taps owe first: those charges are the day's.
        container.catch_up()
        result = container.clearing.run(day.date())
    except DomainError as error:
        raise _fail(error) from None
    finally:
        container.close()
    console.print(positions_table(result.cycle))
    console.print(f"cycle {result.cycle.business_day}: {result.cycle.state.value}")
    for path in result.files:
        console.print(f"  wrote {path}", markup=False, highlight=False)


@clearing_app.command("confirm")
def confirm(
    statement: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="The bank's end-of-day statement"),
    ],
    file_format: Annotated[
        StatementFormat,
        typer.Option("--format", help="auto: camt.053 when the file is XML, else CSV"),
    ] = StatementFormat.AUTO,
    account: Annotated[
        str | None,
        typer.Option(help="The statement's account (required for CSV; picks one in camt.053)"),
    ] = None,
    on: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="The statement's date (CSV only)"),
    ] = None,
) -> None:
    """Confirms payouts from the bank's statement (ISO 20022 camt.053, or the CSV fallback):
    each cycle the statement concerns is settled when every payout is booked as instructed;
    a payout missing or different is flagged with the reason."""
    container = bootstrap()
    try:
        parsed = _read_statement(statement, file_format, account, on.date() if on else None)
        outcomes = container.clearing.confirm(parsed)
    except DomainError as error:
        raise _fail(error) from None
    finally:
        container.close()
    if not outcomes:
        console.print(f"the statement of {parsed.statement_date} concerns no closed cycle")
        return
    console.print(confirmation_table(outcomes))
    for outcome in outcomes:
        for reason in flagged_reasons(outcome.cycle):
            console.print(f"  {outcome.cycle.business_day} flagged {reason}", markup=False)


@clearing_app.command("cycles")
def cycles() -> None:
    """Lists the cycles, newest first, with their states."""
    container = bootstrap()
    try:
        found = container.clearing.cycles()
    finally:
        container.close()
    if not found:
        console.print("no cycle yet")
        return
    console.print(cycles_table(found))


def _read_statement(
    path: Path, file_format: StatementFormat, account: str | None, on: date | None
) -> BankStatement:
    with path.open("rb") as file:
        data = file.read(STATEMENT_BYTES_MAX + 1)
    if len(data) > STATEMENT_BYTES_MAX:
        raise StatementTooLarge(f"more than {STATEMENT_BYTES_MAX} bytes")
    if file_format is StatementFormat.AUTO:
        file_format = StatementFormat.CAMT053 if _looks_like_xml(data) else StatementFormat.CSV
    if file_format is StatementFormat.CAMT053:
        return read_camt053(data, account_id=account)
    if account is None or on is None:
        raise StatementOptionsMissing()
    return read_statement_csv(data, account_id=account, statement_date=on)


def _looks_like_xml(data: bytes) -> bool:
    """An XML document starts, after a byte-order mark and white space, with `<`; a CSV
    statement starts with its header."""
    return data.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


class StatementOptionsMissing(DomainError):
    code = "statement_options_missing"

    def __init__(self) -> None:
        super().__init__("a CSV statement needs --account and --date (YYYY-MM-DD)")
