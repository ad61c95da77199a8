"""A generated day in a database of its own: the product built on it by its composition root,
the day written, a few movements of the next day after it (so the cycle's cut-off is found by
the day's end, not by the head of the log), and the tables analysed for the planner."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import psycopg

from loadtests.clearing_day.ledger_book import LedgerBook
from loadtests.clearing_day.plan import HANOI, DaySize
from loadtests.clearing_day.writer import Stores, Written, save_events, write_day
from tapledger.bootstrap import bootstrap
from tapledger.settings import Settings
from ticketing.accounts.domain.commands import TopUp

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
        # The run's own composition root makes clearing's tables, in the schema of its code.
        conn.execute("DROP TABLE IF EXISTS clearing_lines")
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
    save_events(stores.ledger, book.take())
