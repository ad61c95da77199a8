"""What a batch of parking actions carries, and what each action is answered.

An attendant's handheld queues starts, extensions and ends while it is offline and sends them
together when the link comes back; each carries its own request id, as the one-by-one routes'
requests do, so sending a batch again has the effect of sending it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parking.application.ending import Ended
from parking.application.sessions import Payment, Started, StartRequest
from parking.domain.session import EndedBy, ParkingSession
from ticketing.shared.domain.errors import DomainError

# Actions in one batch: a handheld's queue after a long outage is sent in several. A hundred
# starts are one ledger transaction and one parking save; an end's settlement posts one hold
# per extension, so the ledger commands of a batch stay well under its own batch limit.
PARKING_ACTIONS_MAX = 100


@dataclass(frozen=True)
class StartAction:
    request: StartRequest


@dataclass(frozen=True)
class ExtendAction:
    session_id: UUID
    extension_id: str
    payment: Payment


@dataclass(frozen=True)
class EndAction:
    session_id: UUID
    end_id: str
    ended_by: EndedBy
    # When a handheld queued the end while offline; None: now.
    at: datetime | None = None


Action = StartAction | ExtendAction | EndAction
# A started session, an extended session, an ended one with its record, or the refusal that
# the same request sent alone would have met.
Answer = Started | ParkingSession | Ended | DomainError
