"""Fare questions a journey asks of the engine: a journey's legs as engine legs, the price of a
journey, and the most a journey with one open leg can cost (the metro hold, the day-end charge).

The maximum is derived from the feed, never configured: the open leg is completed at every stop
of the feed in turn and the dearest completion wins, so transfers and rider categories count.

A journey's leg is asked about as a `JourneyLeg`, the few fields these questions read, so the
engine knows nothing of the journeys that ask (they depend on it, never the other way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from ticketing.fares.engine import FareEngine
from ticketing.fares.errors import FareRefused, UnknownFare
from ticketing.fares.journey import NO_ENTITLEMENTS, Entitlements, Fare, Leg

# Hanoi's buses and metro run from about 05:00 to 23:00; a service day runs 04:00 to 04:00 in the
# feed's local time (its agency_timezone), so a late ride belongs to the day it began.
SERVICE_DAY_START = time(4, 0)
MEDIUM_FARE_MEDIA = {"qr": "mobile_app", "card": "transit_card"}


def service_day(at: datetime, zone: ZoneInfo) -> date:
    local = at.astimezone(zone)
    return (local - timedelta(hours=SERVICE_DAY_START.hour)).date()


def service_day_end(day: date, zone: ZoneInfo) -> datetime:
    start = datetime.combine(day + timedelta(days=1), SERVICE_DAY_START, zone)
    return start


def rider_category_id(category: Enum) -> str:
    """The feed's id of an account's rider category (`regular`, `elderly`, ...)."""
    return category.name.lower()


class JourneyLeg(Protocol):
    """What the fare questions read of a journey's leg. Times are timezone-aware; a leg still
    open has no `to_stop_id` and `arrival` (or, begun from its exit, no `from_stop_id` and
    `departure`). Only complete legs are priced; `max_fare` completes the last one."""

    @property
    def network_id(self) -> str: ...
    @property
    def route_id(self) -> str: ...
    @property
    def from_stop_id(self) -> str | None: ...
    @property
    def to_stop_id(self) -> str | None: ...
    @property
    def departure(self) -> datetime | None: ...
    @property
    def arrival(self) -> datetime | None: ...
    @property
    def exit_tap(self) -> str | None: ...


@dataclass(frozen=True)
class OpenEnd:
    """The known end of a leg still open: where and when its one tap was made, and whether
    that tap was its exit (the leg then needs its start)."""

    network_id: str
    route_id: str
    stop_id: str
    at: datetime
    is_exit: bool

    @classmethod
    def of(cls, leg: JourneyLeg) -> OpenEnd:
        is_exit = leg.exit_tap is not None
        stop_id = leg.to_stop_id if is_exit else leg.from_stop_id
        at = leg.arrival if is_exit else leg.departure
        if stop_id is None or at is None:
            # A programmer's error: an open leg always names the stop and time of its one tap.
            raise ValueError(f"the open leg on route {leg.route_id} has no tap to start from")
        return cls(leg.network_id, leg.route_id, stop_id, at, is_exit)

    def completed(self, stop_id: str, category: str, media: str) -> Leg:
        """The leg completed at `stop_id`, at the same moment (a ride's length is unknown)."""
        return Leg(
            network_id=self.network_id,
            route_id=self.route_id,
            from_stop_id=stop_id if self.is_exit else self.stop_id,
            to_stop_id=self.stop_id if self.is_exit else stop_id,
            departure=self.at,
            arrival=self.at,
            rider_category_id=category,
            fare_media_id=media,
        )


def engine_legs(legs: Sequence[JourneyLeg], category: str, media: str) -> list[Leg]:
    """Complete journey legs as the engine prices them."""
    return [_engine_leg(leg, category, media) for leg in legs]


def _engine_leg(leg: JourneyLeg, category: str, media: str) -> Leg:
    from_stop_id, to_stop_id = leg.from_stop_id, leg.to_stop_id
    departure, arrival = leg.departure, leg.arrival
    if from_stop_id is None or to_stop_id is None or departure is None or arrival is None:
        # A programmer's error, not a rider's: an open leg is asked about by `max_fare` only.
        raise ValueError(f"an open leg on route {leg.route_id} has no price of its own")
    return Leg(
        network_id=leg.network_id,
        route_id=leg.route_id,
        from_stop_id=from_stop_id,
        to_stop_id=to_stop_id,
        departure=departure,
        arrival=arrival,
        rider_category_id=category,
        fare_media_id=media,
    )


def price(
    engine: FareEngine,
    legs: Sequence[JourneyLeg],
    category: str,
    media: str,
    held: Entitlements = NO_ENTITLEMENTS,
) -> Fare:
    return engine.price(engine_legs(legs, category, media), held)


def max_fare(
    engine: FareEngine,
    legs: Sequence[JourneyLeg],
    category: str,
    media: str,
    held: Entitlements = NO_ENTITLEMENTS,
) -> Fare:
    """The dearest fare of the journey once its last, open leg ends at any stop of the feed
    (with the rider's passes and caps, so a covered ride holds nothing)."""
    open_end = OpenEnd.of(legs[-1])
    known = open_end.stop_id
    earlier = engine_legs(legs[:-1], category, media)
    best: Fare | None = None
    refusal: FareRefused | None = None
    for stop_id in sorted(engine.feed.stops) or [known]:
        completed = open_end.completed(stop_id, category, media)
        try:
            fare = engine.price([*earlier, completed], held)
        except FareRefused as error:
            # The known stop's own refusal is the one worth telling; keep the first of those.
            if refusal is None or (known in error.reason and known not in refusal.reason):
                refusal = error
            continue
        if best is None or fare.total_vnd > best.total_vnd:
            best = fare
    if best is None:
        raise refusal or UnknownFare(f"no fare from or to stop {known}")
    return best
