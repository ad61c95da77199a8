"""Properties of a clearing cycle over random days made through the product on SQLite: top-ups,
a day pass, bus and metro rides and transfers uploaded as tapped or late in any order, rides
paid from a card's purse and their refunds, parking sessions with credits
(`tests/builders/clearing_days.py`). Whatever the day: the positions add up to 0 VND, every dong
of revenue moved (on the ledger and from the purses) is in exactly one line, every split and
commission adds up exactly, and neither a top-up nor a pass sale is anyone's revenue.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings

from clearing.application.ledger_movements import (
    ClassifiedMovement,
    ledger_movements,
    purse_movements,
)
from clearing.domain.business_day import day_end
from clearing.domain.classification import Category
from clearing.domain.cycle import CycleSummary
from clearing.domain.cycle_lines import CycleLine
from clearing.domain.money import basis_points
from tests.builders.clearing_days import DAY_PASS_VND, VALIDATORS, DayPlan, Ride, days, live
from tests.builders.journeys import register_validators
from tests.builders.parking import BALANCE_VND, MORNING, parking_world

DAY = MORNING.date()
# Each example builds the product on a fresh SQLite file: a few tenths of a second.
EXAMPLES = 10
# A bus ride then the metro within the hour, the gates uploading before the bus: the metro is
# charged alone, then the bus leg merges into its journey and the bus charge is refunded.
LATE_TRANSFER = DayPlan(
    (), False, (Ride("bus+metro", 0, True),), True, tuple(reversed(VALIDATORS)), (), ()
)
few_days = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Cleared:
    """A random day's cycle, and what the ledger alone says moved in it."""

    summary: CycleSummary
    lines: list[CycleLine]
    # Each revenue movement's signed amount, by its log (purse payments: True) and id there.
    moved: dict[tuple[bool, int], int]
    top_ups_vnd: int  # what the day paid in, the world's opening top-up included
    pass_sales_vnd: int
    positions_csv: str


def cleared(plan: DayPlan) -> Cleared:
    with tempfile.TemporaryDirectory() as directory, parking_world(Path(directory)) as world:
        register_validators(world.container.taps)
        paid_in = live(world, plan)
        world.clock.now = day_end(DAY) + timedelta(minutes=5)
        run = world.container.clearing.run(DAY)
        summary = run.cycle.summary
        assert summary is not None
        ledger = ledger_movements(world.container.ledger, 0, summary.cut_off)
        purses = purse_movements(world.container.journeys, 0, summary.purse_cut_off)
        moved = {**revenue_of(ledger, purse=False), **revenue_of(purses, purse=True)}
        return Cleared(
            summary=summary,
            lines=list(world.container.clearing.lines.lines(DAY)),
            moved=moved,
            top_ups_vnd=BALANCE_VND + paid_in,
            pass_sales_vnd=DAY_PASS_VND if plan.day_pass else 0,
            positions_csv=(run.files[0].parent / "positions.csv").read_text(),
        )


def revenue_of(
    movements: Iterator[ClassifiedMovement], *, purse: bool
) -> dict[tuple[bool, int], int]:
    return {
        (purse, item.notification_id): item.classification.revenue_sign * item.movement.amount_vnd
        for item in movements
        if item.classification is not None and item.classification.revenue_sign
    }


def line_key(line: CycleLine) -> tuple[bool, int]:
    return line.reference.startswith("purse:"), line.notification_id


@few_days
@given(days)
def test_positions_sum_to_zero_on_any_day(plan: DayPlan) -> None:
    day = cleared(plan)

    summary = day.summary
    float_vnd = -(summary.revenue_vnd + summary.suspense_vnd)
    nets = sum(o.net_vnd for o in summary.operators)
    assert nets + summary.suspense_vnd + summary.commission_vnd + float_vnd == 0
    total = day.positions_csv.splitlines()[-1].split(",")
    assert total[0] == "TOTAL"
    assert total[6] == "0"


@few_days
@given(days)
@example(LATE_TRANSFER)
def test_every_dong_of_revenue_is_in_exactly_one_line(plan: DayPlan) -> None:
    day = cleared(plan)

    by_movement: Counter[tuple[bool, int]] = Counter()
    for line in day.lines:
        by_movement[line_key(line)] += line.amount_vnd
    # Each revenue movement's amount is split over its lines exactly; no line is of anything else.
    assert {n: vnd for n, vnd in by_movement.items() if vnd} == {
        n: vnd for n, vnd in day.moved.items() if vnd
    }
    operators = sum(line.amount_vnd for line in day.lines if not line.in_suspense)
    assert operators + day.summary.suspense_vnd == sum(day.moved.values())
    assert day.summary.suspense_lines == 0  # every id of these days is a writer's
    assert [line.line_no for line in day.lines] == list(range(1, len(day.lines) + 1))


def test_a_transfer_uploaded_late_refunds_a_charge_and_the_refund_is_a_reversal() -> None:
    day = cleared(LATE_TRANSFER)

    reversals = [line for line in day.lines if line.category == Category.TRANSIT_REVERSAL]
    assert [line.reference.endswith("-refund-merged") for line in reversals] == [True]
    assert sum(line.amount_vnd for line in day.lines) == sum(day.moved.values()) > 0


@few_days
@given(days)
def test_commissions_and_splits_add_up_exactly(plan: DayPlan) -> None:
    day = cleared(plan)

    per_operator: Counter[str] = Counter()
    per_transaction: Counter[str] = Counter()
    for line in day.lines:
        per_operator[line.operator_id] += line.amount_vnd
        per_transaction[line.transaction_id] += line.amount_vnd
    for operator in day.summary.operators:
        assert operator.revenue_vnd == per_operator[operator.operator_id]
        assert operator.commission_vnd == basis_points(
            operator.revenue_vnd, operator.commission_bps
        )
        assert operator.commission_vnd + operator.net_vnd == operator.revenue_vnd
    assert sum(per_transaction.values()) == sum(day.moved.values())
    assert sum(o.paid_vnd for o in day.summary.operators) == sum(
        p.amount_vnd for p in day.summary.payouts
    )


@few_days
@given(days)
def test_top_ups_and_pass_sales_are_never_revenue(plan: DayPlan) -> None:
    day = cleared(plan)

    assert day.summary.top_ups_vnd == day.top_ups_vnd
    assert day.summary.pass_sales_vnd == day.pass_sales_vnd  # unearned until its grace ends
    assert all(line.category not in (Category.TOP_UP, Category.PASS_SALE) for line in day.lines)
    assert not any(line.reference.startswith("top-up:momo-") for line in day.lines)
    assert day.summary.revenue_vnd + day.summary.suspense_vnd == sum(day.moved.values())
