"""Physical cards in the backend: issue, reload exactly once, block, replace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from hardware.tlc1.records import Environment
from tapledger.bootstrap import Container
from tests.builders.card_emulator import step_name, trace_bytes
from tests.builders.product import local_product
from tests.doubles import Clock
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import PostHold, TopUp, VoidHold
from ticketing.accounts.domain.errors import AccountBlocked, HoldNotFound
from ticketing.cards.application.smart_cards import SmartCards, reload_hold_id
from ticketing.cards.domain.smart_card import (
    CARD_NETWORK_ID_DEFAULT,
    InvalidSerial,
    PurseUnexplained,
    ReloadNotOpen,
    ReloadOutcome,
    ReloadsStillOpen,
    SmartCardAlreadyIssued,
    SmartCardNotActive,
    SmartCardStatus,
    TransactionCounterReplayed,
)

SERIAL = "0011223344556677"
OTHER = "8899aabbccddeeff"
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

UPDATE_RECORD_INS = 0xDC
APDU_HEADER_AND_LC_BYTES = 5  # CLA INS P1 P2 Lc


@pytest.fixture
def product(tmp_path: Path) -> Iterator[Container]:
    with local_product(tmp_path, clock=Clock(T0)) as container:
        yield container


@pytest.fixture
def ledger(product: Container) -> Ledger:
    return product.ledger


@pytest.fixture
def service(product: Container) -> SmartCards:
    return product.smart_cards


def funded_account(ledger: Ledger, amount_vnd: int = 200_000) -> UUID:
    account = ledger.open_account(rider_category=0)
    ledger.execute(TopUp(account.id, amount_vnd, f"seed-{account.id.hex[:8]}"))
    return account.id


def test_a_serial_is_registered_once(service: SmartCards, ledger: Ledger) -> None:
    account_id = funded_account(ledger)
    card = service.issue(account_id, serial=SERIAL.upper())
    assert card.serial == SERIAL
    assert service.get(SERIAL).account_id == account_id
    with pytest.raises(SmartCardAlreadyIssued):
        service.issue(account_id, serial=SERIAL)


@pytest.mark.parametrize("serial", ["", "00112233445566", "001122334455667g", "0" * 18])
def test_a_malformed_serial_is_refused(service: SmartCards, ledger: Ledger, serial: str) -> None:
    with pytest.raises(InvalidSerial):
        service.issue(funded_account(ledger), serial=serial)


def test_no_card_for_a_blocked_account(service: SmartCards, ledger: Ledger) -> None:
    account_id = funded_account(ledger)
    ledger.block_account(account_id, reason="fraud")
    with pytest.raises(AccountBlocked):
        service.issue(account_id, serial=SERIAL)


def test_a_reload_the_card_took_moves_the_money_once(service: SmartCards, ledger: Ledger) -> None:
    account_id = funded_account(ledger)
    service.issue(account_id, serial=SERIAL)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=50_000, purse_before_vnd=0)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=50_000, purse_before_vnd=0)  # retry
    assert ledger.get_account(account_id).available_vnd == 150_000
    outcome = service.settle_reload(
        SERIAL, reload_id="r1", purse_after_vnd=50_000, transaction_counter=998
    )
    assert outcome is ReloadOutcome.LOADED
    account = ledger.get_account(account_id)
    assert (account.posted_vnd, account.pending_vnd) == (150_000, 0)
    assert service.get(SERIAL).purse_vnd == 50_000
    with pytest.raises(ReloadNotOpen):
        service.settle_reload(
            SERIAL, reload_id="r1", purse_after_vnd=50_000, transaction_counter=997
        )


def test_a_reload_torn_before_the_card_committed_releases_the_hold(
    service: SmartCards, ledger: Ledger
) -> None:
    account_id = funded_account(ledger)
    service.issue(account_id, serial=SERIAL)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=50_000, purse_before_vnd=0)
    outcome = service.settle_reload(
        SERIAL, reload_id="r1", purse_after_vnd=0, transaction_counter=998
    )
    assert outcome is ReloadOutcome.NOT_LOADED
    account = ledger.get_account(account_id)
    assert (account.posted_vnd, account.pending_vnd) == (200_000, 0)


def test_settling_again_after_the_ledger_step_finishes_the_card_step(
    service: SmartCards, ledger: Ledger
) -> None:
    # A crash between posting the hold and saving the card leaves the reload open; settling
    # again must not fail on the already-posted hold nor post twice.
    account_id = funded_account(ledger)
    service.issue(account_id, serial=SERIAL)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=50_000, purse_before_vnd=0)
    ledger.execute(PostHold(account_id, reload_hold_id("r1")))
    outcome = service.settle_reload(
        SERIAL, reload_id="r1", purse_after_vnd=50_000, transaction_counter=998
    )
    assert outcome is ReloadOutcome.LOADED
    assert ledger.get_account(account_id).posted_vnd == 150_000
    assert service.get(SERIAL).open_reloads == {}


def test_a_purse_that_matches_neither_outcome_is_refused(
    service: SmartCards, ledger: Ledger
) -> None:
    service.issue(funded_account(ledger), serial=SERIAL)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=50_000, purse_before_vnd=0)
    with pytest.raises(PurseUnexplained):
        service.settle_reload(
            SERIAL, reload_id="r1", purse_after_vnd=20_000, transaction_counter=998
        )


def test_a_repeated_transaction_counter_is_refused_as_a_clone(
    service: SmartCards, ledger: Ledger
) -> None:
    service.issue(funded_account(ledger), serial=SERIAL)
    service.record_session(SERIAL, purse_vnd=42_000, transaction_counter=996)
    with pytest.raises(TransactionCounterReplayed):
        service.record_session(SERIAL, purse_vnd=50_000, transaction_counter=996)
    assert service.get(SERIAL).purse_vnd == 42_000


def test_a_blocked_card_takes_no_reload(service: SmartCards, ledger: Ledger) -> None:
    account_id = funded_account(ledger)
    service.issue(account_id, serial=SERIAL)
    assert service.block(SERIAL, reason="stolen").status is SmartCardStatus.BLOCKED
    with pytest.raises(SmartCardNotActive):
        service.start_reload(SERIAL, reload_id="r1", amount_vnd=1_000, purse_before_vnd=0)
    with pytest.raises(HoldNotFound):
        ledger.execute(VoidHold(account_id, reload_hold_id("r1")))


def test_replacing_a_lost_card_returns_its_last_purse_to_the_account_once(
    service: SmartCards, ledger: Ledger
) -> None:
    account_id = funded_account(ledger, 100_000)
    service.issue(account_id, serial=SERIAL)
    service.record_session(SERIAL, purse_vnd=42_000, transaction_counter=996)
    new = service.replace(SERIAL, replacement_serial=OTHER)
    assert (new.serial, new.account_id) == (OTHER, account_id)
    assert service.get(SERIAL).status is SmartCardStatus.REPLACED
    assert ledger.get_account(account_id).posted_vnd == 142_000
    with pytest.raises(SmartCardNotActive):
        service.replace(SERIAL, replacement_serial="1111111111111111")
    assert ledger.get_account(account_id).posted_vnd == 142_000


def test_a_card_with_an_open_reload_cannot_be_replaced(service: SmartCards, ledger: Ledger) -> None:
    service.issue(funded_account(ledger), serial=SERIAL)
    service.start_reload(SERIAL, reload_id="r1", amount_vnd=10_000, purse_before_vnd=0)
    with pytest.raises(ReloadsStillOpen):
        service.replace(SERIAL, replacement_serial=OTHER)


def test_a_card_issued_without_a_network_carries_the_one_the_card_formats_personalisation_writes(
    service: SmartCards, ledger: Ledger
) -> None:
    # The vectors' personalisation: OPEN level 1, then UPDATE RECORD of the environment.
    update = trace_bytes(2, "command")
    assert step_name(2).startswith("personalize")
    assert update[1] == UPDATE_RECORD_INS
    personalised = Environment.decode(update[APDU_HEADER_AND_LC_BYTES:])
    card = service.issue(funded_account(ledger), serial=SERIAL)
    assert card.network_id == personalised.network_id == CARD_NETWORK_ID_DEFAULT == 0x0101
