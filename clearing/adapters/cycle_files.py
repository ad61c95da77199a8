"""A closed cycle's files, under `<root>/<yyyy-mm-dd>/`, the same bytes in every re-run.

- `positions.csv`: every party's position (operators, suspense, the scheme, the float), each
  operator's account with the scheme, and a total row (positions add up to 0).
- `lines-<operator>.csv`: every line of the operator, with a `TOTAL` row (count, control sum).
- `suspense.csv`: every line carved out to suspense, with its code and reason, and a `TOTAL`.
- `statement-<operator>.csv`: the operator's statement: opening balance, its lines' subtotals
  by category, the commission, the payout, closing balance.
- `<message id>.xml`: the settlement instructions (ISO 20022 pain.001.001.09), when the cycle
  pays anyone.
- `SHA256SUMS`: the digest of every other file (`sha256sum -c` checks them).

The files are written from the closed cycle's summary and its kept lines only, never from the
live stores, and each is first written beside its place and then renamed over it: a run cut
off midway leaves each file whole, old or new. The lines are checked against the digest the
cycle closed with before any file is renamed; kept lines that changed are refused.
Columns are described in `docs/clearing-files.md`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from clearing.adapters.pain001 import write_pain001
from clearing.domain.bank_accounts import AccountKind, BankAccount, Party
from clearing.domain.business_day import day_end
from clearing.domain.cycle import BankParty, ClearingCycle, CycleSummary, OperatorTotals
from clearing.domain.cycle_lines import CycleLine, LinesDigest
from clearing.domain.errors import ClearingError
from clearing.domain.payouts import cycle_batch
from clearing.domain.positions import RIDER_FLOAT, SCHEME, SUSPENSE
from ticketing.shared.domain.invariants import require

# An operator id names files: lower-case letters, digits and '-', as the catalogue makes them.
_FILE_SAFE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
POSITIONS = "positions.csv"
SUSPENSE_FILE = "suspense.csv"
CHECKSUMS = "SHA256SUMS"
LINE_COLUMNS = (
    "line_no",
    "notification_id",
    "category",
    "origin",
    "transaction_id",
    "reference",
    "amount_vnd",
)
SUSPENSE_COLUMNS = (*LINE_COLUMNS, "code", "reason")


class LinesChanged(ClearingError):
    """A closed cycle's kept lines no longer match the digest it closed with."""

    code = "cycle_lines_changed"


class DirectoryCycleFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, cycle: ClearingCycle) -> Path:
        return self.root / cycle.business_day

    def names(self, day: date) -> list[str]:
        directory = self.root / day.isoformat()
        if not directory.is_dir():
            return []
        # A temporary (`.<name>.tmp`) is a file being written: never listed.
        return sorted(
            entry.name
            for entry in directory.iterdir()
            if not entry.name.startswith(".") and entry.is_file()
        )

    def path(self, day: date, name: str) -> Path:
        # Only a name read from the directory's listing comes here, so none climbs out of it.
        require(name in self.names(day), "a file of the cycle's listing")
        return self.root / day.isoformat() / name

    def write(self, cycle: ClearingCycle, lines: Iterable[CycleLine]) -> list[Path]:
        summary = cycle.summary
        if summary is None:
            raise ClearingError(f"the cycle of {cycle.business_day} is not closed")
        directory = self.directory(cycle)
        directory.mkdir(parents=True, exist_ok=True)
        for operator in summary.operators:
            if not _FILE_SAFE.fullmatch(operator.operator_id):
                raise ClearingError(f"operator id {operator.operator_id!r} cannot name a file")
        written = _LineFiles(directory, summary).write(lines)
        contents = {POSITIONS: positions_csv(summary)}
        for operator in summary.operators:
            contents[f"statement-{operator.operator_id}.csv"] = statement_csv(
                cycle, operator, written.subtotals.get(operator.operator_id, {})
            )
        if summary.payouts:
            contents[f"{summary.message_id}.xml"] = pain001_of(cycle, summary)
        for name, data in contents.items():
            _replace(directory / name, data)
        names = sorted([*written.names, *contents])
        sums = "".join(f"{_sha256(directory / name)}  {name}\n" for name in names)
        _replace(directory / CHECKSUMS, sums.encode())
        return [directory / name for name in [*names, CHECKSUMS]]


class _LineFiles:
    """One pass over the kept lines: each to its operator's file (or suspense), with the
    digest and each operator's subtotals by category taken on the way."""

    def __init__(self, directory: Path, summary: CycleSummary) -> None:
        self.directory = directory
        self.summary = summary
        self.subtotals: dict[str, dict[str, list[int]]] = {}
        self.names: list[str] = []

    def write(self, lines: Iterable[CycleLine]) -> _LineFiles:
        names = {o.operator_id: f"lines-{o.operator_id}.csv" for o in self.summary.operators}
        names[""] = SUSPENSE_FILE
        with ExitStack() as stack:
            files = {
                op: stack.enter_context(_temporary(self.directory / name))
                for op, name in names.items()
            }
            self._write_lines(files, lines)
        for name in names.values():
            os.replace(self.directory / f".{name}.tmp", self.directory / name)
            self.names.append(name)
        return self

    def _write_lines(self, files: dict[str, IO[str]], lines: Iterable[CycleLine]) -> None:
        writers = {op: csv.writer(file, lineterminator="\n") for op, file in files.items()}
        for operator, writer in writers.items():
            writer.writerow(SUSPENSE_COLUMNS if operator == "" else LINE_COLUMNS)
        digest = LinesDigest()
        totals = {operator: [0, 0] for operator in writers}
        for line in lines:
            digest.add(line)
            if line.operator_id not in writers:
                raise LinesChanged(f"line {line.line_no} names an operator not in the cycle")
            writers[line.operator_id].writerow(_line_row(line))
            for count_sum in (
                totals[line.operator_id],
                self.subtotals.setdefault(line.operator_id, {}).setdefault(line.category, [0, 0]),
            ):
                count_sum[0] += 1
                count_sum[1] += line.amount_vnd
        for operator, writer in writers.items():
            count, total = totals[operator]
            after = ["", ""] if operator == "" else []
            writer.writerow(["TOTAL", count, "", "", "", "", total, *after])
        closed_with = (self.summary.lines, self.summary.lines_sha256)
        if (digest.count, digest.hexdigest()) != closed_with:
            raise LinesChanged(
                f"the kept lines ({digest.count}) are not those the cycle closed with "
                f"({self.summary.lines}): its files are left as they were"
            )
        for file in files.values():
            file.flush()
            os.fsync(file.fileno())


def _line_row(line: CycleLine) -> list[object]:
    row: list[object] = [
        line.line_no,
        line.notification_id,
        line.category,
        line.origin,
        line.transaction_id,
        line.reference,
        line.amount_vnd,
    ]
    if line.in_suspense:
        row += [line.suspense_code, line.reason]
    return row


def positions_csv(summary: CycleSummary) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ("party", "kind", "lines", "revenue_vnd", "commission_bps", "commission_vnd",
         "position_vnd", "opening_vnd", "paid_vnd", "closing_vnd")
    )  # fmt: skip
    for o in summary.operators:
        writer.writerow(
            (o.operator_id, "operator", o.lines, o.revenue_vnd, o.commission_bps,
             o.commission_vnd, o.net_vnd, o.opening_vnd, o.paid_vnd, o.closing_vnd)
        )  # fmt: skip
    commission = summary.commission_vnd
    float_vnd = -(summary.revenue_vnd + summary.suspense_vnd)
    nets = sum(o.net_vnd for o in summary.operators)
    total = nets + summary.suspense_vnd + commission + float_vnd
    writer.writerow((SUSPENSE, "suspense", summary.suspense_lines, summary.suspense_vnd, "", "",
                     summary.suspense_vnd, "", "", ""))  # fmt: skip
    writer.writerow((SCHEME, "scheme", "", "", "", "", commission, "", "", ""))
    writer.writerow((RIDER_FLOAT, "float", "", "", "", "", float_vnd, "", "", ""))
    paid = sum(o.paid_vnd for o in summary.operators)
    writer.writerow(("TOTAL", "", summary.lines, summary.revenue_vnd + summary.suspense_vnd, "",
                     commission, total, "", paid, ""))  # fmt: skip
    return out.getvalue().encode()


def statement_csv(
    cycle: ClearingCycle, operator: OperatorTotals, subtotals: dict[str, list[int]]
) -> bytes:
    """The operator's account with the scheme over the cycle, one entry per row; the amounts
    of the rows between the opening and the closing add up from one to the other."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("operator", "business_day", "entry", "description", "count", "amount_vnd"))
    head = (operator.operator_id, cycle.business_day)
    writer.writerow((*head, "opening", "balance carried from the previous cycle", "",
                     operator.opening_vnd))  # fmt: skip
    for category in sorted(subtotals):
        count, amount = subtotals[category]
        writer.writerow((*head, category, "lines of the cycle", count, amount))
    writer.writerow((*head, "commission", f"{operator.commission_bps} bps of the revenue", "",
                     -operator.commission_vnd))  # fmt: skip
    payouts = cycle.summary.payouts if cycle.summary else ()
    payout = next((p for p in payouts if p.operator_id == operator.operator_id), None)
    writer.writerow((*head, "payout", payout.end_to_end_id if payout else "none", "",
                     -operator.paid_vnd))  # fmt: skip
    writer.writerow((*head, "closing", "balance carried to the next cycle", "",
                     operator.closing_vnd))  # fmt: skip
    return out.getvalue().encode()


def pain001_of(cycle: ClearingCycle, summary: CycleSummary) -> bytes:
    batch = cycle_batch(
        cycle_date=cycle.day,
        cycle_seq=cycle.seq,
        created_at=day_end(cycle.day),
        execution_date=cycle.day + timedelta(days=1),
        debtor=party_of(summary.debtor),
        payees=[(p.operator_id, party_of(p.payee), p.amount_vnd) for p in summary.payouts],
    )
    return write_pain001(batch)


def party_of(party: BankParty) -> Party:
    return Party(party.name, BankAccount(party.account, party.bic, AccountKind(party.account_kind)))


def _temporary(path: Path) -> IO[str]:
    return (path.parent / f".{path.name}.tmp").open("w", encoding="utf-8", newline="")


def _replace(path: Path, data: bytes) -> None:
    temporary = path.parent / f".{path.name}.tmp"
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
