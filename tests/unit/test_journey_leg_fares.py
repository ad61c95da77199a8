"""A journey's pricing records each leg's network, route and standalone fare and the feed that
priced them (`Journey.Priced` version 2); clearing splits the journey's money by what was
recorded, and a journey priced before pricing recorded them by its legs priced again."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent

from clearing.adapters.fast_events import StateFields
from clearing.adapters.operator_files import load_packaged
from clearing.application.ledger_movements import ledger_movements
from clearing.application.revenue_lines import (
    Line,
    OperatorLine,
    RevenueAttribution,
    RiderLegs,
    fare_engine_standalone,
    parking_store_operators,
)
from clearing.domain.journey_legs import PricedJourney, PricedLeg, priced_legs
from tests.builders.clearing_day import a_day, head
from tests.builders.journeys import register_validators
from tests.builders.parking import OPERATOR, ParkingWorld, parking_world
from ticketing.fares.engine import FareEngine
from ticketing.fares.journey_fares import price
from ticketing.fares.loader import HANOI_FEED_DIR, load_feed
from ticketing.journeys.application.fare_steps import record_fare
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.shared.domain.invariants import InvariantViolated

BOARDED = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
METRO, BUS = "hanoi-metro", "transerco"
PRICED_V2_FIELDS = ("leg_fares", "feed_version")


@pytest.fixture(scope="module")
def engine() -> FareEngine:
    return FareEngine(load_feed(HANOI_FEED_DIR))


def a_leg(at: datetime, *, metro: bool = False, ended: bool = True) -> Leg:
    return Leg(
        mode="metro" if metro else "bus",
        network_id="metro_2a" if metro else "bus_15k",
        route_id="2A" if metro else "107",
        from_stop_id="2A-05" if metro else "bus-long-bien",
        to_stop_id=("2A-10" if metro else "bus-my-dinh") if ended else None,
        departure=at,
        arrival=at + timedelta(minutes=15) if ended else None,
        entry_tap=str(uuid4()),
        exit_tap=str(uuid4()) if ended else None,
    )


def a_journey(first: Leg) -> Journey:
    return Journey.start(
        first_tap_id=uuid4(),
        account_id=uuid4(),
        paid_from=PaidFrom.ACCOUNT,
        rider_category="elderly",
        fare_media="transit_card",
        service_day="2026-11-23",
        leg=first,
        at=BOARDED,
    )


def priced(journey: Journey, standalone: StandaloneFares) -> Journey.Priced:
    complete = [leg for leg in journey.legs if leg.complete]
    fare = price(standalone.engine, complete, journey.rider_category, journey.fare_media)
    record_fare(journey, fare, BOARDED, standalone)
    event = journey.pending_events[-1]
    assert isinstance(event, Journey.Priced)
    return event


def test_a_priced_journey_records_each_legs_standalone_fare_and_the_feed_version(
    engine: FareEngine,
) -> None:
    standalone = StandaloneFares(engine)
    journey = a_journey(a_leg(BOARDED))
    event = priced(journey, standalone)
    journey.add_leg(leg=a_leg(BOARDED + timedelta(minutes=20), metro=True, ended=False), at=BOARDED)
    second = priced(journey, standalone)

    bus_vnd = standalone.fare(journey.legs[0], "elderly", "transit_card")
    metro_vnd = standalone.fare(journey.legs[1], "elderly", "transit_card")
    assert bus_vnd is not None
    assert bus_vnd > 0
    assert metro_vnd is not None
    assert metro_vnd > 0
    assert event.leg_fares == [{"network_id": "bus_15k", "route_id": "107", "fare_vnd": bus_vnd}]
    assert second.leg_fares == [
        {"network_id": "bus_15k", "route_id": "107", "fare_vnd": bus_vnd},
        {"network_id": "metro_2a", "route_id": "2A", "fare_vnd": metro_vnd},
    ]
    assert second.feed_version == engine.feed.version
    assert len(engine.feed.version) == 16
    assert journey.leg_fares == second.leg_fares


def test_a_leg_with_no_start_has_no_standalone_fare(engine: FareEngine) -> None:
    exit_first = Leg(
        mode="metro",
        network_id="metro_2a",
        route_id="2A",
        from_stop_id=None,
        to_stop_id="2A-10",
        departure=None,
        arrival=BOARDED,
        entry_tap=None,
        exit_tap=str(uuid4()),
    )
    assert StandaloneFares(engine).fare(exit_first, "regular", "transit_card") is None


def test_pricing_refuses_leg_fares_that_are_not_one_per_leg() -> None:
    journey = a_journey(a_leg(BOARDED))
    with pytest.raises(InvariantViolated):
        journey.price(
            fare_vnd=7_000,
            reference_vnd=None,
            transfer_discount_vnd=0,
            at=BOARDED,
            leg_fares=[],
            feed_version="0" * 16,
        )


def test_the_recorded_leg_fares_are_forgotten_whenever_the_legs_change(
    engine: FareEngine,
) -> None:
    standalone = StandaloneFares(engine)
    journey = a_journey(a_leg(BOARDED, ended=False))
    assert journey.leg_fares is None
    journey.end_leg(leg=a_leg(BOARDED), at=BOARDED)
    priced(journey, standalone)
    assert journey.leg_fares is not None

    journey.add_leg(leg=a_leg(BOARDED + timedelta(minutes=20), metro=True, ended=False), at=BOARDED)
    assert journey.leg_fares is None
    priced(journey, standalone)
    journey.end_leg(leg=a_leg(BOARDED + timedelta(minutes=20), metro=True), at=BOARDED)
    assert journey.leg_fares is None
    priced(journey, standalone)
    journey.repair_legs(first_index=1, legs=[a_leg(BOARDED + timedelta(minutes=18))], at=BOARDED)
    assert journey.leg_fares is None
    priced(journey, standalone)
    later = a_journey(a_leg(BOARDED + timedelta(minutes=70), metro=True))
    priced(later, standalone)
    journey.join_legs(later, at=BOARDED)
    assert journey.leg_fares is None
    assert priced(journey, standalone).leg_fares == journey.leg_fares
    assert journey.leg_fares is not None
    assert len(journey.leg_fares) == len(journey.legs) == 3


def version_1(stored: StoredEvent) -> StoredEvent:
    """A `Priced` event as releases before leg fares stored it: no such fields, no version."""
    state = json.loads(stored.state)
    for name in (*PRICED_V2_FIELDS, "class_version"):
        del state[name]
    return StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, json.dumps(state).encode()
    )


def test_a_priced_event_stored_before_leg_fares_is_read_with_none(engine: FareEngine) -> None:
    app = Application[UUID]()
    journey = a_journey(a_leg(BOARDED))
    event = priced(journey, StandaloneFares(engine))
    stored = app.mapper.to_stored_event(event)
    assert json.loads(stored.state)["class_version"] == 2
    old = version_1(stored)

    upcast = app.mapper.to_domain_event(old)
    assert isinstance(upcast, Journey.Priced)
    assert (upcast.leg_fares, upcast.feed_version) == (None, None)
    assert upcast.fare_vnd == event.fare_vnd
    again = app.mapper.to_domain_event(stored)
    assert again.leg_fares == event.leg_fares  # type: ignore[attr-defined]

    fields = StateFields(app)
    cls = Journey.Priced
    assert fields.fields(stored, cls, PRICED_V2_FIELDS) == {
        "leg_fares": event.leg_fares,
        "feed_version": engine.feed.version,
    }
    assert fields.fields(old, cls, PRICED_V2_FIELDS) == {"leg_fares": None, "feed_version": None}


def test_a_feed_version_names_the_files_read() -> None:
    texts = {path.name: path.read_text(encoding="utf-8-sig") for path in HANOI_FEED_DIR.iterdir()}
    same = load_feed(dict(texts)).version
    assert same == load_feed(HANOI_FEED_DIR).version
    assert load_feed({**texts, "not_a_feed_file.txt": "x"}).version == same
    products = texts["fare_products.txt"]
    changed = load_feed({**texts, "fare_products.txt": products.replace("7000", "7001", 1)})
    assert "7000" in products
    assert changed.version != same


# Clearing: the split by what the pricing recorded.


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ParkingWorld]:
    with parking_world(tmp_path) as built:
        register_validators(built.container.taps)
        yield built


class WithoutLegFares:
    """The world's journeys as if priced before pricing recorded their legs' fares."""

    def __init__(self, world: ParkingWorld) -> None:
        self.journeys = world.container.journeys

    def get_journey(self, journey_id: UUID) -> RiderLegs | None:
        journey = self.journeys.get_journey(journey_id)
        if journey is None:
            return None
        old = copy.copy(journey)
        old.leg_fares = None
        return old


def totals(world: ParkingWorld, journeys: object, standalone_vnd: int | None) -> Counter[str]:
    """Each operator's revenue of the day with every leg priced again at `standalone_vnd`
    (None: by the fare engine)."""
    container = world.container
    standalone = fare_engine_standalone(container.journeys.fares)
    attribution = RevenueAttribution(
        operators=load_packaged(),
        journeys=journeys,  # type: ignore[arg-type]
        parking_operator_of=parking_store_operators(container.parking.store),
        standalone_fare=standalone if standalone_vnd is None else lambda _j, _leg: standalone_vnd,
    )
    lines: list[Line] = list(
        attribution.revenue_lines(ledger_movements(container.ledger, 0, head(world)))
    )
    found: Counter[str] = Counter()
    for line in lines:
        if isinstance(line, OperatorLine):
            found[line.operator_id] += line.amount_vnd
    return found


def test_a_journey_is_split_by_the_fares_its_pricing_recorded_not_by_the_feed_now(
    world: ParkingWorld,
) -> None:
    a_day(world)
    journeys = world.container.journeys
    today = totals(world, journeys, None)
    # The day's transfer (bus 10,000 then metro 8,000) splits 10:8, as the feed prices them.
    assert today[METRO] > 15_000
    assert today[BUS] > 10_000
    assert today[OPERATOR] > 0

    # A feed pricing every leg alone the same would split the transfer equally; the journeys
    # recorded their fares, so their split does not move.
    assert totals(world, journeys, 1_000) == today
    # Journeys priced before pricing recorded fares are priced again: equal shares now.
    again = totals(world, WithoutLegFares(world), 1_000)
    assert again != today
    assert sum(again.values()) == sum(today.values())
    assert totals(world, WithoutLegFares(world), None) == today


def test_a_priced_journeys_legs_give_the_recorded_networks_and_fares() -> None:
    recorded: list[dict[str, Any]] = [
        {"network_id": "bus_15k", "route_id": "107", "fare_vnd": 10_000},
        {"network_id": "metro_2a", "route_id": "2A", "fare_vnd": None},
    ]
    journey = PricedJourney(uuid4(), priced_legs(recorded))
    assert journey.legs == (PricedLeg("bus_15k", 10_000), PricedLeg("metro_2a", None))
