"""The backend's trust told of a block or a key change at once: the next tap is refused though
the deny list's read model has not caught up and the refresh interval has not passed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from hardware.sam import SoftwareSam
from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import SessionProof
from tapledger.bootstrap import Container
from tests.builders.product import local_product
from tests.doubles import Clock, DenyList
from tests.tap_media import CARD_SERIAL, MASTER_KEYS, Phone
from ticketing.cards.application.card_issuer import CardIssuer, PublishedKeys
from ticketing.cards.application.invalidation import CardDenied, MessagesMayBeLost
from ticketing.cards.domain.issuer_keys import ISSUER_KEY_OVERLAP_MIN_S
from ticketing.taps.application.tap_verification import TapVerifier

NOW = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


@dataclasses.dataclass
class World:
    product: Container
    phone: Phone
    card_id: UUID

    @property
    def cards(self) -> CardIssuer:
        return self.product.cards

    @property
    def verifier(self) -> TapVerifier:
        return self.product.taps.verifier


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A rider's virtual card in the product as `bootstrap` wires it: the card news reaches the
    verifier on the invalidation channel, and no follower runs, so the deny list's read model
    never catches up."""
    with local_product(tmp_path, clock=Clock(NOW)) as product:
        phone = Phone.new()
        account = product.ledger.open_account(rider_category=0)
        card = product.cards.issue_virtual_card(account.id, device_key=phone.public_key())
        phone.certify(card.certificate_b64)
        yield World(product, phone, card.id)


def code(world: World, counter: int, *, at: datetime = NOW) -> str:
    return world.phone.code(int(at.timestamp()) - 1, counter)


def test_a_virtual_card_blocked_is_refused_at_the_next_tap(world: World) -> None:
    assert world.verifier.verify_qr(code(world, 1), NOW).refusal_reason is None
    world.cards.block_virtual_card(world.card_id, reason="phone stolen")
    verdict = world.verifier.verify_qr(code(world, 2), NOW + timedelta(seconds=1))
    assert verdict.refusal_reason == "card_denied"
    # From the news: the deny list's read model still lists nothing.
    assert world.product.card_views.deny_list_since(0, now=NOW).entries == []


def test_a_tap_made_before_the_block_still_passes(world: World) -> None:
    world.verifier.verify_qr(code(world, 1), NOW)
    world.cards.block_virtual_card(world.card_id, reason="phone stolen")
    earlier = NOW - timedelta(seconds=30)  # made offline, uploaded after the block
    assert world.verifier.verify_qr(code(world, 2, at=earlier), earlier).refusal_reason is None


def test_a_revoked_issuer_key_is_refused_at_the_next_tap(world: World) -> None:
    world.cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    assert world.verifier.verify_qr(code(world, 1), NOW).refusal_reason is None
    world.cards.revoke_issuer_key(1, reason="key leaked")
    assert world.verifier.verify_qr(code(world, 2), NOW).refusal_reason == "revoked_issuer_key"


def card_verifier(deny: DenyList) -> TapVerifier:
    return TapVerifier(
        keys=lambda: PublishedKeys(version=1, keys={}, revoked=[]),
        deny_list=deny,
        card_issued=lambda _: True,
        sam=SoftwareSam(MASTER_KEYS),
        clock=lambda: NOW,
        monotonic=lambda: 0.0,
    )


def denied(serial: str) -> CardDenied:
    return CardDenied(uuid4(), serial, NOW, NOW + timedelta(days=1))


# The deny list is consulted before the SAM: these bytes never reach it.
PROOF = SessionProof(CARD_SERIAL, KeyLevel(3), bytes(8), bytes(8), 1, b"", bytes(8))


def test_a_physical_card_denied_after_the_trust_was_read_is_refused_at_the_next_tap() -> None:
    verifier = card_verifier(DenyList())
    assert verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW) != "card_denied"
    verifier.invalidate(denied(CARD_SERIAL.hex()))
    assert verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW) == "card_denied"


def test_a_card_denied_before_the_trust_was_first_read_is_kept_for_that_read() -> None:
    verifier = card_verifier(DenyList())
    verifier.invalidate(denied(CARD_SERIAL.hex()))
    assert verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW) == "card_denied"


def test_news_that_may_have_been_lost_makes_the_next_tap_read_the_trust_again() -> None:
    deny = DenyList()
    verifier = card_verifier(deny)
    verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW)
    verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW)
    assert deny.reads == 1
    verifier.invalidate(MessagesMayBeLost())
    verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW)
    assert deny.reads == 2


def test_a_tap_stamped_in_the_second_its_card_was_listed_counts_as_after_it() -> None:
    verifier = card_verifier(DenyList())
    listed_at = NOW + timedelta(milliseconds=400)  # taps carry whole seconds: NOW is that second
    verifier.invalidate(CardDenied(uuid4(), CARD_SERIAL.hex(), listed_at, NOW + timedelta(days=1)))
    assert verifier.verify_card(CARD_SERIAL.hex(), PROOF, NOW) == "card_denied"
    earlier = NOW - timedelta(seconds=1)
    assert verifier.verify_card(CARD_SERIAL.hex(), PROOF, earlier) != "card_denied"
