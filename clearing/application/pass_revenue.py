"""A pass's price as revenue: earned by the operators of the rides it covered, once its
validity is over.

A pass sale moves the rider's money into unearned passes (no one's revenue yet). The pass is
earned by the cycle of the business day in which its validity ended plus a grace
(`limits.PASS_APPORTION_GRACE_S`: taps are uploaded late and a metro hold waits days for its
exit), so the rides made while it was valid are counted first. Its price is split over the legs
of the journeys it covered (the journeys priced with it, of its account, departing while it was
valid), by each leg's standalone fare (`apportionment.apportion_pass`); a pass that covered no
ride with a fare is split equally between the operators of the networks it covers.

Exactly once: a pass is earned by the cycle of its earning day when its sale is in the log by
that cycle's cut-off; a sale recorded after that cut-off (its earning day already closed) is
earned by the cycle whose movements hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from clearing.application.ledger_movements import selected
from clearing.application.revenue_lines import JourneySource, StandaloneFare
from clearing.domain import limits
from clearing.domain.apportionment import Part, apportion_pass
from clearing.domain.business_day import business_day_of
from clearing.domain.classification import Category, Origin
from clearing.domain.cycle_lines import SUSPENSE_OPERATOR, CycleLine
from clearing.domain.errors import ClearingError
from clearing.domain.operators import OperatorMap
from ticketing.fares.feed import Feed, RouteScope
from ticketing.journeys.domain.rider_passes import RiderPasses

PASS_TOPICS = (get_topic(RiderPasses.PassBought),)
# How far back a cycle looks for the sales of the passes it earns: the longest pass (a month)
# plus the grace, with room to spare. A pass valid for longer would be earned late.
PASS_LOOKBACK_DAYS = 45
PASS_UNPLACED = "pass_unplaced"  # noqa: S105 (a suspense code, not a password)
TRANSFER_PREFIX = "pass:"

# The journeys (ids, in the order they were made) an account made with a pass product between
# two service days, both included.
PassRides = Callable[[UUID, str, date, date], list[UUID]]
# The networks a pass product covers (for one route: that route's networks).
PassNetworks = Callable[[str, "str | None"], frozenset[str]]


@dataclass(frozen=True, slots=True)
class PassSold:
    notification_id: int
    account_id: UUID
    fare_product_id: str
    route_id: str | None
    valid_from: datetime
    valid_until: datetime
    price_vnd: int
    transfer_id: str

    @property
    def earning_day(self) -> date:
        grace = timedelta(seconds=limits.PASS_APPORTION_GRACE_S)
        return business_day_of(self.valid_until + grace)


def passes_sold(journeys: Application[UUID], after: int, cut_off: int) -> Iterator[PassSold]:
    for notification_id, event in selected(journeys, after, cut_off, PASS_TOPICS):
        if not isinstance(event, RiderPasses.PassBought):
            continue
        yield PassSold(
            notification_id=notification_id,
            account_id=_account_of(journeys, event.originator_id),
            fare_product_id=event.fare_product_id,
            route_id=event.route_id,
            valid_from=datetime.fromisoformat(event.valid_from),
            valid_until=datetime.fromisoformat(event.valid_until),
            price_vnd=event.price_vnd,
            transfer_id=event.transfer_id,
        )


def feed_pass_networks(feed: Feed, fare_product_id: str, route_id: str | None) -> frozenset[str]:
    """The networks a pass product of the fare feed covers: for a pass of one route, that
    route's network; none for a product the feed no longer has."""
    product = feed.passes.get(fare_product_id)
    if product is None:
        return frozenset()
    if product.route_scope is RouteScope.ONE and route_id is not None:
        network = feed.route_networks.get(route_id)
        return frozenset({network}) & product.network_ids if network else frozenset()
    return product.network_ids


def _account_of(journeys: Application[UUID], passes_id: UUID) -> UUID:
    passes: RiderPasses = journeys.repository.get(passes_id)
    return passes.account_id


@dataclass(frozen=True)
class PassEarning:
    operators: OperatorMap
    journeys: JourneySource
    rides: PassRides
    networks: PassNetworks
    standalone_fare: StandaloneFare | None

    def lines(self, sold: PassSold) -> list[CycleLine]:
        """The pass's price as operators' lines, or one suspense line saying why it cannot be
        placed (a network without an operator, no ride and no network)."""
        try:
            parts, network_operators = self._parts(sold)
            shares = apportion_pass(sold.price_vnd, parts, network_operators)
        except (ClearingError, _Unplaced) as error:
            return [_line(sold, SUSPENSE_OPERATOR, sold.price_vnd, PASS_UNPLACED, str(error))]
        by_operator: dict[str, int] = {}
        for share in shares:
            by_operator[share.operator_id] = (
                by_operator.get(share.operator_id, 0) + share.amount_vnd
            )
        return [_line(sold, operator, vnd) for operator, vnd in by_operator.items()]

    def _parts(self, sold: PassSold) -> tuple[list[Part], list[str]]:
        first = business_day_of(sold.valid_from)
        last = business_day_of(sold.valid_until)
        parts: list[Part] = []
        for journey_id in self.rides(sold.account_id, sold.fare_product_id, first, last):
            journey = self.journeys.get_journey(journey_id)
            if journey is None:
                continue
            for leg in journey.legs:
                if leg.departure is None or not sold.valid_from <= leg.departure < sold.valid_until:
                    continue
                operator_id = self._operator(leg.network_id)
                fare = self.standalone_fare(journey, leg) if self.standalone_fare else None
                parts.append(Part(operator_id, max(0, fare or 0)))
        networks = self.networks(sold.fare_product_id, sold.route_id)
        return parts, sorted({self._operator(network) for network in networks})

    def _operator(self, network_id: str) -> str:
        operator_id = self.operators.operator_of_network(network_id)
        if operator_id is None:
            raise _Unplaced(f"network {network_id!r} has no operator")
        return operator_id


class _Unplaced(Exception):
    """A pass whose price cannot be given to operators: carved out to suspense."""


def _line(
    sold: PassSold, operator_id: str, amount_vnd: int, code: str = "", reason: str = ""
) -> CycleLine:
    return CycleLine(
        line_no=1,
        notification_id=sold.notification_id,
        operator_id=operator_id,
        amount_vnd=amount_vnd,
        category=Category.PASS_REVENUE.value,
        origin=Origin.PASS.value,
        transaction_id=sold.transfer_id.removeprefix(TRANSFER_PREFIX),
        reference=sold.transfer_id,
        suspense_code=code,
        reason=reason,
    )
