"""A rider's virtual card: a phone's device key, certified by the issuer for at most 72 hours.

The certificate bytes are made outside the domain (they need the issuer's private key) and
recorded here as issued, so the history shows exactly what each phone was given.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.errors import DomainError

TOPIC_PREFIX = "ticketing.VirtualCard"
BLOCK_REASON_MAX_CHARS = 140


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # lost or stolen: codes refused everywhere via the deny list
    RETIRED = "retired"  # replaced by a newer medium of the same account


class VirtualCard(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Issued(Created):
        TOPIC = f"{TOPIC_PREFIX}.Issued"
        card_id: UUID
        account_id: UUID
        device_key_hex: str
        rider_category: int
        issuer_key_id: int
        certificate_b64: str
        not_before: int
        not_after: int
        at: datetime

    class Renewed(Event):
        TOPIC = f"{TOPIC_PREFIX}.Renewed"
        issuer_key_id: int
        certificate_b64: str
        not_before: int
        not_after: int
        at: datetime

    class Blocked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Blocked"
        reason: str
        at: datetime

    class Retired(Event):
        TOPIC = f"{TOPIC_PREFIX}.Retired"
        replaced_by: UUID
        at: datetime

    @event(Issued)
    def __init__(
        self,
        card_id: UUID,
        account_id: UUID,
        device_key_hex: str,
        rider_category: int,
        issuer_key_id: int,
        certificate_b64: str,
        not_before: int,
        not_after: int,
        at: datetime,
    ) -> None:
        self.account_id = account_id
        self.device_key_hex = device_key_hex
        self.rider_category = rider_category
        self.status_code = CardStatus.ACTIVE.value
        self._certified(issuer_key_id, certificate_b64, not_before, not_after)

    @staticmethod
    def create_id(card_id: UUID) -> UUID:
        """The issuer chooses the card id: it is also inside the certificate."""
        return card_id

    @classmethod
    def issue(cls, **fields: Any) -> VirtualCard:
        return cls(**fields)

    @property
    def status(self) -> CardStatus:
        return CardStatus(self.status_code)

    def renew(
        self,
        *,
        issuer_key_id: int,
        certificate_b64: str,
        not_before: int,
        not_after: int,
        at: datetime,
    ) -> None:
        self.check_active()
        self._renewed(
            issuer_key_id=issuer_key_id,
            certificate_b64=certificate_b64,
            not_before=not_before,
            not_after=not_after,
            at=at,
        )

    @event(Renewed)
    def _renewed(
        self,
        issuer_key_id: int,
        certificate_b64: str,
        not_before: int,
        not_after: int,
        at: datetime,
    ) -> None:
        self._certified(issuer_key_id, certificate_b64, not_before, not_after)

    def _certified(
        self, issuer_key_id: int, certificate_b64: str, not_before: int, not_after: int
    ) -> None:
        self.issuer_key_id = issuer_key_id
        self.certificate_b64 = certificate_b64
        self.not_before = not_before
        self.not_after = not_after

    def block(self, *, reason: str, at: datetime) -> None:
        self.check_active()
        self._blocked(reason=reason[:BLOCK_REASON_MAX_CHARS], at=at)

    @event(Blocked)
    def _blocked(self, reason: str, at: datetime) -> None:
        self.status_code = CardStatus.BLOCKED.value

    def retire(self, *, replaced_by: UUID, at: datetime) -> None:
        self.check_active()
        self._retired(replaced_by=replaced_by, at=at)

    @event(Retired)
    def _retired(self, replaced_by: UUID, at: datetime) -> None:
        self.status_code = CardStatus.RETIRED.value

    def check_active(self) -> None:
        if self.status is not CardStatus.ACTIVE:
            raise VirtualCardNotActive(self.id, self.status)


class VirtualCardNotFound(DomainError):
    code = "virtual_card_not_found"

    def __init__(self, card_id: UUID) -> None:
        super().__init__(f"no virtual card {card_id}")


class VirtualCardNotActive(DomainError):
    code = "virtual_card_not_active"

    def __init__(self, card_id: UUID, status: CardStatus) -> None:
        super().__init__(f"virtual card {card_id} is {status}; issue a new one")


class InvalidDeviceKey(DomainError):
    code = "invalid_device_key"

    def __init__(self) -> None:
        super().__init__("device_key must be a P-256 public key, SEC1 compressed or uncompressed")
