"""The same clearing cycle on PostgreSQL as on the embedded store: one day of journeys and
parking, closed on each, gives the same positions, statements and settlement file byte for
byte, and the same lines (their notification ids are each store's own); a re-run on
PostgreSQL writes the same bytes, and the bank's statement settles the cycle there too."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from clearing.adapters.camt053 import read_camt053
from clearing.domain.business_day import day_end
from clearing.domain.cycle import CycleState
from tests.builders.clearing_day import a_day
from tests.builders.journeys import register_validators
from tests.builders.parking import MORNING, parking_world

pytestmark = pytest.mark.postgres

DAY = MORNING.date()
PAID = Path(__file__).parents[1] / "data" / "iso20022" / "camt053-v08-cycle-20261123-paid.xml"


def cleared_files(data_dir: Path, database_url: str | None = None) -> dict[str, bytes]:
    """The files of the day's cycle, run twice on one store (the second must change nothing)."""
    with parking_world(data_dir, database_url=database_url) as world:
        dialect = "sqlite" if database_url is None else "postgresql"
        assert world.container.engine.dialect.name == dialect
        register_validators(world.container.taps)
        a_day(world)
        world.clock.now = day_end(DAY) + timedelta(minutes=5)
        first = world.container.clearing.run(DAY)
        files = {path.name: path.read_bytes() for path in first.files}
        again = world.container.clearing.run(DAY)
        assert {path.name: path.read_bytes() for path in again.files} == files
        assert again.cycle.version == first.cycle.version
        [outcome] = world.container.clearing.confirm(read_camt053(PAID.read_bytes()))
        assert outcome.cycle.state is CycleState.SETTLED
        return files


def without_notification_ids(data: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(data.decode())))
    column = rows[0].index("notification_id")
    return [row[:column] + row[column + 1 :] for row in rows]


def test_a_cycle_on_postgresql_writes_what_it_writes_on_sqlite(
    postgres_database_url: str, tmp_path: Path
) -> None:
    on_sqlite = cleared_files(tmp_path / "sqlite")
    on_postgres = cleared_files(tmp_path / "postgres", database_url=postgres_database_url)

    assert sorted(on_postgres) == sorted(on_sqlite)
    for name, data in on_postgres.items():
        if name.startswith(("lines-", "suspense")):
            assert without_notification_ids(data) == without_notification_ids(on_sqlite[name])
        elif name != "SHA256SUMS":
            assert data == on_sqlite[name], name
    assert b"TL-20261123-transerco" in on_postgres["TL-20261123-000001.xml"]
