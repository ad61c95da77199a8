"""Clearing attributes a section of movements at once: the journeys and parking aggregates the
section names are read in one call each, and the lines are the lines of one movement at a time.
Standalone fares are remembered by leg shape, and are the engine's."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from clearing.adapters.aggregate_reads import AggregateReads
from clearing.adapters.operator_files import load_packaged
from clearing.application.ledger_movements import ledger_movements
from clearing.application.revenue_lines import (
    RevenueAttribution,
    fare_engine_standalone,
    parking_store_operators,
)
from tests.builders.clearing_day import a_day, head
from tests.builders.journeys import register_validators
from tests.builders.parking import ParkingWorld, parking_world
from ticketing.fares.journey_fares import price


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


class CountedReads:
    """A batch reader that counts its calls and the ids it was asked for."""

    def __init__(self, reads: AggregateReads) -> None:
        self.reads = reads
        self.calls: list[set[UUID]] = []

    def get_many(self, ids: Collection[UUID]) -> Mapping[UUID, Any]:
        self.calls.append(set(ids))
        return self.reads.get_many(ids)


class NoReads:
    """A journey source that fails the test if a journey is read one by one."""

    def get_journey(self, journey_id: UUID) -> None:
        raise AssertionError(f"journey {journey_id} was read alone")


def test_a_section_reads_its_aggregates_once_and_gives_the_lines_of_one_at_a_time(
    world: ParkingWorld,
) -> None:
    a_day(world)
    container = world.container
    one_by_one = RevenueAttribution(
        operators=load_packaged(),
        journeys=container.journeys,
        parking_operator_of=parking_store_operators(container.parking.store),
        standalone_fare=fare_engine_standalone(container.journeys.fares),
    )
    journeys = CountedReads(AggregateReads(container.journeys))
    parking = CountedReads(AggregateReads(container.parking.store))
    batched = dataclasses.replace(
        one_by_one, journeys=NoReads(), journey_batches=journeys, parking_batches=parking
    )
    section = list(ledger_movements(container.ledger, 0, head(world)))

    attributing = batched.for_section(section)
    lines = [line for item in section for line in attributing.lines_of(item)]

    assert lines == [line for item in section for line in one_by_one.lines_of(item)]
    assert len(journeys.calls) == 1
    assert len(journeys.calls[0]) == 3  # the metro, the bus and the bus-then-metro journeys
    assert len(parking.calls) == 1


def test_a_section_naming_nothing_to_read_reads_nothing(world: ParkingWorld) -> None:
    container = world.container
    journeys = CountedReads(AggregateReads(container.journeys))
    attribution = RevenueAttribution(
        operators=load_packaged(),
        journeys=NoReads(),
        parking_operator_of=parking_store_operators(container.parking.store),
        journey_batches=journeys,
    )
    world.open_account()  # a top-up: nobody's revenue

    section = list(ledger_movements(container.ledger, 0, head(world)))

    assert section
    assert attribution.for_section(section) is attribution
    assert journeys.calls == []


def test_standalone_fares_remembered_by_leg_shape_are_the_engines(world: ParkingWorld) -> None:
    a_day(world)
    engine = world.container.journeys.fares
    standalone = fare_engine_standalone(engine)
    journeys = [world.container.journeys.get_journey(line_id) for line_id in _journey_ids(world)]
    for journey in journeys:
        assert journey is not None
        for leg in journey.legs:
            fare = price(engine, [leg], journey.rider_category, journey.fare_media)
            expected = (
                fare.reference_total_vnd if fare.reference_total_vnd is not None else fare.total_vnd
            )
            assert standalone(journey, leg) == expected
            assert standalone(journey, leg) == expected  # remembered, the same


def _journey_ids(world: ParkingWorld) -> list[UUID]:
    log = world.container.journeys.notification_log.select(start=1, limit=500)
    started = [UUID(str(n.originator_id)) for n in log if "Journey.Started" in n.topic]
    return list(dict.fromkeys(started))
