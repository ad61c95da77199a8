"""The ledger on a real PostgreSQL: events stored and replayed, repeats, batches, followers,
and two processes racing for one account's money."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tapledger.bootstrap import bootstrap, make_engine
from tests.integration.conftest import (
    FakeClock,
    account_event_count,
    assert_read_model_matches,
    follow_with_two_followers,
    record_history,
    settings_for,
)
from ticketing.application import ACCOUNT_SNAPSHOT_INTERVAL, Ledger, Receipt
from ticketing.domain.account import TransportAccount
from ticketing.domain.commands import Debit, PlaceHold, PostHold, TopUp
from ticketing.domain.errors import InsufficientFunds, TransferConflict
from ticketing.domain.transfer import HoldOutcome

pytestmark = pytest.mark.postgres

EVENTS_TABLE = "ledger_events"
HOLD_TTL_S = 3600
# Small sections make the two followers meet often, each section a race for the position.
RACE_SECTION_SIZE = 7

# Two processes race for one account: more debits are asked than the money covers.
FUNDS_VND = 100_000
DEBIT_VND = 1_000
DEBITS_PER_WORKER = 60
WORKERS = 2
WORKER_TIMEOUT_S = 120.0

WorkerResult = tuple[int, list[str], int, list[str]]


def _stored_event_count(database_url: str, originator_id: UUID) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE originator_id = %s",  # noqa: S608
            (originator_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _events_of(ledger: Ledger, account_id: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in ledger.events.get(account_id) if isinstance(e, kind)]


def test_events_are_stored_in_postgres_and_replayed_by_a_new_ledger(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url)
    clock = FakeClock()
    ledger = Ledger(settings.event_store_env(), clock=clock)
    try:
        assert type(ledger.recorder).__module__ == "eventsourcing.postgres"
        account_id = ledger.open_account(rider_category=0, display_name="Nguyen Van An").id
        ledger.execute(TopUp(account_id, 50_000, "bank-1001"))
        ledger.execute(PlaceHold(account_id, "metro-entry-1", 20_000, HOLD_TTL_S, "Cat Linh"))
        ledger.execute(PostHold(account_id, "metro-entry-1", 12_000))
    finally:
        ledger.close()

    # Opened, ToppedUp, HoldPlaced, HoldPosted: all four rows are in PostgreSQL itself.
    assert _stored_event_count(postgres_database_url, account_id) == 4

    replaying = Ledger(settings.event_store_env(create_tables=False), clock=clock)
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
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url)
    ledger = Ledger(settings.event_store_env())
    other = Ledger(settings.event_store_env(create_tables=False))
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

        with pytest.raises(TransferConflict):
            ledger.execute(TopUp(account_id, 31_000, "bank-42"))
        with pytest.raises(TransferConflict):
            other.execute(Debit(account_id, "fare-7", 8_000, "bus 32"))
        with pytest.raises(TransferConflict):
            ledger.execute(PlaceHold(account_id, "fare-7", 7_000, HOLD_TTL_S))

        account = other.get_account(account_id)
        assert account.posted_vnd == 23_000
        assert len(_events_of(other, account_id, TransportAccount.ToppedUp)) == 1
        assert len(_events_of(other, account_id, TransportAccount.Debited)) == 1
        assert account.version == 3
    finally:
        other.close()
        ledger.close()


def test_atomic_batch_with_one_refused_command_stores_the_others(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url)
    ledger = Ledger(settings.event_store_env())
    try:
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
    finally:
        ledger.close()
    assert [type(r) for r in results] == [Receipt, Receipt, InsufficientFunds, Receipt, Receipt]
    assert not any(r.replayed for r in results if isinstance(r, Receipt))

    replaying = Ledger(settings.event_store_env(create_tables=False))
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
    postgres_database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    container = bootstrap(settings_for(tmp_path, postgres_database_url), clock=clock)
    try:
        ledger, follower, read_model = container.ledger, container.follower, container.read_model
        account_ids = record_history(ledger, clock, tag="pg")
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
        assert len(pending) == len(account_ids) - 1  # the closed account holds nothing
        later = clock() + timedelta(seconds=HOLD_TTL_S + 1)
        assert set(read_model.due_holds(now=later, limit=100)) == pending
        assert read_model.due_holds(now=clock(), limit=100) == []

        before = read_model.dump()
        assert all(before.values()), "every view table has rows"
        assert follower.rebuild() == events
        assert read_model.dump() == before
    finally:
        container.close()


def test_two_followers_on_the_same_tables_apply_every_event_exactly_once(
    postgres_database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = settings_for(tmp_path, postgres_database_url)
    container = bootstrap(settings, clock=clock)
    second_engine = make_engine(settings.read_model_url())
    try:
        ledger = container.ledger
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
        container.close()


def _read_account_worker(
    env: dict[str, str], account_id: UUID, results: Queue[tuple[int, int] | str]
) -> None:
    """Runs in a spawned process, which has never written the account nor its snapshot."""
    try:
        ledger = Ledger(env)
        try:
            account = ledger.get_account(account_id)
            results.put((account.posted_vnd, account.version))
        finally:
            ledger.close()
    except Exception as error:
        results.put(repr(error))


def test_a_fresh_process_reads_an_account_past_its_snapshot_interval(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url)
    ledger = Ledger(settings.event_store_env())
    try:
        account_id = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(account_id, FUNDS_VND, "bank-long-history"))
        debits = ACCOUNT_SNAPSHOT_INTERVAL
        for index in range(debits):
            ledger.execute(Debit(account_id, f"fare-{index}", 100))
    finally:
        ledger.close()
    version = debits + 2
    assert version > ACCOUNT_SNAPSHOT_INTERVAL

    context = multiprocessing.get_context("spawn")
    results: Queue[tuple[int, int] | str] = context.Queue()
    process = context.Process(
        target=_read_account_worker,
        args=(settings.event_store_env(create_tables=False), account_id, results),
    )
    process.start()
    try:
        answer = results.get(timeout=WORKER_TIMEOUT_S)
        process.join(WORKER_TIMEOUT_S)
    finally:
        if process.is_alive():
            process.kill()
            process.join()
    assert answer == (FUNDS_VND - 100 * debits, version)


def _debit_worker(
    env: dict[str, str],
    account_id: UUID,
    worker: int,
    start: Barrier,
    results: Queue[WorkerResult],
) -> None:
    """Runs in a spawned process: its own `Ledger`, many debits, a tally put on `results`."""
    succeeded: list[str] = []
    refused = 0
    others: list[str] = []
    try:
        ledger = Ledger(env)
        try:
            start.wait(WORKER_TIMEOUT_S)
            for index in range(DEBITS_PER_WORKER):
                transfer_id = f"w{worker}-fare-{index}"
                try:
                    ledger.execute(Debit(account_id, transfer_id, DEBIT_VND, "metro line 2A"))
                except InsufficientFunds:
                    refused += 1
                except Exception as error:  # every other outcome is a finding, reported whole
                    others.append(repr(error))
                else:
                    succeeded.append(transfer_id)
        finally:
            ledger.close()
    except Exception as error:
        others.append(repr(error))
    results.put((worker, succeeded, refused, others))


def test_two_processes_debiting_one_account_spend_all_the_money_and_no_more(
    postgres_database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, postgres_database_url)
    # The parent creates the tables; the workers start with CREATE_TABLE=n, as in production.
    ledger = Ledger(settings.event_store_env())
    try:
        account_id = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(account_id, FUNDS_VND, "bank-race"))
    finally:
        ledger.close()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    results: Queue[WorkerResult] = context.Queue()
    worker_env = settings.event_store_env(create_tables=False)
    processes = [
        context.Process(
            target=_debit_worker,
            args=(worker_env, account_id, worker, start, results),
            name=f"debit-worker-{worker}",
        )
        for worker in range(WORKERS)
    ]
    try:
        for process in processes:
            process.start()
        # Read before joining: a process with data still in its queue does not exit.
        tallies = [results.get(timeout=WORKER_TIMEOUT_S) for _ in processes]
        for process in processes:
            process.join(WORKER_TIMEOUT_S)
            assert process.exitcode == 0, f"{process.name} ended with {process.exitcode}"
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()

    succeeded = [transfer_id for _, ids, _, _ in tallies for transfer_id in ids]
    refused = sum(count for _, _, count, _ in tallies)
    others = [error for _, _, _, errors in tallies for error in errors]

    replaying = Ledger(settings.event_store_env(create_tables=False))
    try:
        account = replaying.get_account(account_id)
        debited = _events_of(replaying, account_id, TransportAccount.Debited)
        stream = list(replaying.events.get(account_id))
    finally:
        replaying.close()
    # Safety first: one stored Debited per success and no other (no lost or doubled update),
    # and, replayed step by step, the balance never went below zero.
    assert sorted(e.transfer_id for e in debited) == sorted(succeeded)
    assert account.posted_vnd == FUNDS_VND - DEBIT_VND * len(succeeded)
    posted_vnd = 0
    for e in stream:
        if isinstance(e, TransportAccount.ToppedUp):
            posted_vnd += e.amount_vnd
        elif isinstance(e, TransportAccount.Debited):
            posted_vnd -= e.amount_vnd
        assert posted_vnd >= 0
    # Then liveness: every debit was answered with a success or a refusal for want of funds.
    assert others == []
    assert len(succeeded) == FUNDS_VND // DEBIT_VND
    assert refused == WORKERS * DEBITS_PER_WORKER - FUNDS_VND // DEBIT_VND
    assert account.posted_vnd == 0
    assert all(ids for _, ids, _, _ in tallies), "both processes won some of the race"
