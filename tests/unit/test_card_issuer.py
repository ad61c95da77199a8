"""Virtual cards and issuer keys through the CardIssuer use cases, as `bootstrap` assembles them."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tapledger.bootstrap import Container
from tests.builders.product import local_product
from tests.doubles import Clock
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.errors import AccountBlocked, AccountNotFound
from ticketing.cards.adapters.key_vault import KeyVault, SealedKeyUnreadable
from ticketing.cards.application.card_issuer import CERTIFICATE_LIFETIME_S, CardIssuer
from ticketing.cards.domain.issuer_keys import (
    ISSUER_KEY_OVERLAP_MIN_S,
    RING_ID,
    ActiveIssuerKeyRevoked,
    IssuerKeyAlreadyRevoked,
    IssuerKeyNotFound,
    IssuerKeyRing,
    KeyOverlapOutOfRange,
)
from ticketing.cards.domain.virtual_card import CardStatus, InvalidDeviceKey, VirtualCardNotActive
from ticketing.tl1.device import sign_code
from ticketing.tl1.keyset import IssuerKeySet
from ticketing.tl1.layout import parse_certificate
from ticketing.tl1.replay import ReplayWindow
from ticketing.tl1.verify import Decision, Verifier

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def product(tmp_path: Path, clock: Clock) -> Iterator[Container]:
    with local_product(tmp_path, clock=clock) as container:
        yield container


@pytest.fixture
def ledger(product: Container) -> Ledger:
    return product.ledger


@pytest.fixture
def cards(product: Container) -> CardIssuer:
    return product.cards  # its issuer key made at start, as every process does


def device_key(compressed: bool = False) -> bytes:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    form = PublicFormat.CompressedPoint if compressed else PublicFormat.UncompressedPoint
    return public.public_bytes(Encoding.X962, form)


def test_certificate_names_the_card_category_active_key_and_a_72_hour_life(
    cards: CardIssuer, ledger: Ledger
) -> None:
    account = ledger.open_account(rider_category=2)
    card = cards.issue_virtual_card(account.id, device_key=device_key())
    certificate = parse_certificate(base64.b64decode(card.certificate_b64))
    assert certificate.card_id == card.id
    assert certificate.rider_category == 2
    assert certificate.issuer_key_id == card.issuer_key_id == 1
    assert certificate.not_after - certificate.not_before == CERTIFICATE_LIFETIME_S <= 72 * 3600
    assert certificate.not_before <= int(START.timestamp()) < certificate.not_after
    assert certificate.device_key.hex() == card.device_key_hex


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "uncompressed"])
def test_both_sec1_forms_of_a_device_key_are_accepted(
    cards: CardIssuer, ledger: Ledger, compressed: bool
) -> None:
    account = ledger.open_account(rider_category=0)
    card = cards.issue_virtual_card(account.id, device_key=device_key(compressed))
    assert len(bytes.fromhex(card.device_key_hex)) == 33


@pytest.mark.parametrize(
    "key", [b"", b"\x04" + bytes(64), b"\x02" + bytes(31), os.urandom(65)], ids=str
)
def test_a_device_key_that_is_not_a_p256_point_is_refused(
    cards: CardIssuer, ledger: Ledger, key: bytes
) -> None:
    account = ledger.open_account(rider_category=0)
    with pytest.raises(InvalidDeviceKey):
        cards.issue_virtual_card(account.id, device_key=key)


def test_issuing_a_second_card_retires_the_first(cards: CardIssuer, ledger: Ledger) -> None:
    account = ledger.open_account(rider_category=0)
    first = cards.issue_virtual_card(account.id, device_key=device_key())
    second = cards.issue_virtual_card(account.id, device_key=device_key())
    assert cards.get_virtual_card(first.id).status is CardStatus.RETIRED
    assert cards.active_virtual_cards(account.id) == [second.id]
    with pytest.raises(VirtualCardNotActive):
        cards.renew_virtual_card(first.id)


def test_more_active_cards_may_be_allowed_by_configuration(tmp_path: Path, clock: Clock) -> None:
    with local_product(tmp_path, clock=clock, virtual_cards_active_max=2) as product:
        account = product.ledger.open_account(rider_category=0)
        issuer = product.cards
        ids = [issuer.issue_virtual_card(account.id, device_key=device_key()).id for _ in range(3)]
        assert issuer.active_virtual_cards(account.id) == ids[1:]
        assert issuer.get_virtual_card(ids[0]).status is CardStatus.RETIRED


def test_cards_are_refused_for_unknown_or_blocked_accounts(
    cards: CardIssuer, ledger: Ledger
) -> None:
    with pytest.raises(AccountNotFound):
        cards.issue_virtual_card(UUID(int=7), device_key=device_key())
    account = ledger.open_account(rider_category=0)
    ledger.block_account(account.id, reason="fraud")
    with pytest.raises(AccountBlocked):
        cards.issue_virtual_card(account.id, device_key=device_key())


def test_renewal_keeps_the_device_key_and_moves_the_expiry(
    cards: CardIssuer, ledger: Ledger, clock: Clock
) -> None:
    account = ledger.open_account(rider_category=0)
    card = cards.issue_virtual_card(account.id, device_key=device_key())
    clock.now += timedelta(hours=60)
    renewed = cards.renew_virtual_card(card.id)
    assert renewed.device_key_hex == card.device_key_hex
    assert renewed.not_after == card.not_after + 60 * 3600


def test_a_blocked_card_cannot_be_renewed_or_blocked_again(
    cards: CardIssuer, ledger: Ledger
) -> None:
    account = ledger.open_account(rider_category=0)
    card = cards.issue_virtual_card(account.id, device_key=device_key())
    cards.block_virtual_card(card.id, reason="phone stolen")
    assert cards.active_virtual_cards(account.id) == []
    with pytest.raises(VirtualCardNotActive):
        cards.renew_virtual_card(card.id)
    with pytest.raises(VirtualCardNotActive):
        cards.block_virtual_card(card.id, reason="again")


def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_for_the_overlap(
    cards: CardIssuer, ledger: Ledger, clock: Clock
) -> None:
    new_key = cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    account = ledger.open_account(rider_category=0)
    assert cards.issue_virtual_card(account.id, device_key=device_key()).issuer_key_id == new_key
    assert set(cards.published_keys().keys) == {1, new_key}
    clock.now += timedelta(seconds=ISSUER_KEY_OVERLAP_MIN_S + 1)
    assert set(cards.published_keys().keys) == {new_key}


def test_revocation_lists_the_key_as_revoked_and_bumps_the_version(cards: CardIssuer) -> None:
    cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    before = cards.published_keys().version
    cards.revoke_issuer_key(1, reason="HSM lost")
    published = cards.published_keys()
    assert published.revoked == [1]
    assert 1 not in published.keys  # a verifier trusting only `keys` never trusts it
    assert published.version > before


def test_key_ring_refuses_what_would_break_it(cards: CardIssuer) -> None:
    with pytest.raises(ActiveIssuerKeyRevoked):
        cards.revoke_issuer_key(1, reason="the only signer")
    with pytest.raises(IssuerKeyNotFound):
        cards.revoke_issuer_key(99, reason="no such key")
    with pytest.raises(KeyOverlapOutOfRange):
        cards.rotate_issuer_key(overlap_s=60)
    cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    cards.revoke_issuer_key(1, reason="retired early")
    with pytest.raises(IssuerKeyAlreadyRevoked):
        cards.revoke_issuer_key(1, reason="twice")


def test_ensuring_the_issuer_key_twice_creates_one_key(cards: CardIssuer) -> None:
    assert cards.ensure_issuer_key() == 1
    assert list(cards.published_keys().keys) == [1]


def test_private_keys_are_stored_sealed_and_never_in_events(cards: CardIssuer) -> None:
    ring: IssuerKeyRing = cards.repository.get(RING_ID)
    _, sealed = ring.signing_key()
    stored = b"".join(n.state for n in cards.notification_log.select(start=1, limit=100))
    assert b"PRIVATE" not in stored
    assert sealed.encode() in stored  # only the sealed form is there
    opened = cards.sealer.open(sealed, key_id=1)
    public_hex = cards.published_keys().keys[1][0]
    assert opened.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex() == public_hex


def test_a_sealed_key_opens_only_with_its_kek_and_its_key_id() -> None:
    vault = KeyVault(os.urandom(32))
    sealed = vault.seal(Ed25519PrivateKey.generate(), key_id=3)
    with pytest.raises(SealedKeyUnreadable):
        KeyVault(os.urandom(32)).open(sealed, key_id=3)
    with pytest.raises(SealedKeyUnreadable):
        vault.open(sealed, key_id=4)
    with pytest.raises(ValueError, match="32 bytes"):
        KeyVault(b"short")
    assert "sealed" in repr(vault)


def gate(cards: CardIssuer) -> Verifier:
    published = cards.published_keys()
    keys = IssuerKeySet.from_bytes(
        {key_id: hex_key for key_id, (hex_key, _) in published.keys.items()},
        revoked=published.revoked,
        version=published.version,
    )
    return Verifier(keys, set(), replay_window=ReplayWindow(), certificate_cache=None)


def test_codes_of_the_old_key_pass_during_the_overlap_and_fail_after_revocation(
    cards: CardIssuer, ledger: Ledger, clock: Clock
) -> None:
    phone = ec.generate_private_key(ec.SECP256R1())
    public = phone.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    card = cards.issue_virtual_card(ledger.open_account(rider_category=0).id, device_key=public)
    certificate = base64.b64decode(card.certificate_b64)
    now = int(clock.now.timestamp())

    def code(counter: int) -> str:
        return sign_code(
            certificate=certificate, device_private_key=phone, generated_at=now, counter=counter
        )

    cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    assert gate(cards).verify(code(1), now).decision is Decision.ACCEPTED
    cards.revoke_issuer_key(card.issuer_key_id, reason="key leaked")
    assert gate(cards).verify(code(2), now).decision is Decision.REVOKED_ISSUER_KEY
    renewed = cards.renew_virtual_card(card.id)
    certificate = base64.b64decode(renewed.certificate_b64)
    assert gate(cards).verify(code(3), now).decision is Decision.ACCEPTED


def test_a_gate_that_reads_only_the_keys_refuses_codes_of_a_revoked_key(
    cards: CardIssuer, ledger: Ledger, clock: Clock
) -> None:
    phone = ec.generate_private_key(ec.SECP256R1())
    public = phone.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    card = cards.issue_virtual_card(ledger.open_account(rider_category=0).id, device_key=public)
    now = int(clock.now.timestamp())
    code = sign_code(
        certificate=base64.b64decode(card.certificate_b64),
        device_private_key=phone,
        generated_at=now,
        counter=1,
    )
    cards.rotate_issuer_key(overlap_s=ISSUER_KEY_OVERLAP_MIN_S)
    cards.revoke_issuer_key(card.issuer_key_id, reason="key leaked")
    published = cards.published_keys()
    # A verifier that ignores the revoked list: it must find no key to trust the code with.
    keys_only = IssuerKeySet.from_bytes({k: h for k, (h, _) in published.keys.items()})
    verifier = Verifier(keys_only, set(), replay_window=ReplayWindow(), certificate_cache=None)
    assert verifier.verify(code, now).decision is Decision.UNKNOWN_ISSUER_KEY
