"""Revenue lines per operator from a cycle's classified ledger movements.

- A parking fee (a posted start or extension hold, or the rest debit) is revenue of the
  operator of the parking session its id names; a reservation hold posted, of the reservation's
  operator; a parking credit reverses revenue of the operator on the detail record it names.
- A journey's charge (a debit or a posted metro hold) is transit revenue, and its refunds
  reverse it, of the operators of the journey's legs: each leg's network (the fare feed's
  `network_id`, recorded on the leg) gives its operator through the `OperatorMap`. The amount is
  split over the legs in travel order with `apportion_journey` (largest remainder), weighted by
  each leg's standalone fare (`StandaloneFares`: the leg priced alone for the journey's rider
  category and medium, at the default category's fare when the feed has one, so a free rider's
  legs still weigh by their price). A journey priced since its legs last changed recorded
  those fares then (`Journey.Priced.leg_fares`), and they are used as recorded, so a feed
  changed since does not move its split; a journey priced before pricing recorded them is
  priced again here, leg by leg. When any leg has no standalone fare, the legs share equally.
  The legs are the journey's legs now: a journey repaired after an earlier cycle is split by
  its final legs, and the correction lines that would move earlier cycles' attribution are the
  cycle aggregate's work, not built here.
- Anything that cannot be attributed is a suspense line with its reason, never dropped and
  never revenue: an unclassified movement, a journey, session or record not found, a network
  with no operator, a parking operator the map does not know, a purse payment that names no
  journey. A pass sale is no line: its price is earned later (`pass_revenue.py`).
- A card purse's payment at a validator (`Journey.PursePaid`, read from the journeys' log by
  `purse_movements`) is a charge of its journey, split over the journey's legs like any other.

So the lines and the suspense of a cycle add up, exactly, to its revenue movements.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from clearing.application.ledger_movements import ClassifiedMovement
from clearing.domain.aggregate_operators import AggregateOperator
from clearing.domain.apportionment import Part, apportion_journey
from clearing.domain.classification import Category, Classification, Origin
from clearing.domain.errors import ClearingError
from clearing.domain.journey_legs import JourneyLegs, PricedJourney, PricedLeg, priced_legs
from clearing.domain.operators import OperatorMap
from parking.domain.record import ParkingDetailRecord
from parking.domain.reservation import Reservation
from parking.domain.session import ParkingSession
from ticketing.fares.engine import FareEngine
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.leg import Leg

PURSE_NOT_FROM_LEDGER = "purse payments are attributed from the journeys, not the ledger"


class SuspenseCode(StrEnum):
    """Why a movement is in suspense: stable, for files, dashboards and the next cycle."""

    UNCLASSIFIED = "unclassified"  # the money map has no place for it (`suspense_reason`)
    PURSE_NOT_FROM_LEDGER = "purse_not_from_ledger"
    JOURNEY_NOT_FOUND = "journey_not_found"
    NETWORK_WITHOUT_OPERATOR = "network_without_operator"
    PARKING_NOT_FOUND = "parking_not_found"
    PARKING_OPERATOR_UNKNOWN = "parking_operator_unknown"
    NO_ATTRIBUTION = "no_attribution"  # a revenue origin no rule here attributes
    NOT_SPLIT = "not_split"  # the split itself was refused (a `ClearingError`)


class RiderLegs(Protocol):
    """What attribution reads of a journey: a `Journey`, or the `JourneyLegs` read for it."""

    @property
    def rider_category(self) -> str: ...

    @property
    def fare_media(self) -> str: ...

    @property
    def legs(self) -> Sequence[Leg]: ...


# What a leg alone would have cost its rider; None when it cannot be priced alone.
StandaloneFare = Callable[[RiderLegs, Leg], "int | None"]


class JourneySource(Protocol):
    def get_journey(self, journey_id: UUID) -> RiderLegs | None: ...


class AttributedJourneys(Protocol):
    """Where attribution reads journeys: a `JourneySource`, or a section's journeys read at
    once, some of them as their last pricing recorded them."""

    def get_journey(self, journey_id: UUID) -> RiderLegs | PricedJourney | None: ...


class AggregateSource(Protocol):
    def read_or_none(self, aggregate_id: UUID) -> Any: ...


class AggregateBatches(Protocol):
    """Many aggregates read at once: those found among `ids`, by id."""

    def get_many(self, ids: Collection[UUID]) -> Mapping[UUID, Any]: ...


# The operator id on the parking aggregate a parking movement names; None when not found.
ParkingOperatorOf = Callable[[Origin, UUID], "str | None"]

PARKING_TYPES: Mapping[Origin, type[Any]] = {
    Origin.PARKING_SESSION: ParkingSession,
    Origin.PARKING_RECORD: ParkingDetailRecord,
    Origin.PARKING_RESERVATION: Reservation,
}
PARKING_ORIGINS = frozenset(PARKING_TYPES)


def parking_store_operators(store: AggregateSource) -> ParkingOperatorOf:
    """Operators from the parking store: the session's (a start, an extension, the rest), the
    detail record's (a credit) or the reservation's (its hold), each carrying `operator_id`."""

    def operator_of(origin: Origin, aggregate_id: UUID) -> str | None:
        found = store.read_or_none(aggregate_id)
        if not isinstance(found, PARKING_TYPES[origin]):
            return None
        operator_id: str = found.operator_id
        return operator_id

    return operator_of


@dataclass(frozen=True, slots=True)
class OperatorLine:
    """Revenue of one operator from one movement; negative for a reversal."""

    notification_id: int
    operator_id: str
    amount_vnd: int
    category: Category
    origin: Origin
    origin_id: str


@dataclass(frozen=True, slots=True)
class SuspenseLine:
    """A movement clearing could not attribute, carved out with its reason. `revenue_vnd` is
    the revenue it stands for (signed; 0 when it is not revenue, as an unclassified movement
    or a pass sale); `amount_vnd` is the movement's own amount."""

    notification_id: int
    reference: str
    amount_vnd: int
    revenue_vnd: int
    code: SuspenseCode
    reason: str


Line = OperatorLine | SuspenseLine


def fare_engine_standalone(engine: FareEngine) -> StandaloneFare:
    """Standalone fares from the fare engine (`StandaloneFares`: the leg priced alone, at the
    default category's fare when the feed has one, else the rider's own; a leg still open at
    its dearest end), as a journey's pricing records them."""
    fares = StandaloneFares(engine)

    def standalone(journey: RiderLegs, leg: Leg) -> int | None:
        return fares.fare(leg, journey.rider_category, journey.fare_media)

    return standalone


@dataclass(frozen=True)
class RevenueAttribution:
    """Where each revenue movement's money goes: the use case's collaborators."""

    operators: OperatorMap
    journeys: AttributedJourneys
    parking_operator_of: ParkingOperatorOf
    standalone_fare: StandaloneFare | None = None
    # Where a section's journeys and parking aggregates are read at once (`for_section`).
    journey_batches: AggregateBatches | None = None
    parking_batches: AggregateBatches | None = None

    def for_section(self, items: Sequence[ClassifiedMovement]) -> RevenueAttribution:
        """This attribution with the journeys and parking aggregates `items` name read at once
        (one query each, where reading them one by one costs a query a movement). The lines
        are the same: an aggregate the section does not name is read as before."""
        journey_ids: set[UUID] = set()
        parking_ids: set[UUID] = set()
        for item in items:
            classification = item.classification
            if classification is None or classification.revenue_sign == 0:
                continue
            origin = classification.origin
            if origin is Origin.JOURNEY:
                journey_ids.add(UUID(hex=classification.origin_id))
            elif origin is Origin.TAP and item.journey_id is not None:
                journey_ids.add(item.journey_id)
            elif origin in PARKING_ORIGINS:
                parking_ids.add(UUID(hex=classification.origin_id))
        section = self
        if self.journey_batches is not None and journey_ids:
            found = self.journey_batches.get_many(journey_ids)
            section = replace(section, journeys=_ReadJourneys(journey_ids, found, self.journeys))
        if self.parking_batches is not None and parking_ids:
            found = self.parking_batches.get_many(parking_ids)
            operator_of = _read_operators(parking_ids, found, self.parking_operator_of)
            section = replace(section, parking_operator_of=operator_of)
        return section

    def revenue_lines(self, movements: Iterable[ClassifiedMovement]) -> Iterator[Line]:
        """The lines of each movement in the order given (the store's), one movement at a time."""
        for item in movements:
            yield from self.lines_of(item)

    def lines_of(self, item: ClassifiedMovement) -> list[Line]:
        classification = item.classification
        if classification is None:
            return [self._suspense(item, 0, SuspenseCode.UNCLASSIFIED, item.suspense_reason)]
        revenue_vnd = classification.revenue_sign * item.movement.amount_vnd
        if classification.revenue_sign == 0:
            # Top-ups, holds, purse loads, payouts, pass sales: nobody's revenue (a pass is
            # earned when its validity is over: `pass_revenue.py`).
            return []
        try:
            if classification.origin is Origin.JOURNEY:
                journey_id = UUID(hex=classification.origin_id)
                return self._journey(item, classification, revenue_vnd, journey_id)
            if classification.origin is Origin.TAP and item.journey_id is not None:
                return self._journey(item, classification, revenue_vnd, item.journey_id)
            if classification.origin is Origin.TAP:
                code = SuspenseCode.PURSE_NOT_FROM_LEDGER
                return [self._suspense(item, revenue_vnd, code, PURSE_NOT_FROM_LEDGER)]
            return self._parking(item, classification, revenue_vnd)
        except ClearingError as error:
            return [self._suspense(item, revenue_vnd, SuspenseCode.NOT_SPLIT, str(error))]

    def _journey(
        self,
        item: ClassifiedMovement,
        classification: Classification,
        revenue_vnd: int,
        journey_id: UUID,
    ) -> list[Line]:
        journey = self.journeys.get_journey(journey_id)
        if journey is None or not journey.legs:
            code = SuspenseCode.JOURNEY_NOT_FOUND
            return [self._suspense(item, revenue_vnd, code, "journey not found")]
        recorded = _recorded_legs(journey)
        parts = []
        for leg in journey.legs if recorded is None else recorded:
            operator_id = self.operators.operator_of_network(leg.network_id)
            if operator_id is None:
                reason = f"network {leg.network_id!r} has no operator"
                code = SuspenseCode.NETWORK_WITHOUT_OPERATOR
                return [self._suspense(item, revenue_vnd, code, reason)]
            parts.append(Part(operator_id, 0))
        weights = _recorded_weights(recorded) if recorded is not None else self._weights(journey)
        if weights is not None:
            parts = [Part(p.operator_id, w) for p, w in zip(parts, weights, strict=True)]
        # One line per operator of the movement: legs on two networks of one operator add up.
        by_operator: dict[str, int] = {}
        for share in apportion_journey(revenue_vnd, parts):
            by_operator[share.operator_id] = (
                by_operator.get(share.operator_id, 0) + share.amount_vnd
            )
        return [self._line(item, classification, o, vnd) for o, vnd in by_operator.items()]

    def _weights(self, journey: RiderLegs | PricedJourney) -> list[int] | None:
        """Each leg's standalone fare priced now, or None (equal shares) when any leg has none
        (a `PricedJourney` is weighed by its recorded fares, never here)."""
        if self.standalone_fare is None or isinstance(journey, PricedJourney):
            return None
        weights = [self.standalone_fare(journey, leg) for leg in journey.legs]
        if any(weight is None or weight < 0 for weight in weights):
            return None
        return [weight for weight in weights if weight is not None]

    def _parking(
        self, item: ClassifiedMovement, classification: Classification, revenue_vnd: int
    ) -> list[Line]:
        origin = classification.origin
        if origin not in PARKING_ORIGINS:
            reason = f"no attribution for {origin} revenue"
            return [self._suspense(item, revenue_vnd, SuspenseCode.NO_ATTRIBUTION, reason)]
        found = self.parking_operator_of(origin, UUID(hex=classification.origin_id))
        if found is None:
            reason = f"{origin.replace('_', ' ')} not found"
            return [self._suspense(item, revenue_vnd, SuspenseCode.PARKING_NOT_FOUND, reason)]
        operator_id = self.operators.parking_operator(found)
        if operator_id is None:
            reason = f"parking operator {found!r} is not in the operator map"
            code = SuspenseCode.PARKING_OPERATOR_UNKNOWN
            return [self._suspense(item, revenue_vnd, code, reason)]
        return [self._line(item, classification, operator_id, revenue_vnd)]

    @staticmethod
    def _line(
        item: ClassifiedMovement, classification: Classification, operator_id: str, amount: int
    ) -> OperatorLine:
        return OperatorLine(
            item.notification_id,
            operator_id,
            amount,
            classification.category,
            classification.origin,
            classification.origin_id,
        )

    @staticmethod
    def _suspense(
        item: ClassifiedMovement, revenue_vnd: int, code: SuspenseCode, reason: str
    ) -> SuspenseLine:
        movement = item.movement
        return SuspenseLine(
            item.notification_id, movement.reference, movement.amount_vnd, revenue_vnd, code, reason
        )


class _ReadJourneys:
    """The journeys of a section, read at once; any other journey from `rest`."""

    def __init__(
        self, asked: set[UUID], found: Mapping[UUID, Any], rest: AttributedJourneys
    ) -> None:
        self._asked = asked
        self._found = found
        self._rest = rest

    def get_journey(self, journey_id: UUID) -> RiderLegs | PricedJourney | None:
        found = self._found.get(journey_id)
        if found is None and journey_id not in self._asked:
            return self._rest.get_journey(journey_id)
        return found if isinstance(found, (PricedJourney, JourneyLegs, Journey)) else None


def _recorded_legs(journey: RiderLegs | PricedJourney) -> Sequence[PricedLeg] | None:
    """The legs' networks and standalone fares the journey's last pricing recorded, when its
    legs have not changed since; None when it recorded none (it was priced before pricing
    recorded them, or not since its legs changed)."""
    if isinstance(journey, PricedJourney):
        return journey.legs
    leg_fares = getattr(journey, "leg_fares", None)  # a `Journey`'s; `JourneyLegs` have none
    return None if leg_fares is None else priced_legs(leg_fares)


def _recorded_weights(legs: Sequence[PricedLeg]) -> list[int] | None:
    """Each leg's recorded standalone fare, or None (equal shares) when any leg has none."""
    weights = [leg.fare_vnd for leg in legs]
    if any(weight is None or weight < 0 for weight in weights):
        return None
    return [weight for weight in weights if weight is not None]


def _read_operators(
    asked: set[UUID], found: Mapping[UUID, Any], rest: ParkingOperatorOf
) -> ParkingOperatorOf:
    """The parking operators of a section's aggregates, read at once; any other from `rest`."""

    def operator_of(origin: Origin, aggregate_id: UUID) -> str | None:
        if aggregate_id not in asked:
            return rest(origin, aggregate_id)
        aggregate = found.get(aggregate_id)
        if isinstance(aggregate, AggregateOperator):
            return aggregate.operator_id if aggregate.kind is PARKING_TYPES[origin] else None
        if not isinstance(aggregate, PARKING_TYPES[origin]):
            return None
        operator_id: str = aggregate.operator_id
        return operator_id

    return operator_of
