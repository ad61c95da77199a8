"""The ledger on a real PostgreSQL, where only PostgreSQL is tested: a fresh process reading an
account past its snapshot interval, and two processes racing for one account's money. The checks
both stores share are in `test_ledger_stores.py`."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from tests.integration.conftest import events_of, settings_for
from ticketing.accounts.application.ledger import ACCOUNT_SNAPSHOT_INTERVAL, Ledger
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Debit, PlaceHold, TopUp
from ticketing.accounts.domain.errors import InsufficientFunds
from ticketing.accounts.domain.transfer import Transfer
from ticketing.shared.adapters.bulk_reads import read_many
from ticketing.shared.log_checked_cache import LogCheckedCache

pytestmark = pytest.mark.postgres

# Two processes race for one account: more debits are asked than the money covers.
FUNDS_VND = 100_000
DEBIT_VND = 1_000
DEBITS_PER_WORKER = 60
WORKERS = 2
WORKER_TIMEOUT_S = 120.0

WorkerResult = tuple[int, list[str], int, list[str]]


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
        debited = events_of(replaying, account_id, TransportAccount.Debited)
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


def test_many_accounts_read_in_one_query_are_the_accounts_the_store_holds(
    postgres_database_url: str, tmp_path: Path
) -> None:
    """One past its snapshot, one without, a hold, and an id never recorded: each as a read
    one at a time gives it."""
    settings = settings_for(tmp_path, postgres_database_url)
    ledger = Ledger(settings.event_store_env())
    try:
        long_history = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(long_history, FUNDS_VND, "bank-bulk-long"))
        for index in range(ACCOUNT_SNAPSHOT_INTERVAL + 3):
            ledger.execute(Debit(long_history, f"bulk-fare-{index}", 100))
        short_history = ledger.open_account(rider_category=0).id
        ledger.execute(TopUp(short_history, DEBIT_VND, "bank-bulk-short"))
        ledger.execute(PlaceHold(short_history, "bulk-hold", DEBIT_VND, 600, "parking"))
        hold = Transfer.create_id("bulk-hold")
        never = uuid4()
        found = read_many(ledger, [long_history, short_history, hold, never])
        assert found is not None
        reader = Ledger(settings.event_store_env(create_tables=False))
        try:
            for aggregate_id in (long_history, short_history, hold):
                stored: object = reader.repository.get(aggregate_id)
                assert vars(found[aggregate_id]) == vars(stored)
        finally:
            reader.close()
        assert found[never] is None
    finally:
        ledger.close()


def test_a_cache_moves_on_by_another_writers_events_read_by_their_positions(
    postgres_database_url: str, tmp_path: Path
) -> None:
    """Two ledgers on one database, as two workers: the first's memory reads the second's
    events by their positions alone, and fetches only those about aggregates it holds."""
    settings = settings_for(tmp_path, postgres_database_url)
    mine = Ledger(settings.event_store_env())
    theirs = Ledger(settings.event_store_env(create_tables=False))
    try:
        held_id, skipped_id, stale_id = (mine.open_account(rider_category=0).id for _ in range(3))
        for account_id in (held_id, skipped_id, stale_id):
            mine.execute(TopUp(account_id, FUNDS_VND, f"bank-{account_id.hex}"))
        cache = LogCheckedCache(mine)
        cache.refresh()
        held = cache.get(held_id, mine.get_account)
        stale = mine.get_account(stale_id)
        theirs.execute(TopUp(stale_id, DEBIT_VND, "bank-stale-1"))
        cache.refresh()
        cache.put(stale_id, stale)  # two versions behind once the next top-up lands
        for index in range(3):
            theirs.execute(Debit(held_id, f"their-fare-{index}", DEBIT_VND))
            theirs.execute(Debit(skipped_id, f"their-other-{index}", DEBIT_VND))
        theirs.execute(TopUp(stale_id, DEBIT_VND, "bank-stale-2"))
        cache.refresh()
        loads: list[UUID] = []

        def load(aggregate_id: UUID) -> TransportAccount:
            loads.append(aggregate_id)
            return mine.get_account(aggregate_id)

        moved = cache.get(held_id, load)
        assert isinstance(moved, TransportAccount)
        assert isinstance(held, TransportAccount)
        assert (moved.posted_vnd, moved.version) == (FUNDS_VND - 3 * DEBIT_VND, held.version + 3)
        assert held.posted_vnd == FUNDS_VND  # what a reader was given is left as it was
        assert skipped_id not in cache
        found = cache.get(stale_id, load)
        assert isinstance(found, TransportAccount)
        assert found.posted_vnd == FUNDS_VND + 2 * DEBIT_VND
        assert loads == [stale_id]
    finally:
        theirs.close()
        mine.close()
