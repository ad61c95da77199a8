"""HTTP schemas of clearing (docs/clearing-api.md): what a viewer may see of cycles, lines,
files, revenue and reconciliations. Amounts are integer VND."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from clearing.application.cycles import DISPUTE_REASON_MAX_CHARS
from clearing.application.queries import DayRevenue, Reconciliation
from clearing.domain.cycle import ClearingCycle, CycleSummary, OperatorTotals, PayoutState
from clearing.domain.cycle_lines import CycleLine
from clearing.domain.limits import OPERATOR_ID_MAX_CHARS
from clearing.domain.reconciliation import Outcome, ReconciliationRow, Totals
from clearing.domain.visibility import Viewer
from ticketing.shared.schemas import PrintableText

OPERATOR_ID_REGEX = r"^[a-z0-9][a-z0-9-]*$"
# The rows a reconciliation answers in JSON, differences first; the CSV has every row.
RECONCILIATION_ROWS_SHOWN_MAX = 1_000
OperatorId = Annotated[
    str, Field(min_length=1, max_length=OPERATOR_ID_MAX_CHARS, pattern=OPERATOR_ID_REGEX)
]


class OperatorPositionPublic(BaseModel):
    """One operator in a closed cycle: its revenue, the scheme's commission, its net position
    and its account with the scheme."""

    operator_id: str
    lines: int
    revenue_vnd: int
    commission_bps: int
    commission_vnd: int
    net_vnd: int
    opening_vnd: int
    paid_vnd: int
    closing_vnd: int

    @classmethod
    def of(cls, totals: OperatorTotals) -> OperatorPositionPublic:
        return cls(
            operator_id=totals.operator_id,
            lines=totals.lines,
            revenue_vnd=totals.revenue_vnd,
            commission_bps=totals.commission_bps,
            commission_vnd=totals.commission_vnd,
            net_vnd=totals.net_vnd,
            opening_vnd=totals.opening_vnd,
            paid_vnd=totals.paid_vnd,
            closing_vnd=totals.closing_vnd,
        )


class PayoutPublic(BaseModel):
    end_to_end_id: str
    operator_id: str
    amount_vnd: int
    payee_name: str
    state: PayoutState
    detail: str = Field(description="the bank's reference once confirmed; why, when flagged")


class SchemeTotalsPublic(BaseModel):
    """The scheme's side of a cycle: for staff only."""

    movements: int
    lines: int
    revenue_vnd: int
    commission_vnd: int
    suspense_lines: int
    suspense_vnd: int
    top_ups_vnd: int
    rider_payouts_vnd: int
    message_id: str


class CyclePublic(BaseModel):
    """A cycle as the viewer may see it: an operator's token sees its own position and payout
    only, and no scheme totals."""

    business_day: date
    seq: int
    state: str = Field(description="open, closed or settled")
    position: int = Field(description="the previous cycle's cut-off (a notification id)")
    cut_off: int | None = Field(description="the last notification id it holds, once closed")
    operators: list[OperatorPositionPublic]
    payouts: list[PayoutPublic]
    scheme: SchemeTotalsPublic | None = Field(description="null for an operator's token")

    @classmethod
    def of(cls, cycle: ClearingCycle, viewer: Viewer) -> CyclePublic:
        summary = cycle.summary
        return cls(
            business_day=cycle.day,
            seq=cycle.seq,
            state=cycle.state.value,
            position=cycle.position,
            cut_off=None if summary is None else summary.cut_off,
            operators=[]
            if summary is None
            else [
                OperatorPositionPublic.of(o)
                for o in summary.operators
                if viewer.sees(o.operator_id)
            ],
            payouts=[] if summary is None else _payouts(cycle, summary, viewer),
            scheme=None if summary is None or not viewer.is_staff else _scheme(summary),
        )


def _payouts(cycle: ClearingCycle, summary: CycleSummary, viewer: Viewer) -> list[PayoutPublic]:
    shown = []
    for payout in summary.payouts:
        if not viewer.sees(payout.operator_id):
            continue
        state, detail = cycle.payout_states[payout.end_to_end_id]
        shown.append(
            PayoutPublic(
                end_to_end_id=payout.end_to_end_id,
                operator_id=payout.operator_id,
                amount_vnd=payout.amount_vnd,
                payee_name=payout.payee.name,
                state=PayoutState(state),
                detail=detail,
            )
        )
    return shown


def _scheme(summary: CycleSummary) -> SchemeTotalsPublic:
    return SchemeTotalsPublic(
        movements=summary.movements,
        lines=summary.lines,
        revenue_vnd=summary.revenue_vnd,
        commission_vnd=summary.commission_vnd,
        suspense_lines=summary.suspense_lines,
        suspense_vnd=summary.suspense_vnd,
        top_ups_vnd=summary.top_ups_vnd,
        rider_payouts_vnd=summary.rider_payouts_vnd,
        message_id=summary.message_id,
    )


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[PrintableText, Field(min_length=1, max_length=DISPUTE_REASON_MAX_CHARS)]


class DisputePublic(BaseModel):
    business_day: date
    line_no: int
    changed: bool = Field(description="false when it had been asked already")


class CyclesPage(BaseModel):
    items: list[CyclePublic]


class CycleRunPublic(BaseModel):
    cycle: CyclePublic
    files: list[str] = Field(description="the names of the files written, under files/")


class LinePublic(BaseModel):
    line_no: int
    notification_id: int
    operator_id: str = Field(description='"" for a line in suspense')
    amount_vnd: int
    category: str
    origin: str
    transaction_id: str
    reference: str
    suspense_code: str
    reason: str

    @classmethod
    def of(cls, line: CycleLine) -> LinePublic:
        return cls(
            line_no=line.line_no,
            notification_id=line.notification_id,
            operator_id=line.operator_id,
            amount_vnd=line.amount_vnd,
            category=line.category,
            origin=line.origin,
            transaction_id=line.transaction_id,
            reference=line.reference,
            suspense_code=line.suspense_code,
            reason=line.reason,
        )


class LinesPage(BaseModel):
    total: int = Field(description="how many lines match in all")
    offset: int
    items: list[LinePublic]


class FilePublic(BaseModel):
    name: str
    href: str


class FilesPage(BaseModel):
    items: list[FilePublic]


class DayRevenuePublic(BaseModel):
    business_day: date
    operator_id: str
    lines: int
    revenue_vnd: int
    commission_vnd: int
    net_vnd: int

    @classmethod
    def of(cls, row: DayRevenue) -> DayRevenuePublic:
        return cls(
            business_day=row.business_day,
            operator_id=row.operator_id,
            lines=row.lines,
            revenue_vnd=row.revenue_vnd,
            commission_vnd=row.commission_vnd,
            net_vnd=row.net_vnd,
        )


class RevenuePage(BaseModel):
    items: list[DayRevenuePublic]


class ReconciliationTotalsPublic(BaseModel):
    transactions: int
    our_vnd: int
    their_vnd: int
    difference_vnd: int = Field(description="ours minus theirs")
    our_lines: int
    their_lines: int

    @classmethod
    def of(cls, totals: Totals) -> ReconciliationTotalsPublic:
        return cls(
            transactions=totals.transactions,
            our_vnd=totals.our_vnd,
            their_vnd=totals.their_vnd,
            difference_vnd=totals.difference_vnd,
            our_lines=totals.our_lines,
            their_lines=totals.their_lines,
        )


class ReconciliationRowPublic(BaseModel):
    transaction_id: str
    outcome: str = Field(
        description="matched, amount_mismatch, missing_in_ours or missing_in_theirs"
    )
    our_vnd: int | None
    their_vnd: int | None
    difference_vnd: int
    our_lines: int
    their_lines: int
    their_first_line: int | None

    @classmethod
    def of(cls, row: ReconciliationRow) -> ReconciliationRowPublic:
        return cls(
            transaction_id=row.transaction_id,
            outcome=row.outcome.value,
            our_vnd=row.our_vnd,
            their_vnd=row.their_vnd,
            difference_vnd=row.difference_vnd,
            our_lines=row.our_lines,
            their_lines=row.their_lines,
            their_first_line=row.their_first_line,
        )


class ReconciliationPublic(BaseModel):
    business_day: date
    operator_id: str
    all_matched: bool
    totals: ReconciliationTotalsPublic
    by_outcome: dict[str, ReconciliationTotalsPublic]
    our_lines_without_id: int = Field(
        description="our lines of the operator that name no transaction, so were not compared"
    )
    rows_total: int
    rows: list[ReconciliationRowPublic] = Field(
        description="the differences first, then matched transactions, each by transaction id; "
        f"at most {RECONCILIATION_ROWS_SHOWN_MAX} (the CSV report has every row)"
    )

    @classmethod
    def of(cls, done: Reconciliation) -> ReconciliationPublic:
        report = done.report
        return cls(
            business_day=done.business_day,
            operator_id=done.operator_id,
            all_matched=report.all_matched,
            totals=ReconciliationTotalsPublic.of(report.overall),
            by_outcome={o.value: ReconciliationTotalsPublic.of(t) for o, t in report.by_outcome},
            our_lines_without_id=done.our_lines_without_id,
            rows_total=len(report.rows),
            rows=[ReconciliationRowPublic.of(row) for row in _differences_first(report.rows)],
        )


def _differences_first(rows: tuple[ReconciliationRow, ...]) -> list[ReconciliationRow]:
    ordered = sorted(rows, key=lambda row: row.outcome is Outcome.MATCHED)  # stable
    return ordered[:RECONCILIATION_ROWS_SHOWN_MAX]
