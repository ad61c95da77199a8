"""Fare questions a journey asks of the engine: a journey's legs as engine legs, the price of a
journey, and the most a journey with one open leg can cost (the metro hold, the day-end charge).

The maximum is derived from the feed, never configured: the open leg is completed at every stop
of the feed in turn and the dearest completion wins, so transfers and rider categories count.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any
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


def engine_legs(legs: list[dict[str, Any]], category: str, media: str) -> list[Leg]:
    return [
        Leg(
            network_id=leg["network_id"],
            route_id=leg["route_id"],
            from_stop_id=leg["from_stop_id"],
            to_stop_id=leg["to_stop_id"],
            departure=datetime.fromisoformat(leg["departure"]),
            arrival=datetime.fromisoformat(leg["arrival"]),
            rider_category_id=category,
            fare_media_id=media,
        )
        for leg in legs
    ]


def price(
    engine: FareEngine,
    legs: list[dict[str, Any]],
    category: str,
    media: str,
    held: Entitlements = NO_ENTITLEMENTS,
) -> Fare:
    return engine.price(engine_legs(legs, category, media), held)


def max_fare(
    engine: FareEngine,
    legs: list[dict[str, Any]],
    category: str,
    media: str,
    held: Entitlements = NO_ENTITLEMENTS,
) -> Fare:
    """The dearest fare of the journey once its last, open leg ends at any stop of the feed
    (with the rider's passes and caps, so a covered ride holds nothing)."""
    open_leg = legs[-1]
    missing = "to" if open_leg["exit_tap"] is None else "from"
    known = open_leg["from_stop_id"] if missing == "to" else open_leg["to_stop_id"]
    at = open_leg["departure"] if missing == "to" else open_leg["arrival"]
    best: Fare | None = None
    refusal: FareRefused | None = None
    for stop_id in sorted(engine.feed.stops) or [known]:
        completed = open_leg | {
            f"{missing}_stop_id": stop_id,
            "departure": at,
            "arrival": at,
        }
        try:
            fare = price(engine, [*legs[:-1], completed], category, media, held)
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
