"""On PostgreSQL a cycle reads its events straight from the tables: the journeys as their legs,
the ledger's money events by their fields. What it reads is what the repository and the
notification log give, on a day written by the benchmark's generator: a journey priced since
its legs last changed as that pricing recorded it, one priced before pricing recorded its legs'
fares as its legs; a parking aggregate as the event that created it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from clearing.adapters.journey_reads import JourneyLegReads
from clearing.adapters.log_reads import LOG_PAGE_MAX
from clearing.adapters.parking_reads import ParkingOperatorReads
from clearing.application.ledger_movements import MONEY_TOPICS, ledger_movements
from clearing.domain.aggregate_operators import AggregateOperator
from clearing.domain.journey_legs import JourneyLegs, PricedJourney, priced_legs
from clearing.domain.movements import ledger_entry
from loadtests.clearing_day.generate import generate, settings_for
from loadtests.clearing_day.plan import DAY, DaySize
from tapledger.bootstrap import Container, bootstrap
from tests.builders.old_prices import as_version_1
from tests.integration.conftest import DatabaseFactory
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.domain.journey import Journey

pytestmark = pytest.mark.postgres

SIZE = DaySize(journeys=60, sessions=6, top_ups=15)
LOG_SECTION = 500


@pytest.fixture(scope="module")
def day(
    tmp_path_factory: pytest.TempPathFactory, database_factory: DatabaseFactory
) -> Iterator[str]:
    url = database_factory.create()
    generate(url, tmp_path_factory.mktemp("gen"), SIZE, DAY)
    yield url
    database_factory.drop(url)


def opened(url: str, tmp_path: Path) -> Container:
    return bootstrap(settings_for(url, tmp_path / "run"))


def test_journeys_read_as_their_legs_are_the_repositorys(day: str, tmp_path: Path) -> None:
    container = opened(day, tmp_path)
    try:
        journeys = container.journeys
        ids = [
            UUID(str(n.originator_id))
            for n in journeys.notification_log.select(start=1, limit=LOG_SECTION)
            if n.topic == Journey.Started.TOPIC
        ]
        assert len(ids) > 10
        nobody = UUID(int=ids[0].int ^ 1)
        found = JourneyLegReads(journeys).get_many([*ids, nobody])
        assert set(found) == set(ids)
        standalone = StandaloneFares(journeys.fares)
        for journey_id in ids:
            one: Journey = journeys.repository.get(journey_id)
            read = found[journey_id]
            # Every journey of the day was priced after its last leg: read from that event.
            assert isinstance(read, PricedJourney)
            assert one.leg_fares is not None
            assert read.legs == priced_legs(one.leg_fares)
            assert [leg.network_id for leg in read.legs] == [leg.network_id for leg in one.legs]
            assert [leg.fare_vnd for leg in read.legs] == [
                standalone.fare(leg, one.rider_category, one.fare_media) for leg in one.legs
            ]
    finally:
        container.close()


def test_journeys_priced_before_pricing_recorded_leg_fares_are_read_as_their_legs(
    postgres_database_url: str, tmp_path: Path
) -> None:
    day = postgres_database_url
    generate(day, tmp_path / "gen", DaySize(journeys=30, sessions=0, top_ups=8), DAY)
    container = opened(day, tmp_path)
    try:
        journeys = container.journeys
        ids = [
            UUID(str(n.originator_id))
            for n in journeys.notification_log.select(start=1, limit=LOG_SECTION)
            if n.topic == Journey.Started.TOPIC
        ]
        old = ids[::2]
        with psycopg.connect(day, autocommit=True) as conn:
            assert as_version_1(conn, old) >= len(old)
        found = JourneyLegReads(journeys).get_many(ids)
        assert set(found) == set(ids)
        for journey_id in ids:
            one: Journey = journeys.repository.get(journey_id)
            read = found[journey_id]
            if journey_id in old:
                assert one.leg_fares is None
                assert isinstance(read, JourneyLegs)
                assert list(read.legs) == one.legs
                assert (read.rider_category, read.fare_media) == (
                    one.rider_category,
                    one.fare_media,
                )
            else:
                assert isinstance(read, PricedJourney)
    finally:
        container.close()


def test_parking_aggregates_read_by_their_first_event_have_the_repositorys_operator(
    day: str, tmp_path: Path
) -> None:
    container = opened(day, tmp_path)
    try:
        parking = container.parking.store
        ids = [
            UUID(str(n.originator_id))
            for n in parking.notification_log.select(start=1, limit=LOG_SECTION)
            if n.originator_version == 1
        ]
        assert ids
        nobody = UUID(int=ids[0].int ^ 1)
        found = ParkingOperatorReads(parking).get_many([*ids, nobody])
        assert set(found) == set(ids)
        for aggregate_id in ids:
            one: Any = parking.repository.get(aggregate_id)
            read = found[aggregate_id]
            assert isinstance(read, AggregateOperator)
            assert read.kind is type(one)
            assert read.operator_id == one.operator_id
    finally:
        container.close()


def test_money_movements_read_by_their_fields_are_the_notification_logs(
    day: str, tmp_path: Path
) -> None:
    container = opened(day, tmp_path)
    try:
        ledger = container.ledger
        head = ledger.recorder.max_notification_id() or 0
        expected = []
        start = 1
        while notifications := ledger.notification_log.select(
            start=start, limit=LOG_SECTION, topics=MONEY_TOPICS
        ):
            for notification in notifications:
                entry = ledger_entry(notification.id, ledger.mapper.to_domain_event(notification))
                assert entry is not None
                expected.append(entry)
            start = notifications[-1].id + 1
        read = list(ledger_movements(ledger, 0, head))
        assert len(read) == len(expected) > LOG_PAGE_MAX // 100
        for item, entry in zip(read, expected, strict=True):
            assert item.notification_id == entry.notification_id
            assert item.at == entry.at
            assert (item.movement.account_id, item.movement.reference) == (
                entry.account_id,
                entry.reference,
            )
            assert (item.movement.kind, item.movement.amount_vnd) == (entry.kind, entry.amount_vnd)
    finally:
        container.close()
