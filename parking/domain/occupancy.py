"""What must be unique across every process: one open session per plate per lot, and one start
per scanned code. Each is an aggregate named by what it guards and saved in the same transaction
as the session it concerns, so two workers starting the same plate (or the same code) at once
cannot both commit: the event store refuses the second save, and its retry sees the first.

A plate's aggregate also keeps the open session's paid end, so an enforcement check is one read.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

PLATE_TOPIC = "parking.PlateAtLot"
CODE_TOPIC = "parking.ScannedCodeUse"


def plate_at_lot_id(lot_id: str, plate: str) -> UUID:
    return url_uuid5(f"tapledger:parking-plate:{lot_id}:{plate}")


def code_use_id(card_id: UUID, counter: int) -> UUID:
    return url_uuid5(f"tapledger:parking-code:{card_id}:{counter}")


class PlateAtLot(Aggregate):
    """A plate in one lot: the session open for it, if any, and until when it is paid."""

    TOPIC = PLATE_TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{PLATE_TOPIC}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{PLATE_TOPIC}.Created"

    class Seen(Created):
        """The plate's first session in the lot, or none (events written before a first
        sighting opened one had neither: the defaults read them so)."""

        TOPIC = f"{PLATE_TOPIC}.Seen"
        lot_id: str
        plate: str
        session_id: UUID | None = None
        paid_until: datetime | None = None

    class Opened(Event):
        TOPIC = f"{PLATE_TOPIC}.Opened"
        session_id: UUID
        paid_until: datetime

        def apply(self, aggregate: PlateAtLot) -> None:
            aggregate.session_id = self.session_id
            aggregate.paid_until = self.paid_until

    class PaidUntil(Event):
        TOPIC = f"{PLATE_TOPIC}.PaidUntil"
        session_id: UUID
        paid_until: datetime

        def apply(self, aggregate: PlateAtLot) -> None:
            aggregate.paid_until = self.paid_until

    class Closed(Event):
        TOPIC = f"{PLATE_TOPIC}.Closed"
        session_id: UUID

        def apply(self, aggregate: PlateAtLot) -> None:
            aggregate.session_id = None
            aggregate.paid_until = None

    class Snapshot(BaseSnapshot):
        TOPIC = f"{PLATE_TOPIC}.Snapshot"

    @event(Seen)
    def __init__(
        self,
        lot_id: str,
        plate: str,
        session_id: UUID | None = None,
        paid_until: datetime | None = None,
    ) -> None:
        require((session_id is None) == (paid_until is None), "an open session is paid until")
        self.lot_id = lot_id
        self.plate = plate
        self.session_id = session_id
        self.paid_until = paid_until

    @classmethod
    def create_id(cls, lot_id: str, plate: str) -> UUID:
        return plate_at_lot_id(lot_id, plate)

    def open(self, session_id: UUID, paid_until: datetime) -> None:
        require(self.session_id is None, "one open session per plate per lot")
        self.trigger_event(self.Opened, session_id=session_id, paid_until=paid_until)

    def pay_until(self, session_id: UUID, paid_until: datetime) -> None:
        require(self.session_id == session_id, "only the open session is extended")
        self.trigger_event(self.PaidUntil, session_id=session_id, paid_until=paid_until)

    def close(self, session_id: UUID) -> None:
        require(self.session_id == session_id, "only the open session is closed")
        self.trigger_event(self.Closed, session_id=session_id)


def opened_plate(
    known: PlateAtLot | None, lot_id: str, plate: str, session_id: UUID, paid_until: datetime
) -> PlateAtLot:
    """The plate with this session opened: a plate seen before opens it, a plate never seen
    is created with it open (one event, not two: most plates of a busy day are new)."""
    if known is None:
        return PlateAtLot(lot_id, plate, session_id, paid_until)
    known.open(session_id, paid_until)
    return known


class ScannedCodeUse(Aggregate):
    """A TL1 code (card and counter) that started a session: a code starts one session only."""

    TOPIC = CODE_TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{CODE_TOPIC}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{CODE_TOPIC}.Created"

    class Used(Created):
        TOPIC = f"{CODE_TOPIC}.Used"
        card_id: UUID
        counter: int
        session_id: UUID

    @event(Used)
    def __init__(self, card_id: UUID, counter: int, session_id: UUID) -> None:
        self.card_id = card_id
        self.counter = counter
        self.session_id = session_id

    @classmethod
    def create_id(cls, card_id: UUID, counter: int, session_id: UUID) -> UUID:  # noqa: ARG003
        return code_use_id(card_id, counter)


register_topic(PlateAtLot.Snapshot.TOPIC, PlateAtLot.Snapshot)
