"""A transfer record: what one caller-chosen transfer id was used for.

Every top-up, debit and hold is recorded under `uuid5` of its id, in the same atomic save as the
account change. A repeat of the id is then recognised without the account keeping every id it ever
saw: with the same content it is the same transfer, with other content a conflict. A hold's record
also remembers how the hold ended, so a second post or void is told apart from an unknown hold.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.accounts.domain import limits
from ticketing.accounts.domain.errors import HoldAlreadyResolved, InvalidTransferId
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "ticketing.Transfer"
_TRANSFER_ID = re.compile(limits.TRANSFER_ID_PATTERN)


class TransferKind(StrEnum):
    TOP_UP = "top_up"
    DEBIT = "debit"
    HOLD = "hold"


class HoldOutcome(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


def check_transfer_id(transfer_id: str) -> None:
    if not 0 < len(transfer_id) <= limits.TRANSFER_ID_MAX_CHARS or not _TRANSFER_ID.fullmatch(
        transfer_id
    ):
        raise InvalidTransferId(transfer_id)


def fingerprint(**request: Any) -> str:
    """A digest of a request's content, stable across processes and Python versions."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Transfer(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Recorded(Created):
        TOPIC = f"{TOPIC_PREFIX}.Recorded"
        transfer_id: str
        account_id: UUID
        kind: str
        amount_vnd: int
        fingerprint: str
        at: datetime

    class HoldResolved(Event):
        TOPIC = f"{TOPIC_PREFIX}.HoldResolved"
        outcome: str
        amount_vnd: int
        at: datetime

        def apply(self, aggregate: Transfer) -> None:
            aggregate.outcome_code = self.outcome
            aggregate.posted_vnd = self.amount_vnd

    @staticmethod
    def create_id(transfer_id: str) -> UUID:
        return url_uuid5(f"/tapledger/transfers/{transfer_id}")

    @event(Recorded)
    def __init__(
        self,
        transfer_id: str,
        account_id: UUID,
        kind: str,
        amount_vnd: int,
        fingerprint: str,
        at: datetime,
    ) -> None:
        self.transfer_id = transfer_id
        self.account_id = account_id
        # Enums are kept as bare values: that is how a snapshot would restore them.
        self.kind_code = kind
        self.amount_vnd = amount_vnd
        self.fingerprint = fingerprint
        self.recorded_at = at
        self.outcome_code = HoldOutcome.PENDING.value if kind == TransferKind.HOLD else None
        self.posted_vnd = 0

    @property
    def kind(self) -> TransferKind:
        return TransferKind(self.kind_code)

    @property
    def outcome(self) -> HoldOutcome | None:
        return None if self.outcome_code is None else HoldOutcome(self.outcome_code)

    @property
    def finished(self) -> bool:
        """No command changes it again: anything but a hold still pending."""
        return self.kind is not TransferKind.HOLD or self.outcome is not HoldOutcome.PENDING

    @classmethod
    def record(
        cls,
        *,
        transfer_id: str,
        account_id: UUID,
        kind: TransferKind,
        amount_vnd: int,
        fingerprint: str,
        at: datetime,
    ) -> Transfer:
        check_transfer_id(transfer_id)
        # `_create` with the id: what calling the class does, without matching the arguments
        # against `__init__` again (a fifth of the cost of recording a transfer).
        return cls._create(
            cls.Recorded,
            id=cls.create_id(transfer_id),
            transfer_id=transfer_id,
            account_id=account_id,
            kind=kind.value,
            amount_vnd=amount_vnd,
            fingerprint=fingerprint,
            at=at,
        )

    def resolve(self, *, outcome: HoldOutcome, amount_vnd: int, at: datetime) -> None:
        """Ends a pending hold; `amount_vnd` is what was posted (0 unless posted)."""
        require(self.kind is TransferKind.HOLD, "only holds are resolved")
        require(outcome is not HoldOutcome.PENDING, "a hold resolves to a final outcome")
        if self.outcome is not HoldOutcome.PENDING:
            raise HoldAlreadyResolved(self.transfer_id, str(self.outcome))
        self.trigger_event(self.HoldResolved, outcome=outcome.value, amount_vnd=amount_vnd, at=at)
