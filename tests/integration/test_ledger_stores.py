"""The ledger on each store it runs on, the embedded SQLite file and PostgreSQL: events stored
and replayed, repeats, batches, and followers building and rebuilding the read model.

Every test here runs once per store through `store_settings`; what only one store has (the
default file under the data dir, threads or processes racing) stays in that store's own file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from tapledger.bootstrap import Container, bootstrap, make_engine
from tapledger.settings import Settings
from tests.doubles import Clock
from tests.integration.conftest import (
    HOLD_TTL_S,
    T0,
    account_event_count,
    assert_read_model_matches,
    events_of,
    follow_with_two_followers,
    record_history,
    settings_for,
)
from ticketing.accounts.application.ledger import Ledger, Receipt
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp
from ticketing.accounts.domain.errors import InsufficientFunds, TransferConflict
from ticketing.accounts.domain.transfer import HoldOutcome
from ticketing.shared.adapters.event_recorders import PostgresEventRecorder

SQLITE = "sqlite"
POSTGRES = "postgres"
# Each store names its events table its own way.
SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = "ledger_events"
# Small sections make the two followers meet often, each section a race for the position.
RACE_SECTION_SIZE = 7


@pytest.fixture(
    params=[
        pytest.param(SQLITE, id="sqlite-file"),
        pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Local-mode settings on the SQLite file in `tmp_path`, or on a fresh PostgreSQL database
    (asked for only by the PostgreSQL param, so the SQLite one runs without a server)."""
    if request.param == POSTGRES:
        return settings_for(tmp_path, request.getfixturevalue("postgres_database_url"))
    return settings_for(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def container(store_settings: Settings, clock: Clock) -> Iterator[Container]:
    container = bootstrap(store_settings, clock=clock)
    yield container
    container.close()


def _expected_recorder(settings: Settings) -> type[ApplicationRecorder]:
    """The library's SQLite recorder, or tapledger's PostgreSQL one (the library's, with its
    cheaper write)."""
    return SQLiteApplicationRecorder if settings.postgres_url is None else PostgresEventRecorder


def _stored_event_count(settings: Settings, originator_id: UUID) -> int:
    """The account's rows in the store itself, read with the store's own driver."""
    row: tuple[Any, ...] | None
    if settings.postgres_url is None:
        with closing(sqlite3.connect(settings.sqlite_path)) as sqlite_conn:
            row = sqlite_conn.execute(
                f"SELECT count(*) FROM {SQLITE_EVENTS_TABLE} WHERE originator_id = ?",  # noqa: S608
                (originator_id.hex,),  # the SQLite store keeps ids as 32 hex digits
            ).fetchone()
    else:
        with psycopg.connect(settings.postgres_url) as pg_conn:
            row = pg_conn.execute(
                f"SELECT count(*) FROM {POSTGRES_EVENTS_TABLE} WHERE originator_id = %s",  # noqa: S608
                (originator_id,),
            ).fetchone()
    assert row is not None
    return int(row[0])


def test_events_are_stored_in_the_store_and_replayed_by_a_new_ledger(
    container: Container, store_settings: Settings, clock: Clock
) -> None:
    ledger = container.ledger
    assert type(ledger.recorder) is _expected_recorder(store_settings)
    account_id = ledger.open_account(rider_category=0, display_name="Nguyen Van An").id
    ledger.execute(TopUp(account_id, 50_000, "bank-1001"))
    ledger.execute(PlaceHold(account_id, "metro-entry-1", 20_000, HOLD_TTL_S, "Cat Linh"))
    ledger.execute(PostHold(account_id, "metro-entry-1", 12_000))

    # Opened, ToppedUp, HoldPlaced, HoldPosted: all four rows are in the store itself.
    assert _stored_event_count(store_settings, account_id) == 4

    replaying = Ledger(store_settings.event_store_env(create_tables=False), clock=clock)
    try:
        account = replaying.get_account(account_id)
        assert (account.posted_vnd, account.pending_vnd, account.version) == (38_000, 0, 4)
        assert account.display_name == "Nguyen Van An"
        assert account.holds == {}
        hold = replaying.get_transfer("metro-entry-1")
        assert hold is not None
        assert (hold.outcome, hold.posted_vnd) == (HoldOutcome.POSTED, 12_000)
    finally:
        replaying.close()


def test_repeated_transfer_id_is_one_effect_and_a_conflicting_repeat_is_refused(
    container: Container, store_settings: Settings
) -> None:
    ledger = container.ledger
    other = Ledger(store_settings.event_store_env(create_tables=False))
    try:
        account_id = ledger.open_account(rider_category=0).id
        first = ledger.execute(TopUp(account_id, 30_000, "bank-42"))
        again = ledger.execute(TopUp(account_id, 30_000, "bank-42"))
        # Another process sees the same transfer through the store, not through memory.
        elsewhere = other.execute(TopUp(account_id, 30_000, "bank-42"))
        assert [first.replayed, again.replayed, elsewhere.replayed] == [False, True, True]
        assert again.amount_vnd == elsewhere.amount_vnd == 30_000

        ledger.execute(Debit(account_id, "fare-7", 7_000, "bus 32"))
        assert other.execute(Debit(account_id, "fare-7", 7_000, "bus 32")).replayed

        conflicting: list[Command] = [
            TopUp(account_id, 31_000, "bank-42"),
            Debit(account_id, "fare-7", 8_000, "bus 32"),
            PlaceHold(account_id, "fare-7", 7_000, HOLD_TTL_S),
        ]
        for command in conflicting:
            for executor in (ledger, other):
                with pytest.raises(TransferConflict):
                    executor.execute(command)

        account = other.get_account(account_id)
        assert (account.posted_vnd, account.version) == (23_000, 3)
        assert len(events_of(other, account_id, TransportAccount.ToppedUp)) == 1
        assert len(events_of(other, account_id, TransportAccount.Debited)) == 1
    finally:
        other.close()


def test_atomic_batch_with_one_refused_command_stores_the_others(
    container: Container, store_settings: Settings
) -> None:
    ledger = container.ledger
    first_id = ledger.open_account(rider_category=0).id
    second_id = ledger.open_account(rider_category=1).id
    results = ledger.execute_batch(
        [
            TopUp(first_id, 50_000, "bank-1"),
            Debit(first_id, "fare-1", 10_000),
            Debit(first_id, "fare-2", 1_000_000),
            PlaceHold(first_id, "parking-1", 5_000, HOLD_TTL_S),
            TopUp(second_id, 20_000, "bank-2"),
        ]
    )
    assert [type(r) for r in results] == [Receipt, Receipt, InsufficientFunds, Receipt, Receipt]
    assert not any(r.replayed for r in results if isinstance(r, Receipt))

    replaying = Ledger(store_settings.event_store_env(create_tables=False))
    try:
        first = replaying.get_account(first_id)
        second = replaying.get_account(second_id)
        assert (first.posted_vnd, first.pending_vnd, first.version) == (40_000, 5_000, 4)
        assert (second.posted_vnd, second.version) == (20_000, 2)
        assert replaying.get_transfer("fare-1") is not None
        assert replaying.get_transfer("fare-2") is None, "a refused command leaves no record"
    finally:
        replaying.close()


def test_follower_builds_the_read_model_equal_to_the_aggregates_and_rebuilds_it_identically(
    container: Container, clock: Clock
) -> None:
    ledger, follower, read_model = container.ledger, container.follower, container.read_model
    account_ids = record_history(ledger, clock, tag="history")
    events = account_event_count(ledger, account_ids)

    assert follower.catch_up() == events
    assert follower.lag() == 0
    assert follower.catch_up() == 0, "nothing is applied twice"
    assert assert_read_model_matches(ledger, read_model, account_ids) == events

    pending = {
        (account_id, hold_id)
        for account_id in account_ids
        for hold_id in ledger.get_account(account_id).holds
    }
    assert pending
    assert len(pending) == len(account_ids) - 1  # the closed account holds nothing
    later = clock() + timedelta(seconds=HOLD_TTL_S + 1)
    assert set(read_model.due_holds(now=later, limit=100)) == pending
    assert read_model.due_holds(now=clock(), limit=100) == []

    before = read_model.dump()
    assert all(before.values()), "every view table has rows"
    assert follower.rebuild() == events
    assert read_model.dump() == before


def test_two_followers_on_the_same_tables_apply_every_event_exactly_once(
    container: Container, store_settings: Settings, clock: Clock
) -> None:
    ledger = container.ledger
    second_engine = make_engine(store_settings.read_model_url())
    try:
        account_ids = record_history(ledger, clock, tag="before")
        written: list[UUID] = []

        def write() -> None:
            written.extend(record_history(ledger, clock, tag="during", accounts=2))

        applied = follow_with_two_followers(
            ledger,
            [container.engine, second_engine],
            section_size=RACE_SECTION_SIZE,
            write=write,
        )
        account_ids += written
        events = account_event_count(ledger, account_ids)
        assert sum(applied) == events
        assert assert_read_model_matches(ledger, container.read_model, account_ids) == events
    finally:
        second_engine.dispose()
