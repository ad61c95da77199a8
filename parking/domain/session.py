"""A parking session: a vehicle in a lot, paid from a transport account through holds.

Its life is started (a hold of the quoted amount), extended (a further hold of the difference),
ended (the fee for the real stay fixed, with its segments) and settled (the fee posted from the
holds, the rest released, what the holds could not cover debited or left unpaid). Ending and
settling are two events because the money moves in the ledger between them: a process that dies
in between leaves an ended session that the next attempt, or the sweeper, settles with the fee
already fixed, so a retry never prices the stay again at a later time.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from hashlib import sha256
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from parking.domain import limits
from parking.domain.errors import ExtensionNotLater, RequestIdReused, SessionEnded
from parking.domain.pricing import Quote
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "parking.ParkingSession"
HOLD_ID_PREFIX = "parking:"
EXTENSION_DIGEST_CHARS = 16


class SessionState(StrEnum):
    OPEN = "open"
    ENDED = "ended"  # the fee is fixed; the money is being moved
    SETTLED = "settled"


class StartedBy(StrEnum):
    APP = "app"
    ATTENDANT = "attendant"
    RESERVATION = "reservation"


class EndedBy(StrEnum):
    APP = "app"
    ATTENDANT = "attendant"
    SWEEPER = "sweeper"


def session_id_for(start_id: str) -> UUID:
    return url_uuid5(f"tapledger:parking-session:{start_id}")


def start_hold_id(session_id: UUID) -> str:
    """The ledger hold placed when a session starts."""
    return f"{HOLD_ID_PREFIX}{session_id.hex}:start"


def extension_hold_id(session_id: UUID, extension_id: str) -> str:
    """The ledger hold of one extension, named by the extension's own id: two extensions
    racing each place their own hold, so the loser releases only what it placed."""
    digest = sha256(extension_id.encode()).hexdigest()[:EXTENSION_DIGEST_CHARS]
    return f"{HOLD_ID_PREFIX}{session_id.hex}:{digest}"


def rest_debit_id(session_id: UUID) -> str:
    """The debit of what a session's holds did not cover."""
    return f"{HOLD_ID_PREFIX}{session_id.hex}:rest"


def segments_as_data(quote: Quote) -> list[dict[str, Any]]:
    return [
        {
            "start": segment.start,
            "end": segment.end,
            "version": segment.version,
            "period": segment.period,
            "rule": segment.rule,
            "blocks": segment.blocks,
            "before_cap_vnd": segment.before_cap_vnd,
            "amount_vnd": segment.amount_vnd,
        }
        for segment in quote.segments
    ]


class ParkingSession(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Started(Created):
        TOPIC = f"{TOPIC_PREFIX}.Started"
        start_id: str
        fingerprint: str
        lot_id: str
        operator_id: str
        table_id: str
        plate: str
        plate_display: str
        vehicle_class: str
        account_id: UUID
        started_by: str
        started_at: datetime
        paid_until: datetime
        ends_by: datetime
        hold_id: str
        held_vnd: int

    class Extended(Event):
        TOPIC = f"{TOPIC_PREFIX}.Extended"
        extension_id: str
        fingerprint: str
        paid_until: datetime
        hold_id: str
        held_vnd: int
        at: datetime

        def apply(self, aggregate: ParkingSession) -> None:
            aggregate.extensions[self.extension_id] = self.fingerprint
            aggregate.paid_until = self.paid_until
            if self.held_vnd > 0:
                aggregate.holds.append({"hold_id": self.hold_id, "amount_vnd": self.held_vnd})
            aggregate.last_extended_at = self.at

    class Ended(Event):
        TOPIC = f"{TOPIC_PREFIX}.Ended"
        end_id: str
        ended_by: str
        ended_at: datetime
        fee_vnd: int
        segments: list[dict[str, Any]]

        def apply(self, aggregate: ParkingSession) -> None:
            aggregate.end_id = self.end_id
            aggregate.ended_by = self.ended_by
            aggregate.ended_at = self.ended_at
            aggregate.fee_vnd = self.fee_vnd
            aggregate.segments = self.segments
            aggregate.state_code = SessionState.ENDED.value

    class Settled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Settled"
        posted_vnd: int
        debited_vnd: int
        unpaid_vnd: int
        at: datetime

        def apply(self, aggregate: ParkingSession) -> None:
            aggregate.posted_vnd = self.posted_vnd
            aggregate.debited_vnd = self.debited_vnd
            aggregate.unpaid_vnd = self.unpaid_vnd
            aggregate.settled_at = self.at
            aggregate.state_code = SessionState.SETTLED.value

    @event(Started)
    def __init__(
        self,
        start_id: str,
        fingerprint: str,
        lot_id: str,
        operator_id: str,
        table_id: str,
        plate: str,
        plate_display: str,
        vehicle_class: str,
        account_id: UUID,
        started_by: str,
        started_at: datetime,
        paid_until: datetime,
        ends_by: datetime,
        hold_id: str,
        held_vnd: int,
    ) -> None:
        self.start_id = start_id
        self.fingerprint = fingerprint
        self.lot_id = lot_id
        self.operator_id = operator_id
        self.table_id = table_id
        self.plate = plate
        self.plate_display = plate_display
        self.vehicle_class = vehicle_class
        self.account_id = account_id
        self.started_by = started_by
        self.started_at = started_at
        self.paid_until = paid_until
        # The table's maximum stay from the start: the sweeper ends the session there.
        self.ends_by = ends_by
        # Every hold placed for the session, in order: {"hold_id": str, "amount_vnd": int}.
        self.holds: list[dict[str, Any]] = (
            [{"hold_id": hold_id, "amount_vnd": held_vnd}] if held_vnd > 0 else []
        )
        # extension id -> its request's fingerprint, so a retry is recognised.
        self.extensions: dict[str, str] = {}
        self.state_code = SessionState.OPEN.value
        self.end_id = ""
        self.ended_by = ""
        self.ended_at: datetime | None = None
        self.fee_vnd = 0
        self.segments: list[dict[str, Any]] = []
        self.posted_vnd = 0
        self.debited_vnd = 0
        self.unpaid_vnd = 0
        self.last_extended_at: datetime | None = None
        self.settled_at: datetime | None = None

    @classmethod
    def create_id(cls, start_id: str) -> UUID:
        return session_id_for(start_id)

    @property
    def state(self) -> SessionState:
        return SessionState(self.state_code)

    @property
    def held_vnd(self) -> int:
        return sum(int(hold["amount_vnd"]) for hold in self.holds)

    def check_start_repeat(self, fingerprint: str) -> None:
        if fingerprint != self.fingerprint:
            raise RequestIdReused(self.start_id)

    def extension_repeats(self, extension_id: str, fingerprint: str) -> bool:
        """Whether this extension was made already; a reused id with another body is refused."""
        known = self.extensions.get(extension_id)
        if known is None:
            return False
        if known != fingerprint:
            raise RequestIdReused(extension_id)
        return True

    def end_repeats(self, end_id: str) -> bool:
        """Whether this end was made already; another end of an ended session is refused."""
        if self.state is SessionState.OPEN:
            return False
        if end_id != self.end_id:
            raise SessionEnded(self.id)
        return True

    def check_open(self) -> None:
        if self.state is not SessionState.OPEN:
            raise SessionEnded(self.id)

    def check_extension(self, paid_until: datetime) -> None:
        self.check_open()
        if paid_until <= self.paid_until:
            raise ExtensionNotLater(self.paid_until)
        if len(self.holds) > limits.EXTENSIONS_MAX:
            raise ExtensionNotLater(self.paid_until)

    def extend(
        self,
        extension_id: str,
        fingerprint: str,
        paid_until: datetime,
        hold_id: str,
        held_vnd: int,
        at: datetime,
    ) -> None:
        require(self.state is SessionState.OPEN, "only an open session is extended")
        self.trigger_event(
            self.Extended,
            extension_id=extension_id,
            fingerprint=fingerprint,
            paid_until=paid_until,
            hold_id=hold_id,
            held_vnd=held_vnd,
            at=at,
        )

    def end(
        self,
        end_id: str,
        ended_by: str,
        ended_at: datetime,
        fee_vnd: int,
        segments: list[dict[str, Any]],
    ) -> None:
        require(self.state is SessionState.OPEN, "a session ends once")
        require(ended_at > self.started_at, "a session ends after it starts")
        self.trigger_event(
            self.Ended,
            end_id=end_id,
            ended_by=ended_by,
            ended_at=ended_at,
            fee_vnd=fee_vnd,
            segments=segments,
        )

    def settle(self, posted_vnd: int, debited_vnd: int, unpaid_vnd: int, at: datetime) -> None:
        require(self.state is SessionState.ENDED, "a session is settled once, after its end")
        require(posted_vnd + debited_vnd + unpaid_vnd == self.fee_vnd, "the fee is accounted")
        require(posted_vnd <= self.held_vnd, "no more is posted than was held")
        self.trigger_event(
            self.Settled,
            posted_vnd=posted_vnd,
            debited_vnd=debited_vnd,
            unpaid_vnd=unpaid_vnd,
            at=at,
        )
