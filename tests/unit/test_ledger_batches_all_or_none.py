"""`Ledger.execute_all`: a batch of commands committed together or not at all, a repeat of a
committed batch answered as repeats, and the memory it keeps between batches read again when
another writer changed an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from ticketing.accounts.application.ledger import LEDGER_BATCH_MAX, Ledger
from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp
from ticketing.accounts.domain.errors import InsufficientFunds
from ticketing.accounts.domain.transfer import Transfer
from ticketing.shared.domain.invariants import InvariantViolated
from ticketing.shared.log_checked_cache import LogCheckedCache

SEED_VND = 50_000
HOLD_TTL_S = 3600


def funded(ledger: Ledger, amount_vnd: int = SEED_VND) -> UUID:
    account_id = ledger.open_account(rider_category=0).id
    ledger.execute(TopUp(account_id, amount_vnd, f"seed-{account_id.hex}"))
    return account_id


def balance(ledger: Ledger, account_id: UUID) -> tuple[int, int]:
    account = ledger.get_account(account_id)
    return account.posted_vnd, account.pending_vnd


def test_a_batch_commits_every_command_together() -> None:
    ledger = Ledger()
    first, second = funded(ledger), funded(ledger)
    outcome = ledger.execute_all(
        [
            PlaceHold(first, "h1", 15_000, HOLD_TTL_S, "metro entry"),
            PostHold(first, "h1", 8_000),
            Debit(second, "d1", 10_000, "ride"),
        ]
    )
    assert (outcome.committed, outcome.refused_at) == (True, None)
    assert balance(ledger, first) == (SEED_VND - 8_000, 0)
    assert balance(ledger, second) == (SEED_VND - 10_000, 0)


def test_a_refused_command_stores_nothing_of_the_batch_and_says_which_it_was() -> None:
    ledger = Ledger()
    rich, poor = funded(ledger), funded(ledger, 1_000)
    outcome = ledger.execute_all(
        [Debit(rich, "d1", 10_000, "ride"), Debit(poor, "d2", 10_000, "ride")]
    )
    assert (outcome.committed, outcome.refused_at) == (False, 1)
    assert isinstance(outcome.error, InsufficientFunds)
    assert balance(ledger, rich) == (SEED_VND, 0)
    assert ledger.get_transfer("d1") is None
    # The batch without the refused command then commits from the stored state.
    assert ledger.execute_all([Debit(rich, "d1", 10_000, "ride")]).committed
    assert balance(ledger, rich) == (SEED_VND - 10_000, 0)


def test_a_committed_batch_run_again_moves_no_money_twice() -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    commands: list[Command] = [
        PlaceHold(account_id, "h1", 15_000, HOLD_TTL_S, "metro entry"),
        Debit(account_id, "d1", 10_000, "ride"),
    ]
    assert ledger.execute_all(commands).committed
    assert ledger.execute_all(commands).committed
    assert balance(ledger, account_id) == (SEED_VND - 10_000, 15_000)


def test_a_batch_sees_what_another_writer_did_to_an_account_since_the_last_batch() -> None:
    ledger = Ledger()
    account_id = funded(ledger, 10_000)
    assert ledger.execute_all([Debit(account_id, "d1", 10_000, "ride")]).committed
    ledger.execute(TopUp(account_id, 30_000, "later-top-up"))
    assert ledger.execute_all([Debit(account_id, "d2", 30_000, "ride")]).committed
    assert balance(ledger, account_id) == (0, 0)


def test_a_batch_that_loses_its_race_twice_running_commits_on_a_later_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    real_save = ledger.save
    rivals = {"left": 2, "busy": False}

    def save_after_a_rival(*aggregates: Aggregate) -> Any:
        if rivals["left"] and not rivals["busy"]:
            rivals["busy"] = True  # another worker tops the account up first
            ledger.execute(TopUp(account_id, 1_000, f"rival-{rivals['left']}"))
            rivals["left"], rivals["busy"] = rivals["left"] - 1, False
        return real_save(*aggregates)

    monkeypatch.setattr(ledger, "save", save_after_a_rival)
    outcome = ledger.execute_all([Debit(account_id, "d1", 10_000, "ride")])

    assert (outcome.committed, rivals["left"]) == (True, 0)
    assert balance(ledger, account_id) == (SEED_VND + 2_000 - 10_000, 0)


def test_a_batch_longer_than_the_limit_is_a_programming_error() -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    commands = [Debit(account_id, f"d{i}", 1, "ride") for i in range(LEDGER_BATCH_MAX + 1)]
    with pytest.raises(InvariantViolated):
        ledger.execute_all(commands)


def _counting(ledger: Ledger, loads: list[UUID]) -> Callable[[UUID], Aggregate | None]:
    def load(aggregate_id: UUID) -> Aggregate | None:
        loads.append(aggregate_id)
        try:
            return ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    return load


def test_the_cache_moves_on_what_another_writer_changed_and_keeps_what_it_saved() -> None:
    ledger = Ledger()
    cache = LogCheckedCache(ledger)
    mine, theirs = funded(ledger), funded(ledger)
    cache.refresh()
    held_theirs = cache.get(theirs, ledger.get_account)
    cache.get(mine, ledger.get_account)
    account = ledger.get_account(mine)
    account.top_up(transfer_id="t-mine", amount_vnd=1_000, payment_reference="m", at=ledger.now())
    cache.put(mine, account)
    cache.saved(ledger.save(account))
    ledger.execute(TopUp(theirs, 1_000, "theirs"))
    cache.refresh()
    loads: list[UUID] = []
    assert cache.get(mine, _counting(ledger, loads)) is account
    moved = cache.get(theirs, _counting(ledger, loads))
    assert loads == []
    assert isinstance(moved, TransportAccount)
    assert isinstance(held_theirs, TransportAccount)
    stored = ledger.get_account(theirs)
    assert (moved.version, moved.posted_vnd) == (stored.version, SEED_VND + 1_000)
    # A reader still holding the aggregate the cache gave out sees it unchanged.
    assert held_theirs.posted_vnd == SEED_VND


def test_a_memory_whose_aggregates_no_reader_holds_moves_them_on_in_place() -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    cache = LogCheckedCache(ledger, shared=False)
    cache.refresh()
    held = cache.get(account_id, ledger.get_account)
    ledger.execute(TopUp(account_id, 1_000, "theirs"))
    cache.refresh()
    moved = cache.get(account_id, _counting(ledger, []))
    assert moved is held
    assert isinstance(moved, TransportAccount)
    assert (moved.version, moved.posted_vnd) == (
        ledger.get_account(account_id).version,
        SEED_VND + 1_000,
    )


def test_the_cache_learns_of_a_transfer_it_knew_to_be_absent_from_the_log() -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    cache = LogCheckedCache(ledger)
    cache.refresh()
    loads: list[UUID] = []
    transfer_id = Transfer.create_id(TopUp(account_id, 1_000, "later").transfer_id)
    assert cache.get(transfer_id, _counting(ledger, loads)) is None
    ledger.execute(TopUp(account_id, 1_000, "later"))
    cache.refresh()
    found = cache.get(transfer_id, _counting(ledger, loads))
    assert isinstance(found, Transfer)
    assert found.amount_vnd == 1_000
    assert loads == [transfer_id]


def test_the_cache_forgets_an_aggregate_it_missed_a_change_of() -> None:
    ledger = Ledger()
    account_id = funded(ledger)
    cache = LogCheckedCache(ledger)
    stale = ledger.get_account(account_id)
    ledger.execute(TopUp(account_id, 1_000, "first"))
    cache.refresh()
    cache.put(account_id, stale)  # two versions behind the store from here on
    ledger.execute(TopUp(account_id, 1_000, "second"))
    cache.refresh()
    loads: list[UUID] = []
    found = cache.get(account_id, _counting(ledger, loads))
    assert loads == [account_id]
    assert isinstance(found, TransportAccount)
    assert found.posted_vnd == SEED_VND + 2_000


def test_a_refused_batch_reads_again_only_the_accounts_it_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger()
    rich, poor, bystander = funded(ledger), funded(ledger, 1_000), funded(ledger)
    assert ledger.execute_all([Debit(bystander, "d0", 1_000, "ride")]).committed
    reads: list[UUID] = []
    get = ledger.repository.get

    def counting_get(aggregate_id: UUID, *args: object, **kwargs: object) -> Aggregate:
        reads.append(aggregate_id)
        return get(aggregate_id)

    monkeypatch.setattr(ledger.repository, "get", counting_get)
    outcome = ledger.execute_all(
        [Debit(rich, "d2", 10_000, "ride"), Debit(poor, "d3", 10_000, "ride")]
    )
    assert (outcome.committed, outcome.refused_at) == (False, 1)
    reads.clear()
    assert ledger.execute_all(
        [
            Debit(bystander, "d4", 1_000, "ride"),
            Debit(poor, "d5", 500, "ride"),
            Debit(rich, "d6", 500, "ride"),
        ]
    ).committed
    # The rich rider's debit was applied in memory, then thrown away with the batch: read
    # again. The rider short of money was only read (the debit was refused before it changed
    # anything), and the bystander was not in the batch: neither is read again.
    assert reads == [rich]
    assert balance(ledger, rich) == (SEED_VND - 500, 0)
    assert balance(ledger, poor) == (500, 0)
    assert balance(ledger, bystander) == (SEED_VND - 2_000, 0)
