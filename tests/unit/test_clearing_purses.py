"""A card purse's payment at a validator is revenue of the journey's operators in the cycle
of the day it was recorded, and the refund the journey follower gives back reverses it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from clearing.adapters.line_table import SqlLineStore
from clearing.adapters.operator_files import load_packaged
from clearing.adapters.terms_files import load_packaged_terms
from clearing.application.cycles import ClearingCycles
from clearing.application.revenue_lines import fare_engine_standalone
from clearing.application.service import build_clearing
from clearing.domain.business_day import day_end
from tests.builders.journeys import DAY, World, build
from tests.builders.purse_refunds import MAX_FROM_CAT_LINH_VND, enter, leave, rider_with_card
from ticketing.journeys.application.pricing_lock import InProcessPricingLock

METRO = "hanoi-metro"
NEXT_DAY = DAY + timedelta(days=1)
CAT_LINH_TO_LA_THANH_VND = 8_000


class NoParking:
    def read_or_none(self, _aggregate_id: object) -> None:
        return None


@pytest.fixture
def world() -> World:
    return build()


def clearing_of(world: World, tmp_path: Path) -> ClearingCycles:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    SqlLineStore(engine).create_tables()
    return build_clearing(
        {},
        ledger=world.ledger,
        journeys=world.journeys,
        journey_log=world.journeys,
        parking=NoParking(),
        standalone_fare=fare_engine_standalone(world.journeys.fares),
        operators=load_packaged(),
        terms=load_packaged_terms(),
        engine=engine,
        files_root=tmp_path,
        lock=InProcessPricingLock(),
        clock=world.clock,
    )


def test_a_purse_paid_metro_ride_is_the_metro_s_revenue_less_its_refund(
    world: World, tmp_path: Path
) -> None:
    _, card = rider_with_card(world)
    enter(world, card, 0)
    leave(world, card, 5)
    world.follow()
    world.clock.now = day_end(DAY)

    summary = clearing_of(world, tmp_path).run(DAY).cycle.summary

    assert summary is not None
    [metro] = summary.operators
    assert metro.operator_id == METRO
    assert metro.revenue_vnd == CAT_LINH_TO_LA_THANH_VND
    # The purse's payment at the entry gate, the 0 it paid at the exit, the refund after it.
    assert metro.lines == 3
    assert summary.suspense_lines == 0
    assert summary.purse_cut_off > 0


def test_a_purse_payment_recorded_after_the_day_is_in_the_next_cycle(
    world: World, tmp_path: Path
) -> None:
    _, card = rider_with_card(world)
    clearing = clearing_of(world, tmp_path)
    world.clock.now = day_end(DAY)
    first = clearing.run(DAY).cycle.summary
    enter(world, card, 24 * 60)  # the next morning
    world.follow()
    world.clock.now = day_end(NEXT_DAY)

    second = clearing.run(NEXT_DAY).cycle.summary

    assert first is not None
    assert second is not None
    assert first.revenue_vnd == 0
    assert second.revenue_vnd == MAX_FROM_CAT_LINH_VND
    assert second.purse_cut_off > first.purse_cut_off
