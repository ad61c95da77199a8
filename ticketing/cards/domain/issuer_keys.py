"""The issuer's signing keys for virtual-card certificates: one ring, rotated and revoked.

The ring holds public keys and *sealed* private keys only: sealing and key generation happen
outside the domain, so no event or snapshot ever carries a usable private key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.IssuerKeyRing"
ISSUER_KEY_ID_MAX = 0xFFFF  # a u16 in the TL1 layout
# Old and new keys overlap at least as long as a certificate lives (72 h), so every certificate
# signed by the old key stays valid until it expires on its own.
ISSUER_KEY_OVERLAP_MIN_S = 72 * 3600
ISSUER_KEY_OVERLAP_MAX_S = 30 * 24 * 3600
ISSUER_KEYS_MAX = 1024
RING_ID = url_uuid5("/tapledger/issuer-key-ring")

ACTIVE, RETIRING, REVOKED = "active", "retiring", "revoked"


class IssuerKeyRing(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Started(Created):
        TOPIC = f"{TOPIC_PREFIX}.Started"
        at: datetime

    class KeyAdded(Event):
        TOPIC = f"{TOPIC_PREFIX}.KeyAdded"
        key_id: int
        public_key_hex: str
        sealed_private_key: str
        at: datetime

    class KeyRetiring(Event):
        TOPIC = f"{TOPIC_PREFIX}.KeyRetiring"
        key_id: int
        valid_until: datetime
        at: datetime

    class KeyRevoked(Event):
        TOPIC = f"{TOPIC_PREFIX}.KeyRevoked"
        key_id: int
        reason: str
        at: datetime

    class Snapshot(BaseSnapshot):
        TOPIC = f"{TOPIC_PREFIX}.Snapshot"

    @staticmethod
    def create_id() -> UUID:
        return RING_ID

    @event(Started)
    def __init__(self, at: datetime) -> None:
        # key id (as str: JSON keys are strings) -> {"public_key_hex", "sealed_private_key",
        # "status", "valid_until" (datetime or None)}
        self.keys: dict[str, dict[str, Any]] = {}
        self.active_key_id: int | None = None
        self.next_key_id = 1

    def add_key(
        self, *, public_key_hex: str, sealed_private_key: str, overlap_s: int, at: datetime
    ) -> int:
        """Adds a key that signs from now on; the previous signer stays valid for `overlap_s`."""
        if not ISSUER_KEY_OVERLAP_MIN_S <= overlap_s <= ISSUER_KEY_OVERLAP_MAX_S:
            raise KeyOverlapOutOfRange(overlap_s)
        if len(self.keys) >= ISSUER_KEYS_MAX or self.next_key_id > ISSUER_KEY_ID_MAX:
            raise IssuerKeysExhausted
        previous = self.active_key_id
        key_id = self.next_key_id
        self._key_added(
            key_id=key_id,
            public_key_hex=public_key_hex,
            sealed_private_key=sealed_private_key,
            at=at,
        )
        if previous is not None:
            self._key_retiring(
                key_id=previous, valid_until=at + timedelta(seconds=overlap_s), at=at
            )
        return key_id

    @event(KeyAdded)
    def _key_added(
        self, key_id: int, public_key_hex: str, sealed_private_key: str, at: datetime
    ) -> None:
        self.keys[str(key_id)] = {
            "public_key_hex": public_key_hex,
            "sealed_private_key": sealed_private_key,
            "status": ACTIVE,
            "valid_until": None,
        }
        self.active_key_id = key_id
        self.next_key_id = key_id + 1

    @event(KeyRetiring)
    def _key_retiring(self, key_id: int, valid_until: datetime, at: datetime) -> None:
        self.keys[str(key_id)].update(status=RETIRING, valid_until=valid_until)

    def revoke(self, *, key_id: int, reason: str, at: datetime) -> None:
        """Refuses every certificate of the key at once (a leaked or lost private key)."""
        key = self.keys.get(str(key_id))
        if key is None:
            raise IssuerKeyNotFound(key_id)
        if key["status"] == REVOKED:
            raise IssuerKeyAlreadyRevoked(key_id)
        if key_id == self.active_key_id:
            raise ActiveIssuerKeyRevoked(key_id)
        self._key_revoked(key_id=key_id, reason=reason[:140], at=at)

    @event(KeyRevoked)
    def _key_revoked(self, key_id: int, reason: str, at: datetime) -> None:
        self.keys[str(key_id)].update(status=REVOKED)

    def signing_key(self) -> tuple[int, str]:
        """The active key's id and sealed private key."""
        if self.active_key_id is None:
            raise NoActiveIssuerKey
        return self.active_key_id, self.keys[str(self.active_key_id)]["sealed_private_key"]

    def published(self, at: datetime) -> tuple[dict[int, tuple[str, datetime | None]], list[int]]:
        """What validators need: the keys to trust at `at` (public key, valid until) and the ids
        of the revoked ones. A revoked key is never among the keys to trust, so a verifier that
        reads only those refuses its certificates; its id alone is listed as revoked, so a gate
        can still tell a rider the code was refused for a revoked key rather than an unknown
        one. A key retired past its overlap is no longer listed at all."""
        known: dict[int, tuple[str, datetime | None]] = {}
        revoked: list[int] = []
        for key_id, key in self.keys.items():
            if key["status"] == REVOKED:
                revoked.append(int(key_id))
                continue
            if key["valid_until"] is not None and key["valid_until"] <= at:
                continue
            known[int(key_id)] = (key["public_key_hex"], key["valid_until"])
        return known, sorted(revoked)


register_topic(IssuerKeyRing.Snapshot.TOPIC, IssuerKeyRing.Snapshot)


class KeyOverlapOutOfRange(DomainError):
    code = "key_overlap_out_of_range"

    def __init__(self, overlap_s: int) -> None:
        super().__init__(
            f"overlap {overlap_s} s is outside "
            f"{ISSUER_KEY_OVERLAP_MIN_S}..{ISSUER_KEY_OVERLAP_MAX_S} s"
        )


class IssuerKeysExhausted(DomainError):
    code = "issuer_keys_exhausted"

    def __init__(self) -> None:
        super().__init__("no issuer key id is left")


class IssuerKeyNotFound(DomainError):
    code = "issuer_key_not_found"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"no issuer key {key_id}")


class IssuerKeyAlreadyRevoked(DomainError):
    code = "issuer_key_already_revoked"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"issuer key {key_id} is already revoked")


class ActiveIssuerKeyRevoked(DomainError):
    code = "active_issuer_key_revoked"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"issuer key {key_id} signs new certificates; rotate before revoking it")


class NoActiveIssuerKey(DomainError):
    code = "no_active_issuer_key"

    def __init__(self) -> None:
        super().__init__("no issuer key has been created yet")
