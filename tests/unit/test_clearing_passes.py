"""A pass's price is the revenue of the operators of the rides it covered, earned by the cycle of
the day its validity ended plus the grace; a pass no ride used is its networks' operators'."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from clearing.domain.business_day import day_end
from clearing.domain.cycle import CycleSummary
from tests.builders.clearing_day import Rider
from tests.builders.journeys import GATE_IN_01, GATE_OUT_12, register_validators
from tests.builders.parking import MORNING, ParkingWorld, parking_world

DAY = MORNING.date()
METRO = "hanoi-metro"
DAY_PASS_2A_VND = 30_000
DAY_PASS_3_VND = 24_000
# A day pass is valid until the next local midnight; three days of grace after that instant
# fall on the fourth day after its own.
EARNED_AFTER_DAYS = 4


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


def cycles_through(world: ParkingWorld, last: date) -> dict[date, CycleSummary]:
    world.container.catch_up()
    found = {}
    day = DAY
    while day <= last:
        world.clock.now = max(world.clock(), day_end(day))
        summary = world.container.clearing.run(day).cycle.summary
        assert summary is not None
        found[day] = summary
        day += timedelta(days=1)
    return found


def metro_revenue(summary: CycleSummary) -> int:
    return sum(o.revenue_vnd for o in summary.operators if o.operator_id == METRO)


def test_a_used_day_pass_is_earned_by_its_rides_operator_after_the_grace(
    world: ParkingWorld,
) -> None:
    world.container.pass_sales.buy(
        world.account_id, purchase_id="day-1", fare_product_id="metro_2a_day"
    )
    rider = Rider(world)
    rider.tap(GATE_IN_01, 0)
    rider.tap(GATE_OUT_12, 30)

    cycles = cycles_through(world, DAY + timedelta(days=EARNED_AFTER_DAYS + 1))

    assert cycles[DAY].pass_sales_vnd == DAY_PASS_2A_VND
    assert [metro_revenue(cycles[DAY + timedelta(days=n)]) for n in range(6)] == [
        0,
        0,
        0,
        0,
        DAY_PASS_2A_VND,
        0,
    ]


def test_an_unused_pass_is_earned_by_the_operators_of_its_networks(world: ParkingWorld) -> None:
    world.container.pass_sales.buy(
        world.account_id, purchase_id="day-3", fare_product_id="metro_3_day"
    )

    cycles = cycles_through(world, DAY + timedelta(days=EARNED_AFTER_DAYS))

    earned = cycles[DAY + timedelta(days=EARNED_AFTER_DAYS)]
    assert metro_revenue(earned) == DAY_PASS_3_VND
    assert earned.suspense_lines == 0
    assert sum(o.net_vnd for o in earned.operators) + earned.commission_vnd == DAY_PASS_3_VND
