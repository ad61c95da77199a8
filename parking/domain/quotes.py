"""A stored quote, so that a session started on any worker finds the price the driver saw."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from parking.domain.errors import QuoteExpired, QuoteMismatch
from parking.domain.limits import QUOTE_LIFETIME
from parking.domain.pricing import Quote
from parking.domain.session import segments_as_data

TOPIC_PREFIX = "parking.ParkingQuote"


class ParkingQuote(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Made(Created):
        TOPIC = f"{TOPIC_PREFIX}.Made"
        lot_id: str
        table_id: str
        vehicle_class: str
        start: datetime
        end: datetime
        amount_vnd: int
        segments: list[dict[str, Any]]
        max_stay_minutes: int
        account_id: UUID | None
        made_at: datetime
        expires_at: datetime

    @event(Made)
    def __init__(
        self,
        lot_id: str,
        table_id: str,
        vehicle_class: str,
        start: datetime,
        end: datetime,
        amount_vnd: int,
        segments: list[dict[str, Any]],
        max_stay_minutes: int,
        account_id: UUID | None,
        made_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.lot_id = lot_id
        self.table_id = table_id
        self.vehicle_class = vehicle_class
        self.start = start
        self.end = end
        self.amount_vnd = amount_vnd
        self.segments = segments
        self.max_stay_minutes = max_stay_minutes
        self.account_id = account_id
        self.made_at = made_at
        self.expires_at = expires_at

    @classmethod
    def create_id(cls, **_: Any) -> UUID:
        return uuid4()

    @classmethod
    def make(cls, lot_id: str, quote: Quote, account_id: UUID | None, at: datetime) -> ParkingQuote:
        return cls(
            lot_id=lot_id,
            table_id=quote.table_id,
            vehicle_class=str(quote.vehicle_class),
            start=quote.start,
            end=quote.end,
            amount_vnd=quote.total_vnd,
            segments=segments_as_data(quote),
            max_stay_minutes=int(quote.max_stay.total_seconds() // 60),
            account_id=account_id,
            made_at=at,
            expires_at=at + QUOTE_LIFETIME,
        )

    def check_usable(self, lot_id: str, vehicle_class: str, at: datetime) -> None:
        if at >= self.expires_at:
            raise QuoteExpired(self.expires_at)
        if lot_id != self.lot_id:
            raise QuoteMismatch("lot")
        if vehicle_class != self.vehicle_class:
            raise QuoteMismatch("vehicle class")
