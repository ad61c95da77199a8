"""The ledger on the embedded default, a SQLite file: the same store, follower and rebuild checks
as on PostgreSQL, and two threads racing for one account's money as API requests do."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tapledger.bootstrap import Container, bootstrap, make_engine
from tapledger.settings import Settings
from tests.integration.conftest import (
    FakeClock,
    account_event_count,
    assert_read_model_matches,
    follow_with_two_followers,
    record_history,
    settings_for,
)
from ticketing.application import Ledger, Receipt
from ticketing.domain.account import TransportAccount
from ticketing.domain.commands import Debit, PlaceHold, PostHold, TopUp
from ticketing.domain.errors import InsufficientFunds, TransferConflict
from ticketing.domain.transfer import HoldOutcome

EVENTS_TABLE = "stored_events"
HOLD_TTL_S = 3600
RACE_SECTION_SIZE = 7

FUNDS_VND = 100_000
DEBIT_VND = 1_000
DEBITS_PER_THREAD = 60
THREADS = 2
THREAD_TIMEOUT_S = 120.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container(settings: Settings, clock: FakeClock) -> Iterator[Container]:
    container = bootstrap(settings, clock=clock)
    yield container
    container.close()


def _events_of(ledger: Ledger, account_id: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in ledger.events.get(account_id) if isinstance(e, kind)]


def test_the_embedded_default_is_one_sqlite_file_under_the_data_dir(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    assert type(container.ledger.recorder).__module__ == "eventsourcing.sqlite"
    assert settings.sqlite_path == tmp_path / "tapledger.db"
    assert container.engine.url.database == str(settings.sqlite_path)


def test_events_are_stored_in_the_file_and_replayed_by_a_new_ledger(
    container: Container, settings: Settings, clock: FakeClock
) -> None:
    ledger = container.ledger
    account_id = ledger.open_account(rider_category=0, display_name="Le Thi Hoa").id
    ledger.execute(TopUp(account_id, 50_000, "momo-1001"))
    ledger.execute(PlaceHold(account_id, "parking-1", 20_000, HOLD_TTL_S, "Hoan Kiem"))
    ledger.execute(PostHold(account_id, "parking-1", 12_000))

    with sqlite3.connect(settings.sqlite_path) as conn:
        (stored,) = conn.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE originator_id = ?",  # noqa: S608
            (account_id.hex,),  # the SQLite store keeps ids as 32 hex digits
        ).fetchone()
    assert stored == 4

    replaying = Ledger(settings.event_store_env(create_tables=False), clock=clock)
    try:
        account = replaying.get_account(account_id)
        assert (account.posted_vnd, account.pending_vnd, account.version) == (38_000, 0, 4)
        assert account.display_name == "Le Thi Hoa"
        hold = replaying.get_transfer("parking-1")
        assert hold is not None
        assert (hold.outcome, hold.posted_vnd) == (HoldOutcome.POSTED, 12_000)
    finally:
        replaying.close()


def test_repeated_transfer_id_is_one_effect_and_a_conflicting_repeat_is_refused(
    container: Container, settings: Settings
) -> None:
    ledger = container.ledger
    other = Ledger(settings.event_store_env(create_tables=False))
    try:
        account_id = ledger.open_account(rider_category=0).id
        first = ledger.execute(TopUp(account_id, 30_000, "bank-42"))
        again = other.execute(TopUp(account_id, 30_000, "bank-42"))
        assert (first.replayed, again.replayed) == (False, True)
        ledger.execute(Debit(account_id, "fare-7", 7_000))
        assert other.execute(Debit(account_id, "fare-7", 7_000)).replayed

        with pytest.raises(TransferConflict):
            other.execute(TopUp(account_id, 31_000, "bank-42"))
        with pytest.raises(TransferConflict):
            ledger.execute(Debit(account_id, "fare-7", 8_000))

        account = other.get_account(account_id)
        assert (account.posted_vnd, account.version) == (23_000, 3)
        assert len(_events_of(other, account_id, TransportAccount.ToppedUp)) == 1
    finally:
        other.close()


def test_atomic_batch_with_one_refused_command_stores_the_others(
    container: Container, settings: Settings
) -> None:
    ledger = container.ledger
    account_id = ledger.open_account(rider_category=0).id
    results = ledger.execute_batch(
        [
            TopUp(account_id, 50_000, "bank-1"),
            Debit(account_id, "fare-1", 10_000),
            Debit(account_id, "fare-2", 1_000_000),
            PlaceHold(account_id, "parking-1", 5_000, HOLD_TTL_S),
        ]
    )
    assert [type(r) for r in results] == [Receipt, Receipt, InsufficientFunds, Receipt]

    replaying = Ledger(settings.event_store_env(create_tables=False))
    try:
        account = replaying.get_account(account_id)
        assert (account.posted_vnd, account.pending_vnd, account.version) == (40_000, 5_000, 4)
        assert replaying.get_transfer("fare-2") is None
    finally:
        replaying.close()


def test_follower_builds_the_read_model_equal_to_the_aggregates_and_rebuilds_it_identically(
    container: Container, clock: FakeClock
) -> None:
    ledger, follower, read_model = container.ledger, container.follower, container.read_model
    account_ids = record_history(ledger, clock, tag="file")
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
    later = clock() + timedelta(seconds=HOLD_TTL_S + 1)
    assert set(read_model.due_holds(now=later, limit=100)) == pending
    assert pending

    before = read_model.dump()
    assert all(before.values()), "every view table has rows"
    assert follower.rebuild() == events
    assert read_model.dump() == before


def test_two_followers_on_the_same_tables_apply_every_event_exactly_once(
    container: Container, settings: Settings, clock: FakeClock
) -> None:
    ledger = container.ledger
    second_engine = make_engine(settings.read_model_url())
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


def test_two_threads_debiting_one_account_spend_all_the_money_and_no_more(
    container: Container,
) -> None:
    # One Ledger shared by two threads, as the API's request threads share it.
    ledger = container.ledger
    account_id = ledger.open_account(rider_category=0).id
    ledger.execute(TopUp(account_id, FUNDS_VND, "bank-race"))
    start = threading.Barrier(THREADS)
    succeeded: list[list[str]] = [[] for _ in range(THREADS)]
    refused = [0] * THREADS
    others: list[str] = []

    def debit_many(worker: int) -> None:
        try:
            start.wait(THREAD_TIMEOUT_S)
            for index in range(DEBITS_PER_THREAD):
                transfer_id = f"t{worker}-fare-{index}"
                try:
                    ledger.execute(Debit(account_id, transfer_id, DEBIT_VND, "bus 86"))
                except InsufficientFunds:
                    refused[worker] += 1
                else:
                    succeeded[worker].append(transfer_id)
        except Exception as error:  # every other outcome is a finding, reported whole
            others.append(repr(error))

    threads = [threading.Thread(target=debit_many, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a debiting thread hung"

    all_succeeded = [transfer_id for ids in succeeded for transfer_id in ids]
    # Safety first: every success is one stored debit, and no money was spent twice.
    account = ledger.get_account(account_id)
    debited = _events_of(ledger, account_id, TransportAccount.Debited)
    assert sorted(e.transfer_id for e in debited) == sorted(all_succeeded)
    assert account.posted_vnd == FUNDS_VND - DEBIT_VND * len(all_succeeded) >= 0
    # Then liveness: two writers must not starve each other into LedgerBusy.
    assert others == []
    assert len(all_succeeded) == FUNDS_VND // DEBIT_VND
    assert sum(refused) == THREADS * DEBITS_PER_THREAD - FUNDS_VND // DEBIT_VND
    assert account.posted_vnd == 0

    assert container.follower.catch_up() == account.version
    assert assert_read_model_matches(ledger, container.read_model, [account_id]) == (
        account.version
    )
