"""Which fare leg rules apply to a leg: join rules first, then the matching of fare_leg_rules.txt.

Without a `rule_priority` column an empty network or area means "every value not listed anywhere
in that column", so a listed value always beats an empty field; among rules that still match, those
that name more fields (in practice, timeframes) win. With the column, an empty field does not
matter and only the highest priority survives. The survivors are alternatives: the rider gets the
cheapest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ticketing.fares.feed import FareLegRule, FareProduct, Feed, LocationType
from ticketing.fares.journey import Leg

SECONDS_PER_HOUR = 3600
SECONDS_PER_MINUTE = 60


@dataclass(frozen=True)
class FareLeg:
    """An effective fare leg: consecutive legs joined by join rules, matched as one."""

    leg_indexes: tuple[int, ...]
    legs: tuple[Leg, ...]
    network_id: str | None  # None when the joined legs are on different networks
    from_areas: frozenset[str]
    to_areas: frozenset[str]

    @property
    def departure(self) -> datetime:
        return self.legs[0].departure

    @property
    def arrival(self) -> datetime:
        return self.legs[-1].arrival


def product_price(feed: Feed, product_id: str, category: str, medium: str) -> FareProduct | None:
    """The product's price row for this rider: a named category beats "any", then a named medium."""
    best: FareProduct | None = None
    best_rank = (-1, -1)
    for row in feed.fare_products.get(product_id, ()):
        if row.rider_category_id not in (None, category) or row.fare_media_id not in (None, medium):
            continue
        rank = (int(row.rider_category_id is not None), int(row.fare_media_id is not None))
        if rank > best_rank:
            best, best_rank = row, rank
    return best


def _station(feed: Feed, stop_id: str) -> str:
    stop = feed.stops.get(stop_id)
    return stop.parent_station if stop is not None and stop.parent_station else stop_id


def stop_areas(feed: Feed, stop_id: str) -> frozenset[str]:
    """A platform is in its station's areas unless the feed puts it in areas of its own."""
    own = feed.stop_areas.get(stop_id)
    if own:
        return own
    return feed.stop_areas.get(_station(feed, stop_id), frozenset())


def _at(feed: Feed, named_stop_id: str, leg_stop_id: str) -> bool:
    """A join rule's stop matches a leg there; a station's matches legs at any of its platforms.

    Without stops.txt the feed knows no stations, and ids are compared as they are.
    """
    if leg_stop_id == named_stop_id:
        return True
    named, stop = feed.stops.get(named_stop_id), feed.stops.get(leg_stop_id)
    return (
        named is not None
        and named.location_type is LocationType.STATION
        and stop is not None
        and stop.parent_station == named_stop_id
    )


def _joins(feed: Feed, before: Leg, after: Leg) -> bool:
    for rule in feed.fare_leg_join_rules:
        if (rule.from_network_id, rule.to_network_id) != (before.network_id, after.network_id):
            continue
        if rule.from_stop_id is not None and rule.to_stop_id is not None:
            if _at(feed, rule.from_stop_id, before.to_stop_id) and _at(
                feed, rule.to_stop_id, after.from_stop_id
            ):
                return True
        elif _station(feed, before.to_stop_id) == _station(feed, after.from_stop_id):
            return True
    return False


def fare_legs(feed: Feed, legs: Sequence[Leg]) -> tuple[FareLeg, ...]:
    groups: list[list[int]] = []
    for index, leg in enumerate(legs):
        if groups and _joins(feed, legs[groups[-1][-1]], leg):
            groups[-1].append(index)
        else:
            groups.append([index])
    result: list[FareLeg] = []
    for group in groups:
        members = tuple(legs[i] for i in group)
        networks = {leg.network_id for leg in members}
        result.append(
            FareLeg(
                leg_indexes=tuple(group),
                legs=members,
                network_id=networks.pop() if len(networks) == 1 else None,
                from_areas=stop_areas(feed, members[0].from_stop_id),
                to_areas=stop_areas(feed, members[-1].to_stop_id),
            )
        )
    return tuple(result)


# Answers of `LegRuleMatcher.matching_rules` kept per engine (networks x areas x areas).
MATCHES_REMEMBERED_MAX = 65_536

Rules = tuple[FareLegRule, ...]


class LegRuleMatcher:
    def __init__(self, feed: Feed, timezone: ZoneInfo) -> None:
        self._feed = feed
        self._timezone = timezone
        rules = feed.fare_leg_rules
        self._listed_networks = {r.network_id for r in rules if r.network_id is not None}
        self._listed_from = {r.from_area_id for r in rules if r.from_area_id is not None}
        self._listed_to = {r.to_area_id for r in rules if r.to_area_id is not None}
        # A rule naming a network matches only legs on it, so each network's leg is checked
        # against its own rules and the network-less ones, in the feed's order; a leg of
        # mixed or unknown network only against the network-less ones.
        self._unnamed = tuple(r for r in rules if r.network_id is None)
        self._by_network = {
            network_id: tuple(r for r in rules if r.network_id in (None, network_id))
            for network_id in self._listed_networks
        }

        # Without timeframes a leg's rules depend on its network and areas only, which take few
        # values, so each answer is kept (a metro hold prices a leg to every stop of the feed).
        self._timed = any(r.from_timeframe_group_id or r.to_timeframe_group_id for r in rules)
        self._memo: dict[tuple[str | None, frozenset[str], frozenset[str]], Rules] = {}

    def matching_rules(self, leg: FareLeg) -> Rules:
        """The rules the spec selects for this leg, best first; empty when the fare is unknown."""
        if self._timed:
            return self._select(leg)
        key = (leg.network_id, leg.from_areas, leg.to_areas)
        found = self._memo.get(key)
        if found is None:
            found = self._select(leg)
            if len(self._memo) >= MATCHES_REMEMBERED_MAX:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _select(self, leg: FareLeg) -> Rules:
        candidates = self._unnamed
        if leg.network_id is not None:
            candidates = self._by_network.get(leg.network_id, self._unnamed)
        matches = [rule for rule in candidates if self._matches(rule, leg)]
        if not matches:
            return ()
        if self._feed.leg_rules_have_priority:
            top = max(rule.rule_priority for rule in matches)
            return tuple(rule for rule in matches if rule.rule_priority == top)
        most = max(_named_fields(rule) for rule in matches)
        return tuple(rule for rule in matches if _named_fields(rule) == most)

    def _matches(self, rule: FareLegRule, leg: FareLeg) -> bool:
        wildcard = self._feed.leg_rules_have_priority
        if rule.network_id is None:
            network_ok = wildcard or leg.network_id not in self._listed_networks
        else:
            network_ok = rule.network_id == leg.network_id
        return (
            network_ok
            and _area_ok(rule.from_area_id, leg.from_areas, self._listed_from, wildcard)
            and _area_ok(rule.to_area_id, leg.to_areas, self._listed_to, wildcard)
            and self._in_timeframe(rule.from_timeframe_group_id, leg.departure)
            and self._in_timeframe(rule.to_timeframe_group_id, leg.arrival)
        )

    def _in_timeframe(self, group_id: str | None, moment: datetime) -> bool:
        """Timeframes are read in local time: the local date picks the service day."""
        if group_id is None:
            return True
        local = moment.astimezone(self._timezone)
        time_of_day_s = (
            local.hour * SECONDS_PER_HOUR + local.minute * SECONDS_PER_MINUTE + local.second
        )
        return any(
            frame.contains(time_of_day_s)
            and self._feed.services[frame.service_id].is_active_on(local.date())
            for frame in self._feed.timeframes.get(group_id, ())
        )


def _area_ok(
    rule_area: str | None, leg_areas: frozenset[str], listed: set[str], wildcard: bool
) -> bool:
    if rule_area is not None:
        return rule_area in leg_areas
    return wildcard or not (leg_areas & listed)


def _named_fields(rule: FareLegRule) -> int:
    fields = (
        rule.network_id,
        rule.from_area_id,
        rule.to_area_id,
        rule.from_timeframe_group_id,
        rule.to_timeframe_group_id,
    )
    return sum(value is not None for value in fields)
