"""What each leg of a journey would have cost its rider alone: the weight by which clearing
splits the journey's money between the operators of its legs.

A leg alone is priced for the rider's medium at the default category's fare when the feed has
one (so a free rider's legs still weigh by their price), else at the rider's own; a leg still
open weighs what it would cost at its dearest end (what the rider is held or charged for it);
a leg begun from its exit, or one the engine refuses, has no standalone fare. A journey records
its legs' standalone fares each time it is priced (`Journey.Priced.leg_fares`), so clearing
splits it by the fares of the feed that priced it, without pricing anything again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ticketing.fares.engine import FareEngine
from ticketing.fares.errors import FareRefused
from ticketing.fares.journey_fares import max_fare, price
from ticketing.journeys.domain.leg import Leg

# Standalone fares remembered by leg shape: a city's routes, stops, categories and media make
# a few tens of thousands of shapes, where a day has a million legs.
STANDALONE_FARES_CACHED = 65_536


class StandaloneFares:
    """Standalone fares from one fare engine, remembered by the key the engine reads: a leg
    alone is priced by its route, stops, rider category and medium, and by its times only when
    the feed has timeframes or service days."""

    def __init__(self, engine: FareEngine) -> None:
        self.engine = engine
        self.feed_version = engine.feed.version
        self._timed = bool(engine.feed.timeframes or engine.feed.services)
        self._known: OrderedDict[tuple[Any, ...], int | None] = OrderedDict()

    def fare(self, leg: Leg, category: str, media: str) -> int | None:
        """What `leg` alone would have cost a rider of `category` paying with `media`."""
        if leg.start is None:
            return None
        times = (leg.departure, leg.arrival) if self._timed else None
        shape = (leg.mode, leg.network_id, leg.route_id, leg.from_stop_id, leg.to_stop_id)
        key = (*shape, times, category, media)
        known = self._known
        if key in known:
            known.move_to_end(key)
            return known[key]
        fare_vnd = known[key] = self._priced(leg, category, media)
        if len(known) > STANDALONE_FARES_CACHED:
            known.popitem(last=False)
        return fare_vnd

    def leg_fares(self, legs: Sequence[Leg], category: str, media: str) -> list[dict[str, Any]]:
        """Each leg's network, route and standalone fare, in travel order, as `Priced`
        records them."""
        return [
            {
                "network_id": leg.network_id,
                "route_id": leg.route_id,
                "fare_vnd": self.fare(leg, category, media),
            }
            for leg in legs
        ]

    def _priced(self, leg: Leg, category: str, media: str) -> int | None:
        fares = price if leg.end is not None else max_fare
        try:
            fare = fares(self.engine, [leg], category, media)
        except FareRefused:
            return None
        if fare.reference_total_vnd is not None:
            return fare.reference_total_vnd
        return fare.total_vnd
