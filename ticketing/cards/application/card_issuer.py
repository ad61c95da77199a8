"""Virtual cards from key to phone: issuer keys, certificates, renewal, blocking (use cases)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.application import AggregateNotFoundError

from ticketing.accounts.domain.account import TransportAccount
from ticketing.cards.domain.account_media import AccountMedia
from ticketing.cards.domain.issuer_keys import (
    ISSUER_KEY_OVERLAP_MIN_S,
    RING_ID,
    IssuerKeyRing,
)
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.cards.domain.virtual_card import InvalidDeviceKey, VirtualCard, VirtualCardNotFound
from ticketing.shared.observed import ObservedApplication
from ticketing.shared.optimistic import save_with_retries
from ticketing.tl1.issuing import compress_p256, device_key_from_bytes, issue_certificate
from ticketing.tl1.layout import FLAGS_OFFSET

# A certificate lives at most 72 h (spec/QR.md); a phone renews it well before.
CERTIFICATE_LIFETIME_S = 72 * 3600
# Validators whose clocks run slightly behind still accept a certificate issued just now.
CERTIFICATE_BACKDATE_S = 60
CONCESSION_PROOF_CHECKED = 0x01  # flags bit 0
# Hanoi's rule: one active medium per person; issuing another retires the oldest.
VIRTUAL_CARDS_ACTIVE_MAX_DEFAULT = 1

T = TypeVar("T")


class Sealer(Protocol):
    """Seals issuer private keys for storage; see `adapters/key_vault.py`."""

    def seal(self, private_key: Ed25519PrivateKey, *, key_id: int) -> str: ...

    def open(self, sealed: str, *, key_id: int) -> Ed25519PrivateKey: ...


@dataclass(frozen=True)
class PublishedKeys:
    """The issuer key set as validators fetch it."""

    version: int
    keys: dict[int, tuple[str, datetime | None]]  # key id -> (public key hex, valid until)
    revoked: list[int]


class CardIssuer(ObservedApplication):
    """Issuer keys and virtual cards; accounts are read from the ledger."""

    name = "Cards"
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "5000"}
    # A physical card records the purse of every verified session: snapshot its stream.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {IssuerKeyRing: 50, SmartCard: 100}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        sealer: Sealer,
        account_of: Callable[[UUID], TransportAccount],
        clock: Callable[[], datetime],
        virtual_cards_active_max: int = VIRTUAL_CARDS_ACTIVE_MAX_DEFAULT,
    ) -> None:
        super().__init__(env)
        self.sealer = sealer
        self.account_of = account_of
        self.clock = clock
        self.virtual_cards_active_max = virtual_cards_active_max

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    # Issuer keys

    def ensure_issuer_key(self) -> int:
        """Creates the first signing key if there is none; returns the active key id. Of two
        processes starting at once, the one whose new ring loses the race reads the other's
        ring again and signs with its key, so the ring starts with one key."""

        def first_key(ring: IssuerKeyRing, at: datetime) -> int:
            if ring.active_key_id is not None:
                return ring.active_key_id
            return self._add_key(ring, ISSUER_KEY_OVERLAP_MIN_S, at)

        return self._change_ring(first_key, create=True)

    def rotate_issuer_key(self, *, overlap_s: int) -> int:
        """Starts signing with a new key; the old one stays valid for `overlap_s`."""
        return self._change_ring(lambda ring, at: self._add_key(ring, overlap_s, at), create=True)

    def _add_key(self, ring: IssuerKeyRing, overlap_s: int, at: datetime) -> int:
        private_key = Ed25519PrivateKey.generate()
        key_id = ring.next_key_id
        return ring.add_key(
            public_key_hex=_public_hex(private_key.public_key()),
            sealed_private_key=self.sealer.seal(private_key, key_id=key_id),
            overlap_s=overlap_s,
            at=at,
        )

    def revoke_issuer_key(self, key_id: int, *, reason: str) -> None:
        self._change_ring(lambda ring, at: ring.revoke(key_id=key_id, reason=reason, at=at))

    def published_keys(self) -> PublishedKeys:
        ring: IssuerKeyRing = self.repository.get(RING_ID)
        live, revoked = ring.published(self.now())
        return PublishedKeys(version=ring.version, keys=live, revoked=revoked)

    def _change_ring(
        self, change: Callable[[IssuerKeyRing, datetime], T], *, create: bool = False
    ) -> T:

        def attempt() -> T:
            at = self.now()
            try:
                ring: IssuerKeyRing = self.repository.get(RING_ID)
            except AggregateNotFoundError:
                if not create:
                    raise
                ring = IssuerKeyRing(at=at)
            result = change(ring, at)
            if ring.pending_events:
                self.save(ring)
            return result

        return save_with_retries(attempt, what="the issuer key ring")

    # Virtual cards

    def issue_virtual_card(
        self, account_id: UUID, *, device_key: bytes, concession_proof_checked: bool = False
    ) -> VirtualCard:
        """Certifies a phone's P-256 key for an open account; the account's older virtual
        cards beyond the allowed number are retired in the same transaction."""
        try:
            device_key_compressed = compress_p256(device_key_from_bytes(device_key))
        except ValueError:
            raise InvalidDeviceKey from None
        account = self.account_of(account_id)
        account.check_open()
        flags = CONCESSION_PROOF_CHECKED if concession_proof_checked else 0

        def attempt() -> VirtualCard:
            at = self.now()
            card_id = uuid4()
            fields = self._certify(
                card_id, int(account.rider_category), flags, device_key_compressed, at
            )
            card = VirtualCard.issue(
                card_id=card_id,
                account_id=account_id,
                device_key_hex=device_key_compressed.hex(),
                rider_category=int(account.rider_category),
                at=at,
                **fields,
            )
            media = self._media(account_id, at)
            displaced = media.bind_virtual_card(
                card_id=card_id, active_max=self.virtual_cards_active_max, at=at
            )
            retired = [self.get_virtual_card(old) for old in displaced]
            for old in retired:
                old.retire(replaced_by=card_id, at=at)
            self.save(card, media, *retired)
            return card

        return save_with_retries(attempt, what="the account's media")

    def renew_virtual_card(self, card_id: UUID) -> VirtualCard:
        """A fresh certificate for the same phone key, signed by the current issuer key."""

        def attempt() -> VirtualCard:
            card = self.get_virtual_card(card_id)
            card.check_active()
            self.account_of(card.account_id).check_open()
            at = self.now()
            device_key = bytes.fromhex(card.device_key_hex)
            fields = self._certify(card_id, card.rider_category, _flags_of(card), device_key, at)
            card.renew(at=at, **fields)
            self.save(card)
            return card

        return save_with_retries(attempt, what="the virtual card")

    def block_virtual_card(self, card_id: UUID, *, reason: str) -> VirtualCard:
        """Puts the card on the deny list: its codes are refused by every validator."""

        def attempt() -> VirtualCard:
            card = self.get_virtual_card(card_id)
            at = self.now()
            card.block(reason=reason, at=at)
            media = self._media(card.account_id, at)
            media.unbind_virtual_card(card_id=card_id, at=at)
            self.save(card, media)
            return card

        return save_with_retries(attempt, what="the virtual card")

    def get_virtual_card(self, card_id: UUID) -> VirtualCard:
        try:
            card: object = self.repository.get(card_id)
        except AggregateNotFoundError:
            raise VirtualCardNotFound(card_id) from None
        if not isinstance(card, VirtualCard):
            raise VirtualCardNotFound(card_id)
        return card

    def active_virtual_cards(self, account_id: UUID) -> list[UUID]:
        try:
            media: AccountMedia = self.repository.get(AccountMedia.create_id(account_id))
        except AggregateNotFoundError:
            return []
        return [UUID(c) for c in media.active_virtual_cards]

    def _media(self, account_id: UUID, at: datetime) -> AccountMedia:
        try:
            media: AccountMedia = self.repository.get(AccountMedia.create_id(account_id))
        except AggregateNotFoundError:
            media = AccountMedia(account_id=account_id, at=at)
        return media

    def _certify(
        self, card_id: UUID, rider_category: int, flags: int, device_key: bytes, at: datetime
    ) -> dict[str, Any]:
        ring: IssuerKeyRing = self.repository.get(RING_ID)
        key_id, sealed = ring.signing_key()
        not_before = int(at.timestamp()) - CERTIFICATE_BACKDATE_S
        not_after = not_before + CERTIFICATE_LIFETIME_S
        certificate = issue_certificate(
            self.sealer.open(sealed, key_id=key_id),
            issuer_key_id=key_id,
            card_id=card_id,
            rider_category=rider_category,
            flags=flags,
            not_before=not_before,
            not_after=not_after,
            device_key=device_key,
        )
        return {
            "issuer_key_id": key_id,
            "certificate_b64": base64.b64encode(certificate).decode("ascii"),
            "not_before": not_before,
            "not_after": not_after,
        }


def _public_hex(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _flags_of(card: VirtualCard) -> int:
    # The concession bit of the last certificate is kept on renewal.
    return base64.b64decode(card.certificate_b64)[FLAGS_OFFSET] & CONCESSION_PROOF_CHECKED
