"""The invalidation channel on PostgreSQL: what one worker revokes or blocks, the other refuses
as soon as the news arrives, long before its caches would expire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import SessionProof
from tapledger.bootstrap import Container, bootstrap
from tapledger.invalidation import PostgresChannel
from tests.integration.conftest import settings_for
from tests.tap_media import CARD_SERIAL, MASTER_KEYS, Phone
from ticketing.cards.application.invalidation import (
    Invalidation,
    IssuerKeysChanged,
    MessagesMayBeLost,
)
from ticketing.shared.access import Role

pytestmark = pytest.mark.postgres

# News crosses processes in milliseconds; this only bounds a failing test.
DELIVERED_WITHIN_S = 1.0
POLL_S = 0.005
LISTENING_WITHIN_S = 10.0


@pytest.fixture
def workers(postgres_database_url: str, tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    """Two containers on one database, as two API workers, each listening for news."""
    settings = settings_for(tmp_path, postgres_database_url)
    first = bootstrap(settings, sam=SoftwareSam(MASTER_KEYS))
    second = bootstrap(settings, sam=SoftwareSam(MASTER_KEYS), create_schema=False)
    for container in (first, second):
        container.start_invalidations()
        channel = container.invalidations
        assert isinstance(channel, PostgresChannel)
        assert channel.listening.wait(LISTENING_WITHIN_S)
    yield first, second
    second.close()
    first.close()


def within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def test_a_token_revoked_by_one_worker_is_refused_by_the_other(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    issued = first.tokens.issue(Role.OPERATOR, label="desk")
    assert second.tokens.authenticate(issued.token) is not None  # remembered there now
    first.tokens.revoke(issued.principal.token_id)
    assert first.tokens.recent(issued.token) is None  # the revoking worker forgot it at once
    assert within(DELIVERED_WITHIN_S, lambda: second.tokens.recent(issued.token) is None)
    assert second.tokens.authenticate(issued.token) is None


def test_a_card_blocked_by_one_worker_is_refused_by_the_other(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    account = first.ledger.open_account(rider_category=0)
    phone = Phone.new()
    card = first.cards.issue_virtual_card(account.id, device_key=phone.public_key())
    phone.certify(card.certificate_b64)
    verifier = second.taps.verifier
    now = datetime.now(UTC)

    def refused(counter: int) -> str | None:
        code = phone.code(int(now.timestamp()) - 1, counter)
        return verifier.verify_qr(code, datetime.now(UTC)).refusal_reason

    assert refused(1) is None  # the second worker has read its trust, fresh for seconds
    first.cards.block_virtual_card(card.id, reason="phone stolen")
    assert within(DELIVERED_WITHIN_S, lambda: refused(2) == "card_denied")


def test_news_is_delivered_once_in_the_publishing_process_and_once_in_each_other(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    heard: tuple[list[Invalidation], list[Invalidation]] = ([], [])
    first.invalidations.subscribe(heard[0].append)
    second.invalidations.subscribe(heard[1].append)
    first.invalidations.publish(IssuerKeysChanged())
    assert heard[0] == [IssuerKeysChanged()]  # at once, in the publisher's own thread
    assert within(DELIVERED_WITHIN_S, lambda: heard[1] == [IssuerKeysChanged()])
    assert MessagesMayBeLost() not in heard[0]


def test_a_smart_card_blocked_by_one_worker_is_refused_by_the_other(
    workers: tuple[Container, Container],
) -> None:
    first, second = workers
    account = first.ledger.open_account(rider_category=0)
    first.smart_cards.issue(account.id, serial=CARD_SERIAL.hex())
    # The deny list is consulted before the SAM: these bytes never reach it.
    proof = SessionProof(CARD_SERIAL, KeyLevel(3), bytes(8), bytes(8), 1, b"", bytes(8))
    verifier = second.taps.verifier

    def reason() -> str | None:
        return verifier.verify_card(CARD_SERIAL.hex(), proof, datetime.now(UTC))

    assert reason() != "card_denied"
    first.smart_cards.block(CARD_SERIAL.hex(), reason="lost")
    assert within(DELIVERED_WITHIN_S, lambda: reason() == "card_denied")


def test_a_listener_that_lost_its_connection_has_every_cache_read_again(
    workers: tuple[Container, Container], postgres_database_url: str
) -> None:
    _, second = workers
    channel = second.invalidations
    assert isinstance(channel, PostgresChannel)
    heard: list[Invalidation] = []
    channel.subscribe(heard.append)
    with psycopg.connect(postgres_database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
        )
    assert within(LISTENING_WITHIN_S, lambda: MessagesMayBeLost() in heard)
    assert channel.listening.wait(LISTENING_WITHIN_S)
