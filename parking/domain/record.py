"""The parking detail record: a settled session sealed for clearing, corrected only by credits.

A record never changes once sealed; a correction is a credit referring to it, and the credits
of a record never add up to more than its fee, so its net is never negative.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from parking.domain import limits
from parking.domain.errors import CreditExceedsFee, InvalidCredit, RequestIdReused
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "parking.ParkingDetailRecord"
CREDIT_REFERENCE_PREFIX = "parking-credit:"


def record_id_for(session_id: UUID) -> UUID:
    return url_uuid5(f"tapledger:parking-record:{session_id}")


def credit_reference(record_id: UUID, number: int) -> str:
    """The payment reference of a credit's refund top-up on the transport account."""
    return f"{CREDIT_REFERENCE_PREFIX}{record_id.hex}:{number}"


class ParkingDetailRecord(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Sealed(Created):
        TOPIC = f"{TOPIC_PREFIX}.Sealed"
        session_id: UUID
        lot_id: str
        operator_id: str
        table_id: str
        versions: list[int]
        plate: str
        vehicle_class: str
        account_id: UUID
        started_at: datetime
        started_by: str
        ended_at: datetime
        ended_by: str
        segments: list[dict[str, Any]]
        fee_vnd: int
        held_vnd: int
        posted_vnd: int
        debited_vnd: int
        unpaid_vnd: int
        sealed_at: datetime

    class Credited(Event):
        TOPIC = f"{TOPIC_PREFIX}.Credited"
        credit_id: str
        number: int
        amount_vnd: int
        reason: str
        at: datetime

    @event(Sealed)
    def __init__(
        self,
        session_id: UUID,
        lot_id: str,
        operator_id: str,
        table_id: str,
        versions: list[int],
        plate: str,
        vehicle_class: str,
        account_id: UUID,
        started_at: datetime,
        started_by: str,
        ended_at: datetime,
        ended_by: str,
        segments: list[dict[str, Any]],
        fee_vnd: int,
        held_vnd: int,
        posted_vnd: int,
        debited_vnd: int,
        unpaid_vnd: int,
        sealed_at: datetime,
    ) -> None:
        self.session_id = session_id
        self.lot_id = lot_id
        self.operator_id = operator_id
        self.table_id = table_id
        self.versions = versions
        self.plate = plate
        self.vehicle_class = vehicle_class
        self.account_id = account_id
        self.started_at = started_at
        self.started_by = started_by
        self.ended_at = ended_at
        self.ended_by = ended_by
        self.segments = segments
        self.fee_vnd = fee_vnd
        self.held_vnd = held_vnd
        self.posted_vnd = posted_vnd
        self.debited_vnd = debited_vnd
        self.unpaid_vnd = unpaid_vnd
        self.sealed_at = sealed_at
        # credit id -> {"number", "amount_vnd", "reason"}
        self.credits: dict[str, dict[str, Any]] = {}

    @classmethod
    def create_id(cls, session_id: UUID, **_: Any) -> UUID:
        return record_id_for(session_id)

    @property
    def credited_vnd(self) -> int:
        return sum(int(credit["amount_vnd"]) for credit in self.credits.values())

    @property
    def net_vnd(self) -> int:
        return self.fee_vnd - self.credited_vnd

    def credit_repeats(self, credit_id: str, amount_vnd: int, reason: str) -> bool:
        known = self.credits.get(credit_id)
        if known is None:
            return False
        if known["amount_vnd"] != amount_vnd or known["reason"] != reason:
            raise RequestIdReused(credit_id)
        return True

    def check_credit(self, amount_vnd: int, reason: str) -> None:
        if amount_vnd <= 0:
            raise InvalidCredit("a credit is a positive amount")
        if not reason.strip() or len(reason) > limits.CREDIT_REASON_MAX_CHARS:
            raise InvalidCredit(f"a credit's reason is 1 to {limits.CREDIT_REASON_MAX_CHARS} chars")
        if len(self.credits) >= limits.CREDITS_MAX or self.credited_vnd + amount_vnd > self.fee_vnd:
            raise CreditExceedsFee(self.fee_vnd, self.credited_vnd, amount_vnd)

    @event(Credited)
    def credit(
        self, credit_id: str, number: int, amount_vnd: int, reason: str, at: datetime
    ) -> None:
        require(self.credited_vnd + amount_vnd <= self.fee_vnd, "credits stay within the fee")
        self.credits[credit_id] = {"number": number, "amount_vnd": amount_vnd, "reason": reason}
        self.last_credited_at = at
