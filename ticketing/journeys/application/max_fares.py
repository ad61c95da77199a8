"""The most a journey with an open leg can cost, remembered: a metro entry prices its leg to every
stop of the feed, and riders enter at the same few stations all day.

An answer is reused only where the engine's answer cannot differ. With no fare leg rule bound to a
timeframe and no pass held, the engine reads times only as differences between legs (transfer
windows), so a journey shifted in time costs the same: the key holds each leg's fare fields and
its times relative to the open leg, the rider category and medium, and the rider's spend in each
cap period only when a cap applies to the category. Refusals are not remembered: their reasons
name the leg's time.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime

from ticketing.fares.engine import FareEngine
from ticketing.fares.journey import Entitlements, Fare
from ticketing.fares.journey_fares import JourneyLeg, OpenEnd, max_fare

# Answers kept per process (stops x categories x media for one-leg journeys, and some transfers).
MAX_FARES_REMEMBERED_MAX = 50_000


class MaxFares:
    def __init__(self, engine: FareEngine) -> None:
        self.engine = engine
        feed = engine.feed
        self._timed = any(
            rule.from_timeframe_group_id or rule.to_timeframe_group_id
            for rule in feed.fare_leg_rules
        )
        self._capped = {cap.rider_category_id for cap in feed.caps}
        self._memo: dict[Hashable, Fare] = {}

    def max_fare(
        self, legs: Sequence[JourneyLeg], category: str, media: str, held: Entitlements
    ) -> Fare:
        key = self._key(legs, category, media, held)
        if key is None:
            return max_fare(self.engine, legs, category, media, held)
        found = self._memo.get(key)
        if found is None:
            found = max_fare(self.engine, legs, category, media, held)
            if len(self._memo) >= MAX_FARES_REMEMBERED_MAX:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _key(
        self, legs: Sequence[JourneyLeg], category: str, media: str, held: Entitlements
    ) -> Hashable | None:
        if self._timed or held.passes:
            return None
        spent: tuple[tuple[str, int], ...] = ()
        if self._capped & {None, category}:
            spent = tuple(sorted((str(period), vnd) for period, vnd in held.spent_vnd.items()))
        open_end = OpenEnd.of(legs[-1])
        origin = open_end.at
        earlier = tuple(
            (
                leg.network_id,
                leg.route_id,
                leg.from_stop_id,
                leg.to_stop_id,
                _offset_s(leg.departure, origin),
                _offset_s(leg.arrival, origin),
            )
            for leg in legs[:-1]
        )
        missing = "from" if open_end.is_exit else "to"
        last = (open_end.network_id, open_end.route_id, open_end.stop_id, missing)
        return (category, media, spent, earlier, last)


def _offset_s(moment: datetime | None, origin: datetime) -> float | None:
    return None if moment is None else (moment - origin).total_seconds()
