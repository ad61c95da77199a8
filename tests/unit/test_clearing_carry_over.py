"""What a cycle carries from earlier ones: suspense placed once it can be attributed, and a
disputed line carved out to suspense and released back to its operator, each in a later cycle
and never by changing a closed one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from clearing.adapters.operator_files import load_packaged
from clearing.application.carry_over import DISPUTED, PLACED, RELEASED
from clearing.application.cycles import ClearingCycles, LineNotDisputable
from clearing.domain.book import DisputeNotCarved
from clearing.domain.business_day import day_end
from clearing.domain.cycle import CycleSummary
from clearing.domain.cycle_lines import CycleLine, line_key
from clearing.domain.operators import OperatorMap
from tests.builders.clearing_day import a_day
from tests.builders.journeys import register_validators
from tests.builders.parking import MORNING, OPERATOR, ParkingWorld, parking_world

DAY = MORNING.date()
METRO = "hanoi-metro"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


def run(world: ParkingWorld, day: date, clearing: ClearingCycles | None = None) -> CycleSummary:
    world.clock.now = max(world.clock(), day_end(day) + timedelta(seconds=1))
    summary = (clearing or world.container.clearing).run(day).cycle.summary
    assert summary is not None
    return summary


def lines(world: ParkingWorld, day: date) -> list[CycleLine]:
    return list(world.container.clearing.lines.lines(day))


def without_parking_operator(world: ParkingWorld) -> ClearingCycles:
    full = load_packaged()
    operators = {k: v for k, v in full.operators.items() if k != OPERATOR}
    reduced = OperatorMap(operators, full.networks)
    clearing = world.container.clearing
    return replace(clearing, attribution=replace(clearing.attribution, operators=reduced))


def test_suspense_is_placed_with_its_operator_in_a_later_cycle(world: ParkingWorld) -> None:
    a_day(world)
    first = run(world, DAY, without_parking_operator(world))
    parked = [line for line in lines(world, DAY) if line.suspense_code.startswith("parking")]
    assert parked
    assert OPERATOR not in {o.operator_id for o in first.operators}

    second = run(world, DAY + timedelta(days=1))

    placed = [line for line in lines(world, DAY + timedelta(days=1)) if line.resolves]
    held = sum(line.amount_vnd for line in parked)
    by_operator = {o.operator_id: o.revenue_vnd for o in second.operators}
    assert by_operator == {OPERATOR: held}
    assert second.suspense_vnd == -held
    assert {line.resolves for line in placed} == {line_key(DAY, p.line_no) for p in parked}
    assert [line.suspense_code for line in placed if line.in_suspense] == [PLACED] * len(parked)
    third = run(world, DAY + timedelta(days=2))
    assert third.lines == 0
    # The movement no writer explains is tried by every cycle, and stays open for staff.
    still_open = world.container.clearing.lines.open_suspense(DAY + timedelta(days=3), 10)
    assert [line.reference for _, line in still_open] == ["mystery-1"]


def test_a_disputed_line_is_carved_out_and_released_in_later_cycles(world: ParkingWorld) -> None:
    a_day(world)
    run(world, DAY)
    metro_line = next(line for line in lines(world, DAY) if line.operator_id == METRO)
    clearing = world.container.clearing

    assert clearing.dispute(DAY, metro_line.line_no, "gate fault reported by the operator")
    assert not clearing.dispute(DAY, metro_line.line_no, "again")
    with pytest.raises(DisputeNotCarved):
        clearing.release(DAY, metro_line.line_no)
    carved = run(world, DAY + timedelta(days=1))
    assert carved.suspense_vnd == metro_line.amount_vnd
    assert {o.operator_id: o.revenue_vnd for o in carved.operators} == {
        METRO: -metro_line.amount_vnd
    }
    held = [line for line in lines(world, DAY + timedelta(days=1)) if line.in_suspense]
    assert [line.suspense_code for line in held] == [DISPUTED]

    assert clearing.release(DAY, metro_line.line_no)
    released = run(world, DAY + timedelta(days=2))

    assert released.suspense_vnd == -metro_line.amount_vnd
    assert {o.operator_id: o.revenue_vnd for o in released.operators} == {
        METRO: metro_line.amount_vnd
    }
    codes = [
        line.suspense_code for line in lines(world, DAY + timedelta(days=2)) if line.in_suspense
    ]
    assert RELEASED in codes
    later = run(world, DAY + timedelta(days=3))
    assert later.revenue_vnd == 0


def test_only_an_operator_line_of_a_closed_cycle_can_be_disputed(world: ParkingWorld) -> None:
    a_day(world)
    run(world, DAY)
    suspense = next(line for line in lines(world, DAY) if line.in_suspense)
    with pytest.raises(LineNotDisputable):
        world.container.clearing.dispute(DAY, suspense.line_no, "not ours")
    with pytest.raises(LineNotDisputable):
        world.container.clearing.dispute(DAY, 10_000, "no such line")
