"""The ledger on the embedded default, where only the SQLite file is tested: it is one file under
the data dir, and two threads race for one account's money as API requests do. The checks both
stores share are in `test_ledger_stores.py`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tapledger.bootstrap import Container, bootstrap
from tapledger.settings import Settings
from tests.doubles import Clock
from tests.integration.conftest import (
    T0,
    assert_read_model_matches,
    events_of,
    settings_for,
)
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Debit, TopUp
from ticketing.accounts.domain.errors import InsufficientFunds

# Two threads race for one account: more debits are asked than the money covers.
FUNDS_VND = 100_000
DEBIT_VND = 1_000
DEBITS_PER_THREAD = 60
THREADS = 2
THREAD_TIMEOUT_S = 120.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    container = bootstrap(settings, clock=Clock(T0))
    yield container
    container.close()


def test_the_embedded_default_is_one_sqlite_file_under_the_data_dir(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    assert type(container.ledger.recorder).__module__ == "eventsourcing.sqlite"
    assert settings.sqlite_path == tmp_path / "tapledger.db"
    assert container.engine.url.database == str(settings.sqlite_path)


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
    debited = events_of(ledger, account_id, TransportAccount.Debited)
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
