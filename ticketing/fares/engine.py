"""The fare engine: a journey of legs and the rider's entitlements in, a `Fare` or a refusal out.

Order of work: check the journey against the feed; join legs into effective fare legs; match each
against fare_leg_rules.txt and take the cheapest product the rider can use; mark legs a held pass
covers; apply transfer rules between the legs that are paid; cap the total. Free rider categories
need no special case: their products cost 0, yet the journey is priced in full, and the default
category's fare is reported beside it as the reference value of the ride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

from ticketing.fares import entitlements, matching
from ticketing.fares.errors import (
    FareRefused,
    InvalidJourney,
    NoProductForRider,
    UnknownFare,
    UnknownFareMedium,
    UnknownNetwork,
    UnknownRiderCategory,
    UnknownRoute,
    UnknownStop,
)
from ticketing.fares.feed import Feed
from ticketing.fares.journey import (
    NO_ENTITLEMENTS,
    Coverage,
    Entitlements,
    Fare,
    Leg,
    LegCharge,
)
from ticketing.fares.transfers import PricedLeg, apply_transfers

JOURNEY_LEGS_MAX = 16
HELD_PASSES_MAX = 64


class FareEngine:
    """Prices journeys over one loaded feed. Pure: no clock, no I/O; what it remembers between
    calls (the rules matching a leg, in a feed without timeframes) never changes an answer."""

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._timezone = ZoneInfo(feed.timezone)
        self._matcher = matching.LegRuleMatcher(feed, self._timezone)

    @property
    def feed(self) -> Feed:
        return self._feed

    @property
    def timezone(self) -> ZoneInfo:
        """The feed's local time (agency.txt), on which its timeframes and periods are read."""
        return self._timezone

    def price(self, legs: Sequence[Leg], held: Entitlements = NO_ENTITLEMENTS) -> Fare:
        """Price a journey; raise a `FareRefused` subclass saying why when it cannot be priced."""
        self._check_journey(legs, held)
        fare = self._price(legs, held)
        default = self._feed.default_rider_category_id
        reference: int | None = fare.before_cap_vnd
        if held.passes or default != legs[0].rider_category_id:
            reference = self._reference_total(legs, default)
        return replace(fare, reference_total_vnd=reference)

    def _reference_total(self, legs: Sequence[Leg], default: str | None) -> int | None:
        if default is None:
            return None
        as_default = [replace(leg, rider_category_id=default) for leg in legs]
        try:
            return self._price(as_default, NO_ENTITLEMENTS).before_cap_vnd
        except FareRefused:
            return None

    def _price(self, legs: Sequence[Leg], held: Entitlements) -> Fare:
        fare_legs = matching.fare_legs(self._feed, legs)
        charges = tuple(self._charge(leg, held) for leg in fare_legs)
        priced = [
            PricedLeg(
                leg_group_id=charge.leg_group_id,
                amount_vnd=charge.product_amount_vnd,
                departure=leg.departure,
                arrival=leg.arrival,
                covered_by_pass=charge.coverage is Coverage.PASS,
            )
            for leg, charge in zip(fare_legs, charges, strict=True)
        ]

        def transfer_price(product_id: str, to_leg: int) -> int | None:
            first = fare_legs[to_leg].legs[0]
            row = matching.product_price(
                self._feed, product_id, first.rider_category_id, first.fare_media_id
            )
            return None if row is None else row.amount_vnd

        transfers = apply_transfers(self._feed.fare_transfer_rules, priced, transfer_price)
        summed = sum(c.payable_vnd for c in charges) + sum(t.adjustment_vnd for t in transfers)
        # A feed whose discounts outweigh the legs must not pay the rider to travel.
        before_cap = max(0, summed)
        total, cap_id = entitlements.apply_caps(
            self._feed.caps, legs[0].rider_category_id, before_cap, held.spent_vnd
        )
        return Fare(total, charges, transfers, before_cap, cap_id, None)

    def _charge(self, leg: matching.FareLeg, held: Entitlements) -> LegCharge:
        rules = self._matcher.matching_rules(leg)
        first = leg.legs[0]
        if not rules:
            raise UnknownFare(
                f"no fare rule for network {leg.network_id or 'mixed'} from "
                f"{first.from_stop_id} to {leg.legs[-1].to_stop_id} at {leg.departure.isoformat()}"
            )
        offers = []
        for rule in rules:
            row = matching.product_price(
                self._feed, rule.fare_product_id, first.rider_category_id, first.fare_media_id
            )
            if row is not None:
                offers.append((row.amount_vnd, rule))
        if not offers:
            raise NoProductForRider(
                f"fare product {rules[0].fare_product_id} is not sold to rider category "
                f"{first.rider_category_id} on medium {first.fare_media_id}"
            )
        amount, rule = min(offers, key=lambda offer: offer[0])
        reference = self._reference_amount(rule.fare_product_id, first.fare_media_id)
        pass_held = entitlements.covering_pass(self._feed, leg, held.passes)
        coverage = Coverage.PAID
        if pass_held is not None:
            coverage = Coverage.PASS
        elif amount == 0 and reference is not None and reference > 0:
            coverage = Coverage.FREE_CATEGORY
        return LegCharge(
            leg_indexes=leg.leg_indexes,
            leg_rule_id=rule.rule_id,
            leg_group_id=rule.leg_group_id,
            fare_product_id=rule.fare_product_id,
            product_amount_vnd=amount,
            reference_amount_vnd=reference,
            coverage=coverage,
            pass_product_id=None if pass_held is None else pass_held.fare_product_id,
        )

    def _reference_amount(self, product_id: str, medium: str) -> int | None:
        default = self._feed.default_rider_category_id
        if default is None:
            return None
        row = matching.product_price(self._feed, product_id, default, medium)
        return None if row is None else row.amount_vnd

    def _check_journey(self, legs: Sequence[Leg], held: Entitlements) -> None:
        if not 1 <= len(legs) <= JOURNEY_LEGS_MAX:
            raise InvalidJourney(f"a journey has 1 to {JOURNEY_LEGS_MAX} legs, not {len(legs)}")
        if len(held.passes) > HELD_PASSES_MAX:
            raise InvalidJourney(f"more than {HELD_PASSES_MAX} passes held")
        if any(spent < 0 for spent in held.spent_vnd.values()):
            raise InvalidJourney("spend so far in a cap period is negative")
        if len({leg.rider_category_id for leg in legs}) != 1:
            raise InvalidJourney("every leg of a journey has the same rider category")
        for index, leg in enumerate(legs):
            for moment in (leg.departure, leg.arrival):
                if moment.tzinfo is None or moment.utcoffset() is None:
                    raise InvalidJourney(f"leg {index}: times must carry a timezone")
            if leg.arrival < leg.departure:
                raise InvalidJourney(f"leg {index}: arrival is before departure")
            if index and leg.departure < legs[index - 1].arrival:
                raise InvalidJourney(f"leg {index}: departs before the previous leg arrives")
            self._check_leg_references(leg)

    def _check_leg_references(self, leg: Leg) -> None:
        feed = self._feed
        if feed.rider_categories and leg.rider_category_id not in feed.rider_categories:
            raise UnknownRiderCategory(f"rider category {leg.rider_category_id} is not in the feed")
        if feed.fare_media and leg.fare_media_id not in feed.fare_media:
            raise UnknownFareMedium(f"fare medium {leg.fare_media_id} is not in the feed")
        if feed.networks and leg.network_id not in feed.networks:
            raise UnknownNetwork(f"network {leg.network_id} is not in the feed")
        if feed.route_networks and feed.route_networks.get(leg.route_id) != leg.network_id:
            raise UnknownRoute(f"route {leg.route_id} is not a route of network {leg.network_id}")
        for stop_id in (leg.from_stop_id, leg.to_stop_id):
            if feed.stops and stop_id not in feed.stops:
                raise UnknownStop(f"stop {stop_id} is not in the feed")
