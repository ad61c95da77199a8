"""Clearing's benchmark day (`loadtests.clearing_day`), small: written into PostgreSQL through
the product's aggregates and cleared by the product, every movement attributed; the same day
with its journeys' prices stored as releases before leg fares wrote them clears the same."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy.engine import make_url

from clearing.adapters.aggregate_reads import AggregateReads
from loadtests.clearing_day.database import create_database
from loadtests.clearing_day.generate import generate, settings_for
from loadtests.clearing_day.plan import DAY, DaySize
from tapledger.bootstrap import bootstrap
from tests.builders.old_prices import as_version_1
from tests.doubles import Clock
from tests.integration.conftest import DatabaseFactory

pytestmark = pytest.mark.postgres

SMALL = DaySize(journeys=120, sessions=12, top_ups=30)
AFTER_THE_DAY = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def test_a_generated_day_clears_every_movement_to_positions_that_sum_to_zero(
    postgres_database_url: str, tmp_path: Path
) -> None:
    generated = generate(postgres_database_url, tmp_path / "gen", SMALL, DAY)
    assert generated.written.journeys == SMALL.journeys
    assert generated.written.sessions == SMALL.sessions
    container = bootstrap(
        settings_for(postgres_database_url, tmp_path / "run"), clock=Clock(AFTER_THE_DAY)
    )
    try:
        run = container.clearing.run(DAY)
        summary = run.cycle.summary
        assert summary is not None
        # The next day's top-ups, committed after the day, are left to the next cycle.
        head = container.ledger.recorder.max_notification_id() or 0
        assert summary.cut_off < head
        assert summary.movements == generated.movements
        assert summary.suspense_lines == 0
        assert sum(o.revenue_vnd for o in summary.operators) == generated.written.charged_vnd
        [positions] = [path for path in run.files if path.name == "positions.csv"]
        rows = list(csv.DictReader(io.StringIO(positions.read_text())))
        parties = [row for row in rows if row["party"] != "TOTAL"]
        assert sum(int(row["position_vnd"]) for row in parties) == 0
        assert {row["party"] for row in parties} >= {"hanoi-metro", "transerco"}
    finally:
        container.close()


def test_a_section_of_journeys_read_at_once_is_what_the_repository_reads_one_by_one(
    postgres_database_url: str, tmp_path: Path
) -> None:
    generate(postgres_database_url, tmp_path / "gen", DaySize(40, 4, 10), DAY)
    container = bootstrap(settings_for(postgres_database_url, tmp_path / "run"))
    try:
        journeys = container.journeys
        ids = [
            UUID(str(n.originator_id))
            for n in journeys.notification_log.select(start=1, limit=500)
            if n.originator_version == 1
        ]
        nobody = UUID(int=ids[0].int ^ 1)
        found = AggregateReads(journeys).get_many([*ids, nobody])
        assert set(found) == set(ids)
        for journey_id in ids:
            one: Any = journeys.repository.get(journey_id)
            assert vars(found[journey_id]) == vars(one)
    finally:
        container.close()


def cleared(database_url: str, data_dir: Path) -> tuple[str, dict[str, bytes]]:
    """The day's cycle on `database_url`: its lines' digest and its files' bytes by name."""
    container = bootstrap(settings_for(database_url, data_dir), clock=Clock(AFTER_THE_DAY))
    try:
        run = container.clearing.run(DAY)
        summary = run.cycle.summary
        assert summary is not None
        assert summary.suspense_lines == 0
        return summary.lines_sha256, {path.name: path.read_bytes() for path in run.files}
    finally:
        container.close()


def test_a_day_priced_before_leg_fares_were_recorded_clears_to_the_same_lines_and_files(
    postgres_database_url: str, database_factory: DatabaseFactory, tmp_path: Path
) -> None:
    generate(postgres_database_url, tmp_path / "gen", SMALL, DAY)
    source = make_url(postgres_database_url).database
    assert source is not None
    old_name = f"{source}_old"
    old_url = create_database(database_factory.server_url, old_name, template=source)
    database_factory.created.append(old_name)
    with psycopg.connect(old_url, autocommit=True) as conn:
        assert as_version_1(conn) >= SMALL.journeys

    digest, files = cleared(postgres_database_url, tmp_path / "recorded")
    old_digest, old_files = cleared(old_url, tmp_path / "old")

    assert old_digest == digest
    assert old_files == files
    assert "SHA256SUMS" in files
