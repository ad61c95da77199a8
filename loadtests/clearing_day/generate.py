"""A generated day in a database of its own: the product built on it by its composition root,
the day written, a few movements of the next day after it (so the cycle's cut-off is found by
the day's end, not by the head of the log), and the tables analysed for the planner."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import psycopg

from loadtests.clearing_day.ledger_book import LedgerBook
from loadtests.clearing_day.plan import HANOI, DaySize
from loadtests.clearing_day.writer import Stores, Written, write_day
from tapledger.bootstrap import bootstrap
from tapledger.settings import Settings
from ticketing.accounts.domain.commands import TopUp

# eventsourcing's PostgreSQL store inserts a save's events one statement each in a pipeline;
# with its database function it inserts them in one statement (`unnest`), several times faster.
# The function writes the same rows, but without the table lock that orders the commits of
# concurrent writers: right for the generator, the only writer, and not for the product.
FAST_INSERTS = {"POSTGRES_ENABLE_DB_FUNCTIONS": "y"}
NEXT_DAY_TOP_UPS = 3
NEXT_DAY_TOP_UP_VND = 50_000


@dataclass(frozen=True)
class Generated:
    written: Written
    movements: int  # the day's money movements on the ledger (the cycle's, not the next day's)
    seconds: float


def settings_for(database_url: str, data_dir: Path) -> Settings:
    return Settings(environment="local", database_url=database_url, data_dir=data_dir)


def generate(
    database_url: str,
    data_dir: Path,
    size: DaySize,
    day: date,
    progress: Callable[[Written], None] | None = None,
) -> Generated:
    began = time.perf_counter()
    # eventsourcing reads its settings from the process's environment too.
    os.environ.update(FAST_INSERTS)
    container = bootstrap(settings_for(database_url, data_dir))
    try:
        stores = Stores(
            ledger=container.ledger,
            journeys=container.journeys,
            parking=container.parking.store,
            fares=container.journeys.fares,
        )
        written = write_day(stores, size, day, progress)
        _next_day(stores, day)
    finally:
        container.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return Generated(written, written.movements, time.perf_counter() - began)


def _next_day(stores: Stores, day: date) -> None:
    """Top-ups the ledger records after the day's end, after every movement of the day."""
    book = LedgerBook()
    day_end = datetime.combine(day + timedelta(days=1), day_time(0, 0), HANOI)
    account = book.open(0, day_end)
    for n in range(NEXT_DAY_TOP_UPS):
        at = day_end + timedelta(minutes=n + 1)
        book.apply(TopUp(account.id, NEXT_DAY_TOP_UP_VND, f"next-day-{n}"), at)
    stores.ledger.save(*book.take())
