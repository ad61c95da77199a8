"""Rich tables of clearing cycles, for `tapledger clearing` and the demo."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from clearing.application.cycles import Confirmation
from clearing.domain.cycle import ClearingCycle, CycleSummary, PayoutState
from clearing.domain.positions import RIDER_FLOAT, SCHEME, SUSPENSE
from ticketing.shared.domain.invariants import InvariantViolated


def positions_table(cycle: ClearingCycle) -> Table:
    """Each operator's lines, revenue, commission, position and payout, then the suspense,
    the scheme and the rider float, and a total row that is 0 VND."""
    summary = _closed(cycle)
    title = f"Positions of {cycle.business_day} (cycle {cycle.seq})"
    table = Table(title=title, title_justify="left")
    table.add_column("party")
    for column in ("lines", "revenue", "commission", "position", "paid"):
        table.add_column(column, justify="right")
    for o in summary.operators:
        table.add_row(
            o.operator_id,
            f"{o.lines:,}",
            f"{o.revenue_vnd:,}",
            f"{o.commission_vnd:,}",
            f"{o.net_vnd:,}",
            f"{o.paid_vnd:,}",
        )
    float_vnd = -(summary.revenue_vnd + summary.suspense_vnd)
    table.add_row(SUSPENSE, f"{summary.suspense_lines:,}", f"{summary.suspense_vnd:,}", "",
                  f"{summary.suspense_vnd:,}", "")  # fmt: skip
    table.add_row(SCHEME, "", "", "", f"{summary.commission_vnd:,}", "")
    table.add_row(RIDER_FLOAT, "", "", "", f"{float_vnd:,}", "")
    total = (
        sum(o.net_vnd for o in summary.operators)
        + summary.suspense_vnd
        + summary.commission_vnd
        + float_vnd
    )
    paid = sum(o.paid_vnd for o in summary.operators)
    table.add_row("total", f"{summary.lines:,}", "", "", f"{total:,}", f"{paid:,}", style="bold")
    return table


def cycles_table(cycles: Sequence[ClearingCycle]) -> Table:
    table = Table("business day", "cycle", "state", "cut-off", "lines", "paid", "payouts")
    for cycle in cycles:
        summary = cycle.summary
        states = sorted(state for state, _ in cycle.payout_states.values())
        payouts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
        table.add_row(
            cycle.business_day,
            str(cycle.seq),
            cycle.state.value,
            "" if summary is None else str(summary.cut_off),
            "" if summary is None else f"{summary.lines:,}",
            "" if summary is None else f"{sum(o.paid_vnd for o in summary.operators):,}",
            payouts,
        )
    return table


def confirmation_table(outcomes: Sequence[Confirmation]) -> Table:
    """Per cycle the statement touched: its payouts confirmed, missing and different, the
    entries no payout took, and the cycle's state after."""
    table = Table("business day", "confirmed", "missing", "different", "unexpected", "state")
    for outcome in outcomes:
        report = outcome.report
        table.add_row(
            outcome.cycle.business_day,
            str(len(report.confirmed)),
            str(len(report.missing)),
            str(len(report.different)),
            str(len(report.unexpected)),
            outcome.cycle.state.value,
        )
    return table


def flagged_reasons(cycle: ClearingCycle) -> list[str]:
    """`<end-to-end id>: <reason>` of each payout flagged, in id order."""
    return [
        f"{e2e}: {detail}"
        for e2e, (state, detail) in sorted(cycle.payout_states.items())
        if state == PayoutState.FLAGGED.value
    ]


def _closed(cycle: ClearingCycle) -> CycleSummary:
    summary = cycle.summary
    if summary is None:
        raise InvariantViolated(f"the cycle of {cycle.business_day} is not closed")
    return summary
