"""A journey's snapshot: the aggregate's state, with its legs in their stored form (`Leg.stored`),
as the journey's events keep them."""

from __future__ import annotations

from typing import Any, Self

from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.journeys.domain.leg import Leg

SNAPSHOT_TOPIC = "ticketing.Journey.Snapshot"


class JourneySnapshot(BaseSnapshot):
    """Keeps the legs in their stored form, as the events do."""

    TOPIC = SNAPSHOT_TOPIC

    @classmethod
    def take(cls, aggregate: Any) -> Self:
        snapshot = super().take(aggregate)
        snapshot.state["legs"] = [leg.stored() for leg in aggregate.legs]
        return snapshot

    def mutate(self, _: None) -> Any:
        journey = super().mutate(_)
        journey.__dict__["legs"] = [Leg.from_stored(leg) for leg in self.state["legs"]]
        return journey


# Snapshot classes' explicit topics are not registered by the library (see account.py).
register_topic(SNAPSHOT_TOPIC, JourneySnapshot)
