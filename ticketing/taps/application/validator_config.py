"""What one validator must know to decide offline, derived from its registration and the fare feed.

A device decides without the network, so it carries:
- its own registration (kind, network, location, fare-feed stop and route, gate direction), which
  it writes into every card event and uses to reject cards of other networks;
- the fare media the network accepts at a tap (`qr`, `card`) with the feed's id for each;
- per medium, the most a ride starting here can cost a full-fare rider (`max_fare_vnd`): what a
  metro entry gate holds and what a card purse must cover, the fare a bus validator charges
  (bus fares are flat per route), and at an exit gate the most a ride ending here costs, which
  a card pays there only when it shows no entry (the entry gate charged the ride otherwise).

Prices come from the same engine and feed the backend charges with, so a validator never
disagrees with the journey that is priced later. A medium the feed cannot price here is left out
with the engine's refusal code, rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ticketing.fares.engine import FareEngine
from ticketing.fares.errors import FareRefused
from ticketing.fares.journey_fares import MEDIUM_FARE_MEDIA, max_fare
from ticketing.taps.domain.validator import Direction, Validator, ValidatorKind


@dataclass(frozen=True)
class MediumFare:
    medium: str  # how the validator reads it: qr | card
    fare_media_id: str  # the feed's id for it
    max_fare_vnd: int | None  # None when the feed refuses to price a ride from here
    refusal_code: str | None = None


@dataclass(frozen=True)
class ValidatorFares:
    fare_network_id: str  # the feed's network of the validator's route; empty when unknown
    media: tuple[MediumFare, ...]


@dataclass(frozen=True)
class _RideFromHere:
    """A ride whose one known tap is at this validator, as `max_fare` asks about it (a
    `JourneyLeg`): its entry, or at an exit gate its exit."""

    network_id: str
    route_id: str
    from_stop_id: str | None
    to_stop_id: str | None
    departure: datetime | None
    arrival: datetime | None
    exit_tap: str | None


def validator_fares(validator: Validator, engine: FareEngine, at: datetime) -> ValidatorFares:
    """The fares `validator` needs at `at` (timeframes in the feed make fares time-dependent)."""
    feed = engine.feed
    network_id = feed.route_networks.get(validator.route_id, "")
    default_category = feed.default_rider_category_id or ""
    ends_here = validator.kind is ValidatorKind.METRO_GATE and validator.direction is Direction.EXIT
    media = []
    for medium, fare_media_id in sorted(MEDIUM_FARE_MEDIA.items()):
        if feed.fare_media and fare_media_id not in feed.fare_media:
            continue
        leg = _RideFromHere(
            network_id=network_id,
            route_id=validator.route_id,
            from_stop_id=None if ends_here else validator.stop_id,
            to_stop_id=validator.stop_id if ends_here else None,
            departure=None if ends_here else at,
            arrival=at if ends_here else None,
            exit_tap="here" if ends_here else None,
        )
        try:
            fare = max_fare(engine, [leg], default_category, fare_media_id)
        except FareRefused as error:
            media.append(MediumFare(medium, fare_media_id, None, error.code))
            continue
        media.append(MediumFare(medium, fare_media_id, fare.total_vnd))
    return ValidatorFares(network_id, tuple(media))
