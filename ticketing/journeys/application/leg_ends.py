"""A journey's open leg ended by the tap being applied: the journey priced and charged, the
rider's book moved on, and a transfer that arrived before its ride merged in (`tap_merges`)."""

from __future__ import annotations

from ticketing.fares.errors import FareRefused
from ticketing.journeys.application.fare_steps import charge
from ticketing.journeys.application.tap_merges import merge_transfer
from ticketing.journeys.application.tap_work import TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import Leg


def end(work: TapWork, journey: Journey) -> list[Journey]:
    """This tap is the exit (or alighting) of the journey's open leg."""
    return complete(work, journey, work.ended(journey.last_leg))


def complete(work: TapWork, journey: Journey, leg: Leg) -> list[Journey]:
    """Ends the journey's last leg as `leg`, then prices and charges the journey."""
    at = work.tap.at
    closed = journey.status is JourneyStatus.CLOSED
    before_vnd = journey.fare_vnd
    journey.end_leg(leg=leg, at=at)
    work.paid_from_purse(journey)
    book = work.book
    key = str(journey.id)
    pending = [j for j in book.pending_exits if j != key]
    correctable = [j for j in book.correctable if j != key]
    open_journey = None if book.open_journey == key else book.open_journey
    try:
        fare = work.pricing.price(journey)
    except FareRefused as error:
        work.charger.void(journey, at)
        journey.refuse(code=error.code, reason=error.reason, at=at)
        work.point(open_journey=open_journey, pending_exits=pending, correctable=correctable)
        return [journey]
    charge(work, journey, fare, closed=closed)
    work.pricing.count(journey, before_vnd, at)
    work.point(
        open_journey=open_journey,
        pending_exits=pending,
        last_ended=key,
        correctable=correctable,
    )
    return [journey, *merge_transfer(work, journey)]
