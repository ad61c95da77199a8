"""What clearing reads of a journey: its legs as they are now, its rider category and medium.

Attributing a journey's money needs nothing else of it: each leg's network (its operator) and
the leg's standalone fare, priced for the rider's category and medium. Those come from the
journey's events that carry legs, applied in order as `Journey` applies them (its `Started`,
`LegStarted`, `Ended`, `LegsRepaired` and `LegsJoined`); the journey's other events (prices,
charges, purse payments, refusals, a merge) change none of them. Replaying only these, and
making a `Leg` only of the legs that remain, is what keeps a day of a million journeys quick.

A journey priced since its last change of legs needs less still: that pricing recorded each
leg's network and standalone fare (`Journey.Priced.leg_fares`, from its version 2), which is
all attribution reads (`PricedJourney`). Journeys priced before it did are read by their legs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.leg import Leg

# The events that carry a journey's legs, its category or its medium, and the fields of their
# state `journey_legs` reads.
LEG_FIELDS: Mapping[type[Journey.Event], tuple[str, ...]] = {
    Journey.Started: ("leg", "rider_category", "fare_media"),
    Journey.LegStarted: ("leg",),
    Journey.Ended: ("leg_index", "leg"),
    Journey.LegsRepaired: ("first_index", "legs"),
    Journey.LegsJoined: ("legs",),
}


@dataclass(frozen=True, slots=True)
class JourneyLegs:
    """A journey as clearing attributes it: the same legs, category and medium as `Journey`."""

    journey_id: UUID
    rider_category: str
    fare_media: str
    legs: tuple[Leg, ...]


def journey_legs(
    journey_id: UUID, changes: Iterable[tuple[type[object], Mapping[str, Any]]]
) -> JourneyLegs | None:
    """The journey that `changes` leave: one journey's events in version order, each its
    class and its state's `LEG_FIELDS`; None when they do not start a journey. Events of
    other classes are skipped."""
    started: Mapping[str, Any] | None = None
    stored: list[Mapping[str, Any]] = []
    for cls, state in changes:
        if cls is Journey.Started:
            started = state
            stored = [state["leg"]]
        elif started is None:
            continue  # a journey begins with its `Started`; nothing before it is one
        elif cls is Journey.LegStarted:
            stored.append(state["leg"])
        elif cls is Journey.Ended:
            stored[state["leg_index"]] = state["leg"]
        elif cls is Journey.LegsRepaired:
            stored[state["first_index"] :] = state["legs"]
        elif cls is Journey.LegsJoined:
            stored.extend(state["legs"])
    if started is None:
        return None
    return JourneyLegs(
        journey_id=journey_id,
        rider_category=started["rider_category"],
        fare_media=started["fare_media"],
        legs=tuple(Leg.from_stored(leg) for leg in stored),
    )


@dataclass(frozen=True, slots=True)
class PricedLeg:
    """A leg as its journey's last pricing recorded it: its network (its operator) and its
    standalone fare, None when it had none."""

    network_id: str
    fare_vnd: int | None


@dataclass(frozen=True, slots=True)
class PricedJourney:
    """A journey as clearing attributes it when its last pricing came after its last change of
    legs: the legs' networks and standalone fares that pricing recorded, in travel order."""

    journey_id: UUID
    legs: tuple[PricedLeg, ...]


def priced_legs(leg_fares: Iterable[Mapping[str, Any]]) -> tuple[PricedLeg, ...]:
    """The legs of a `Journey.Priced` event's `leg_fares`."""
    return tuple(PricedLeg(leg["network_id"], leg["fare_vnd"]) for leg in leg_fares)
