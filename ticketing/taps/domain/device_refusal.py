"""A device's request the backend refused, recorded with its reason: an enrolment code that could
not enrol (unknown, used, expired, revoked), or an upload of taps refused whole (a revoked
validator, a token replaced or revoked, a device uploading as another).

A refused upload loses no tap: the device keeps its taps in its outbox and sends them again once
it may (`validators.uploader`). The record is for staff: who tried, as which validator, why, and
which taps. Its id is chosen by the application so that a device retrying the same refused batch
again and again is recorded once per batch (or, when the batch was not read, once per hour),
not once per retry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.DeviceRefusal"
# A refusal's reason is one of the stable error codes (`enrolment_code_used`, ...).
REFUSAL_REASON_MAX_CHARS = 40


class RefusedRequest(StrEnum):
    ENROLMENT = "enrolment"
    UPLOAD = "upload"


@dataclass(frozen=True)
class RefusalFacts:
    """What is known of a refused request (see `DeviceRefusal.Recorded`)."""

    request: str
    reason: str
    validator_id: int = 0
    token_validator_id: int = 0
    token_id: str = ""
    epoch: int = 0
    first_seq: int = 0
    last_seq: int = 0
    taps: int = 0


def refusal_id(key: str) -> UUID:
    return url_uuid5(f"/tapledger/device-refusals/{key}")


class DeviceRefusal(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Recorded(Created):
        TOPIC = f"{TOPIC_PREFIX}.Recorded"
        request: str
        reason: str
        # The validator the request named (an upload's body), or the code was made for; 0 when
        # neither is known (an unknown code, or a token whose upload was not read).
        validator_id: int
        # The validator whose token made the request (0: none, an enrolment has no token).
        token_validator_id: int
        token_id: str
        epoch: int
        first_seq: int  # 0 when no taps are known
        last_seq: int
        taps: int
        at: datetime

    @event(Recorded)
    def __init__(
        self,
        request: str,
        reason: str,
        validator_id: int,
        token_validator_id: int,
        token_id: str,
        epoch: int,
        first_seq: int,
        last_seq: int,
        taps: int,
        at: datetime,
    ) -> None:
        self.request = request
        self.reason = reason
        self.validator_id = validator_id
        self.token_validator_id = token_validator_id
        self.token_id = token_id
        self.epoch = epoch
        self.first_seq = first_seq
        self.last_seq = last_seq
        self.taps = taps
        self.at = at

    @classmethod
    def record(cls, facts: RefusalFacts, *, key: str, at: datetime) -> DeviceRefusal:
        """The refusal, named by `key`: the same key again is the same record."""
        refusal: DeviceRefusal = cls._create(
            cls.Recorded, id=refusal_id(key), at=at, **asdict(facts)
        )
        return refusal
