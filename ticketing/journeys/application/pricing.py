"""Prices one rider's journeys with what the rider holds: passes bought on the account, and what
the rider has already paid in each cap period of our extension (EXTENSION.md).

Only a journey the account pays gets the rider's entitlements: a card's purse was charged by the
validator's own table, offline, and the backend cannot change that amount afterwards; such a
journey is priced as any rider would pay and counts towards no cap.

Spend is counted per journey fare: whenever a journey's fare changes (priced, closed at day end,
corrected by a late tap) the difference is added to the day, week and month of its service day,
in the same save as the journey. While a journey is being priced again, its own earlier fare is
left out of the spend, so adding a leg never caps a journey against itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

from ticketing.fares.engine import FareEngine
from ticketing.fares.feed import CapPeriod
from ticketing.fares.journey import NO_ENTITLEMENTS, Coverage, Entitlements, Fare, HeldPass
from ticketing.fares.journey_fares import max_fare, price
from ticketing.journeys.application.max_fares import MaxFares
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.journeys.domain.rider_journeys import RiderJourneys
from ticketing.journeys.domain.rider_passes import RiderPasses


def held_passes(passes: RiderPasses | None) -> tuple[HeldPass, ...]:
    if passes is None:
        return ()
    return tuple(
        HeldPass(
            fare_product_id=p["fare_product_id"],
            valid_from=datetime.fromisoformat(p["valid_from"]),
            valid_until=datetime.fromisoformat(p["valid_until"]),
            route_id=p["route_id"],
        )
        for p in passes.passes
    )


@dataclass
class RiderPricing:
    """The fare engine, one rider's passes and the rider's book of spend."""

    fares: FareEngine
    passes: tuple[HeldPass, ...]
    book: RiderJourneys
    max_fares: MaxFares | None = None  # remembered answers of `max_fare`, shared by riders
    standalone: StandaloneFares | None = None  # the legs' standalone fares, shared by riders

    def price(self, journey: Journey, legs: list[Leg] | None = None) -> Fare:
        """The journey's fare; of its first `legs` only when given (its complete ones)."""
        held = self.entitlements(journey)
        chosen = journey.legs if legs is None else legs
        return price(self.fares, chosen, journey.rider_category, journey.fare_media, held)

    def max_fare(self, journey: Journey) -> Fare:
        held = self.entitlements(journey)
        legs, category, media = journey.legs, journey.rider_category, journey.fare_media
        if self.max_fares is not None:
            return self.max_fares.max_fare(legs, category, media, held)
        return max_fare(self.fares, legs, category, media, held)

    def standalone_fares(self) -> StandaloneFares:
        """The standalone fares a priced journey records for its legs."""
        if self.standalone is None:
            self.standalone = StandaloneFares(self.fares)
        return self.standalone

    def entitlements(self, journey: Journey) -> Entitlements:
        if journey.paid_from is not PaidFrom.ACCOUNT:
            return NO_ENTITLEMENTS
        own_vnd = journey.fare_vnd or 0
        spent = self.book.spent_in(date.fromisoformat(journey.service_day))
        return Entitlements(
            passes=self.passes,
            spent_vnd=MappingProxyType(
                {CapPeriod(kind): max(0, vnd - own_vnd) for kind, vnd in spent.items()}
            ),
        )

    def count(self, journey: Journey, before_vnd: int | None, at: datetime) -> None:
        """Counts the change of a journey's fare since `before_vnd` towards the rider's caps."""
        if journey.paid_from is not PaidFrom.ACCOUNT:
            return
        change_vnd = (journey.fare_vnd or 0) - (before_vnd or 0)
        self.book.count_fare(
            day=date.fromisoformat(journey.service_day), change_vnd=change_vnd, at=at
        )


def covering_passes(fare: Fare) -> list[str]:
    """The pass products that covered legs of a priced journey, each once, in leg order."""
    found: list[str] = []
    for charge in fare.legs:
        if charge.coverage is Coverage.PASS and charge.pass_product_id not in (None, *found):
            found.append(charge.pass_product_id or "")
    return found
