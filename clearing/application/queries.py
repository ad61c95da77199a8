"""What the clearing API reads, each answer seen through a `Viewer` (clearing.domain.visibility):
cycles, a cycle's lines and files, revenue per operator and day, and the reconciliation of an
operator's own transaction file against its lines of a cycle.

Reads only: running a cycle and confirming payouts are `ClearingCycles`' use cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from clearing.adapters.reconciliation_csv import read_operator_file
from clearing.application.cycles import ClearingCycles
from clearing.domain.cycle import ClearingCycle, CycleState
from clearing.domain.cycle_lines import CycleLine
from clearing.domain.errors import ClearingError
from clearing.domain.reconciliation import OurLine, ReconciliationReport, reconcile
from clearing.domain.visibility import Viewer

# The most cycles one listing returns, newest first.
CYCLES_LISTED_MAX = 366
# The most lines one page of a search returns.
LINES_PAGE_MAX = 500
# The longest range of days one revenue query covers.
REVENUE_DAYS_MAX = 366


@dataclass(frozen=True, slots=True)
class DayRevenue:
    """One operator's takings in one closed cycle."""

    business_day: date
    operator_id: str
    lines: int
    revenue_vnd: int
    commission_vnd: int
    net_vnd: int


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """A reconciliation's report, with what was compared: the cycle, the operator, and our
    lines left out because they name no transaction the operator could know."""

    business_day: date
    operator_id: str
    report: ReconciliationReport
    our_lines_without_id: int


@dataclass(frozen=True)
class ClearingQueries:
    cycles: ClearingCycles

    def listed(self, limit: int = CYCLES_LISTED_MAX) -> list[ClearingCycle]:
        """The newest cycles first, at most `limit` (up to `CYCLES_LISTED_MAX`)."""
        return self.cycles.cycles(limit=min(limit, CYCLES_LISTED_MAX))

    def cycle(self, day: date) -> ClearingCycle:
        found = self.cycles.cycle(day)
        if found is None:
            raise CycleNotFound(day)
        return found

    def lines(
        self,
        day: date,
        viewer: Viewer,
        *,
        operator_id: str | None = None,
        text: str = "",
        offset: int = 0,
        limit: int = LINES_PAGE_MAX,
    ) -> tuple[int, list[CycleLine]]:
        """One page of the cycle's lines, of the operator the viewer may see, and how many
        match in all. Staff see every line (suspense too, as operator "") or one operator's."""
        of = viewer.lines_of(operator_id)
        self.cycle(day)
        return self.cycles.lines.search(
            day, operator_id=of, text=text, offset=offset, limit=min(limit, LINES_PAGE_MAX)
        )

    def file_names(self, day: date, viewer: Viewer) -> list[str]:
        self.cycle(day)
        return [name for name in self.cycles.files.names(day) if viewer.sees_file(name)]

    def file(self, day: date, name: str, viewer: Viewer) -> Path:
        """The path of one file of the cycle's listing; a name that is not there, or that the
        viewer may not see, is `CycleFileNotFound` alike."""
        if name not in self.file_names(day, viewer):
            raise CycleFileNotFound(day, name)
        return self.cycles.files.path(day, name)

    def revenue(self, first: date, last: date, viewer: Viewer) -> list[DayRevenue]:
        """Each operator's revenue per day over the closed cycles of [first, last], by day
        then operator; days with no closed cycle have no rows."""
        days = (last - first).days + 1
        if not 0 < days <= REVENUE_DAYS_MAX:
            raise InvalidDayRange(first, last)
        rows: list[DayRevenue] = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            summary = None if (cycle := self.cycles.cycle(day)) is None else cycle.summary
            if summary is None:
                continue
            rows += [
                DayRevenue(day, o.operator_id, o.lines, o.revenue_vnd, o.commission_vnd, o.net_vnd)
                for o in summary.operators
                if viewer.sees(o.operator_id)
            ]
        return rows

    def reconcile(
        self, day: date, viewer: Viewer, operator_id: str | None, data: bytes
    ) -> Reconciliation:
        """The operator's file against our lines of it in the day's closed cycle. Staff name
        the operator; an operator's token reconciles its own."""
        of = viewer.lines_of(operator_id)
        if of is None:
            raise OperatorRequired()
        if of not in self.cycles.terms.operators:
            raise OperatorUnknown(of)
        if self.cycle(day).state is CycleState.OPEN:
            raise CycleStillOpen(day)
        theirs = read_operator_file(data)
        ours: list[OurLine] = []
        without_id = 0
        for line in self.cycles.lines.lines(day, of):
            if line.transaction_id:
                ours.append(OurLine(line.transaction_id, line.amount_vnd))
            else:
                without_id += 1
        return Reconciliation(day, of, reconcile(ours, theirs), without_id)


class CycleNotFound(ClearingError):
    code = "clearing_cycle_not_found"

    def __init__(self, day: date) -> None:
        super().__init__(f"no clearing cycle for {day.isoformat()}")


class CycleFileNotFound(ClearingError):
    code = "clearing_file_not_found"

    def __init__(self, day: date, name: str) -> None:
        super().__init__(f"the cycle of {day.isoformat()} has no file {name[:80]!r}")


class CycleStillOpen(ClearingError):
    """Reconciled only once closed: an open cycle's lines may still change."""

    code = "clearing_cycle_open"

    def __init__(self, day: date) -> None:
        super().__init__(f"the cycle of {day.isoformat()} is not closed yet")


class OperatorRequired(ClearingError):
    code = "clearing_operator_required"

    def __init__(self) -> None:
        super().__init__("name the operator whose file this is")


class OperatorUnknown(ClearingError):
    code = "clearing_operator_unknown"

    def __init__(self, operator_id: str) -> None:
        super().__init__(f"clearing settles no operator {operator_id[:80]!r}")


class InvalidDayRange(ClearingError):
    code = "clearing_day_range_invalid"

    def __init__(self, first: date, last: date) -> None:
        super().__init__(
            f"from {first.isoformat()} to {last.isoformat()}: the range is 1 to "
            f"{REVENUE_DAYS_MAX} days, the first day not after the last"
        )
