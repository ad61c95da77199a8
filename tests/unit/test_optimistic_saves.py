"""Saves under contention: one retry loop for every use case, ending in a typed `Contended`."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, RecordConflictError

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Debit, TopUp
from ticketing.accounts.domain.errors import LedgerBusy, LedgerError
from ticketing.cards.adapters.key_vault import KeyVault
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCardStatus
from ticketing.shared import optimistic
from ticketing.shared.domain.errors import Contended
from ticketing.shared.optimistic import SAVE_ATTEMPTS_MAX, save_with_retries

SERIAL = "0011223344556677"
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def back_offs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The attempts each back-off followed; nobody sleeps."""
    seen: list[int] = []
    monkeypatch.setattr(optimistic, "back_off", seen.append)
    return seen


def refuse_every_save(monkeypatch: pytest.MonkeyPatch, app: Application[UUID]) -> list[int]:
    """Makes the app's store answer every save as if another writer had saved first."""
    refused: list[int] = []

    def insert_events(stored_events: list[Any], **_: Any) -> None:
        refused.append(len(stored_events))
        raise IntegrityError("another writer saved first")

    monkeypatch.setattr(app.recorder, "insert_events", insert_events)
    return refused


def test_an_attempt_that_lost_the_race_is_tried_again_after_a_back_off(
    back_offs: list[int],
) -> None:
    outcomes: list[Exception | None] = [RecordConflictError(), IntegrityError(), None]

    def attempt() -> int:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return 7

    assert save_with_retries(attempt, what="the thing") == 7
    assert back_offs == [1, 2]


def test_attempts_that_always_lose_end_in_contended_naming_what_was_changed(
    back_offs: list[int],
) -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise IntegrityError("another writer saved first")

    with pytest.raises(Contended) as raised:
        save_with_retries(attempt, what="the thing")
    assert raised.value.code == "contended"
    assert raised.value.attempts == SAVE_ATTEMPTS_MAX
    assert "the thing changed under" in str(raised.value)
    assert len(calls) == SAVE_ATTEMPTS_MAX
    # No sleep after the last attempt: the caller is answered at once.
    assert back_offs == list(range(1, SAVE_ATTEMPTS_MAX))


def test_an_error_other_than_a_conflict_is_not_retried(back_offs: list[int]) -> None:
    def attempt() -> None:
        raise LedgerBusy("the account", 1)

    with pytest.raises(LedgerBusy):
        save_with_retries(attempt, what="the thing")
    assert back_offs == []


def test_a_card_blocked_while_every_save_conflicts_is_contended_and_nothing_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger(clock=lambda: T0)
    cards = CardIssuer(
        sealer=KeyVault(os.urandom(32)), account_of=ledger.get_account, clock=lambda: T0
    )
    service = SmartCards(cards, ledger)
    account = ledger.open_account(rider_category=0)
    service.issue(account.id, serial=SERIAL)
    refused = refuse_every_save(monkeypatch, cards)
    with pytest.raises(Contended) as raised:
        service.block(SERIAL, reason="lost")
    assert (type(raised.value), raised.value.code) == (Contended, "contended")
    assert len(refused) == SAVE_ATTEMPTS_MAX
    monkeypatch.undo()
    assert service.get(SERIAL).status is SmartCardStatus.ACTIVE


def test_the_ledger_keeps_its_own_code_for_contention_and_a_batch_answers_it_per_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = Ledger(clock=lambda: T0)
    account = ledger.open_account(rider_category=0)
    ledger.execute(TopUp(account.id, 50_000, "seed"))
    refuse_every_save(monkeypatch, ledger)
    with pytest.raises(LedgerBusy) as raised:
        ledger.execute(Debit(account.id, "fare-1", 8_000, "bus"))
    assert isinstance(raised.value, Contended)
    assert raised.value.code == "ledger_busy"
    # In a batch the busy account is one command's refusal, like any ledger error.
    results = ledger.execute_batch([Debit(account.id, "fare-2", 8_000, "bus")])
    assert [type(r) for r in results] == [LedgerBusy]
    assert isinstance(results[0], LedgerError)
    monkeypatch.undo()
    assert ledger.get_account(account.id).posted_vnd == 50_000
