"""What every step of applying one tap shares: the tap, where it was made, the rider's book, and
the few moves any pairing rule makes (read the journeys the book points at, start or join a
journey, note a purse payment, move the book's pointers).

The pairing rules themselves live beside this module, one concern each: `bus_taps`,
`metro_taps`, `tap_repairs` (taps uploaded late, paired again), `tap_merges` (a ride and its
transfer that arrived out of order), over `leg_ends` and `fare_steps`; `taps` applies one tap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ticketing.cards.application.card_purses import CardPayment
from ticketing.fares.engine import FareEngine
from ticketing.fares.journey_fares import service_day
from ticketing.journeys.application.charges import Charger
from ticketing.journeys.application.pricing import RiderPricing
from ticketing.journeys.domain.journey import JOURNEY_LEGS_MAX, Journey
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.journeys.domain.rider_journeys import RiderJourneys
from ticketing.taps.domain.validator import Direction, Validator, ValidatorKind

# The longest transfer window of the Hanoi feed (bus to metro, 3,600 s); the engine decides
# whether a discount applies, this only bounds which journeys are worth asking about.
TRANSFER_JOIN_S = 3600
# The longest bus ride: a bus tap this much earlier than an open boarding on the same route may
# be that ride's real boarding (Hanoi's longest routes take about two hours end to end).
BUS_RIDE_MAX_S = 3 * 3600
# Exits waiting for their entry read for a tap, newest first: a metro trip whose entry was lost
# (or is not uploaded yet) still ends the bus ride before it, and comes between a ride and what
# would otherwise be its transfer. A bus ride is at most `BUS_RIDE_MAX_S` (3 h) long, and a
# rider leaves the metro at most once per 3 min (`METRO_RIDES_PER_SERVICE_DAY_MAX`): 60 exits.
NEAR_EXITS_READ_MAX = 60

Load = Callable[[UUID], Journey | None]
PlaceOf = Callable[[int], "TapPlace | None"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TapPlace:
    """Where a validator stands in fare terms."""

    mode: str  # metro | bus
    network_id: str
    route_id: str
    stop_id: str
    direction: Direction

    @classmethod
    def of(cls, validator: Validator, fares: FareEngine, said_stop: str | None = None) -> TapPlace:
        """Where `validator` stood at a tap whose device said it was at `said_stop` (a bus
        validator's GPS or driver's console; None: it said nothing)."""
        mode = "metro" if validator.kind is ValidatorKind.METRO_GATE else "bus"
        # The feed knows each route's network; an unknown route leaves it empty, and the engine
        # refuses the journey saying so.
        network_id = fares.feed.route_networks.get(validator.route_id, "")
        stop_id = tap_stop(validator, said_stop, fares)
        return cls(mode, network_id, validator.route_id, stop_id, validator.direction)


def tap_stop(validator: Validator, said_stop: str | None, fares: FareEngine) -> str:
    """The stop of a tap: the one a bus validator said it was at, when the fare feed knows it
    (a feed without stops knows any); else the stop it was registered at. A metro gate stands
    where it was registered, whatever it says."""
    if said_stop is None or validator.kind is not ValidatorKind.BUS:
        return validator.stop_id
    stops = fares.feed.stops
    if stops and said_stop not in stops:
        # The tap keeps what the device said; the fare is not refused for a device's mistake.
        log.warning(
            "validator %s said stop %r, which the fare feed does not know; its registered "
            "stop %s stands",
            validator.validator_id,
            said_stop,
            validator.stop_id,
        )
        return validator.stop_id
    return said_stop


@dataclass
class TapMoment:
    """The tap being applied as the journey code sees it: its id, when it happened, and the
    rider category and fare medium it is priced with."""

    id: str
    at: datetime
    category: str
    media: str


class TapWork:
    """One tap being applied to one rider's journeys; the caller saves the journeys changed."""

    def __init__(
        self,
        pricing: RiderPricing,
        load: Load,
        charger: Charger,
        tap: TapMoment,
        place: TapPlace,
        account_id: UUID,
        paid_from: PaidFrom,
        payment: CardPayment | None,
        *,
        seed: UUID | None = None,
        made: dict[UUID, Journey] | None = None,
    ) -> None:
        self.pricing = pricing
        self.book: RiderJourneys = pricing.book
        self.load = load
        self.charger = charger
        self.tap = tap
        self.place = place
        self.account_id = account_id
        self.paid_from = paid_from
        self.payment = payment
        # Names the journey this tap starts when its own id is taken (`metro_taps.split`).
        self.seed = seed
        # Journeys this tap started, not yet in the store: a tap applied again as part of
        # this one (`bus_splits`) must find them where the book points.
        self.made: dict[UUID, Journey] = {} if made is None else made

    def again(self, tap: TapMoment, place: TapPlace, *, seed: UUID) -> TapWork:
        """Another tap of the same rider, applied again as part of this one (no payment)."""
        return TapWork(
            self.pricing,
            self.load,
            self.charger,
            tap,
            place,
            self.account_id,
            self.paid_from,
            None,
            seed=seed,
            made=self.made,
        )

    # The journeys the book points at

    def open(self) -> Journey | None:
        return self.journey(self.book.open_journey)

    def journey(self, key: str | None) -> Journey | None:
        if key is None:
            return None
        journey_id = UUID(key)
        return self.made.get(journey_id) or self.load(journey_id)

    def journeys(self, keys: list[str]) -> list[Journey]:
        return [j for j in (self.journey(k) for k in keys) if j is not None]

    def known(self) -> list[Journey]:
        """The rider's journeys the book points at (open, last ended, correctable, and the
        newest exits waiting for their entry), each once: those a tap uploaded late may fall
        among."""
        book = self.book
        keys = [
            book.open_journey,
            *book.correctable,
            book.last_ended,
            *book.pending_exits[-NEAR_EXITS_READ_MAX:],
        ]
        return self.journeys([key for key in dict.fromkeys(keys) if key is not None])

    def tapped_within(self, low: datetime, high: datetime) -> bool:
        """Whether the rider made a tap strictly between `low` and `high`, in the journeys
        known, other than a metro exit whose entry never came. Such an exit ends a bus ride
        before it (`bus_splits`), but takes no transfer away: the gate lost the entry the
        discount would have gone to, so it goes to the next trip the rider tapped into."""
        return any(
            end is not None and low < end.at < high
            for journey in self.known()
            for leg in journey.legs
            if leg.start is not None
            for end in (leg.start, leg.end)
        )

    def same_payment(self, journey: Journey) -> bool:
        """Whether this tap is paid and priced as the journey is (same payer, same medium)."""
        return journey.paid_from is self.paid_from and journey.fare_media == self.tap.media

    def waits_for_exit(self, journey: Journey) -> bool:
        """Whether the journey's last leg is open on this tap's route and began before it."""
        last = journey.last_leg
        return (
            journey.status in (JourneyStatus.OPEN, JourneyStatus.CLOSED)
            and last.mode == self.place.mode
            and last.route_id == self.place.route_id
            and last.entry_tap is not None
            and last.exit_tap is None
            and last.departure is not None
            and last.departure <= self.tap.at
        )

    # Journeys started and joined

    def leg(self, *, entry: bool) -> Leg:
        """The leg this tap begins: from its entry, or from its exit when that came first."""
        place, at = self.place, self.tap.at
        return Leg(
            mode=place.mode,
            network_id=place.network_id,
            route_id=place.route_id,
            from_stop_id=place.stop_id if entry else None,
            to_stop_id=None if entry else place.stop_id,
            departure=at if entry else None,
            arrival=None if entry else at,
            entry_tap=self.tap.id if entry else None,
            exit_tap=None if entry else self.tap.id,
        )

    def ended(self, leg: Leg) -> Leg:
        """`leg` ended by this tap, its exit (or alighting)."""
        return leg.ended(stop_id=self.place.stop_id, at=self.tap.at, tap=self.tap.id)

    def join_or_start(self, leg: Leg) -> Journey:
        """Adds the leg to the rider's journey that ended last before this tap when it began
        within a transfer of that journey's end; otherwise starts a journey with it."""
        last = self._ended_just_before()
        if last is not None:
            last.add_leg(leg=leg, at=self.tap.at)
            self.paid_from_purse(last)
            return last
        return self.start(leg)

    def _ended_just_before(self) -> Journey | None:
        """The ended journey this tap may join as its transfer: the one that ended last before
        it, within `TRANSFER_JOIN_S`, with no tap of the rider's between. The book's last ended
        one first; taps uploaded late may have left another, among the correctable ones, the
        one that ended last in the order the taps happened."""
        keys = [self.book.last_ended, *reversed(self.book.correctable)]
        found: Journey | None = None
        found_ended: datetime | None = None
        for journey in self.journeys([k for k in dict.fromkeys(keys) if k is not None]):
            ended = journey.last_leg.arrival
            if (
                journey.status is JourneyStatus.ENDED
                and self.same_payment(journey)
                and len(journey.legs) < JOURNEY_LEGS_MAX
                and ended is not None
                # A transfer comes after the ride it follows: an earlier tap uploaded late is
                # not one.
                and ended <= self.tap.at
                and ended + timedelta(seconds=TRANSFER_JOIN_S) >= self.tap.at
                and (found_ended is None or ended > found_ended)
                # A tap between (uploaded before the journey ended) was the rider's next move.
                and not self.tapped_within(ended, self.tap.at)
            ):
                found, found_ended = journey, ended
        return found

    def start(self, leg: Leg) -> Journey:
        journey = Journey.start(
            first_tap_id=self.seed or UUID(self.tap.id),
            account_id=self.account_id,
            paid_from=self.paid_from,
            rider_category=self.tap.category,
            fare_media=self.tap.media,
            service_day=service_day(self.tap.at, self.pricing.fares.timezone).isoformat(),
            leg=leg,
            at=self.tap.at,
        )
        self.made[journey.id] = journey
        self.paid_from_purse(journey)
        return journey

    def paid_from_purse(self, journey: Journey) -> None:
        """Notes on the journey the tap just joined what the card's purse paid there, and the
        session that paid, which a re-tap after a tear may prove again."""
        payment = self.payment
        if (
            journey.paid_from is PaidFrom.CARD_PURSE
            and payment is not None
            and (payment.amount_vnd > 0 or payment.proof is not None)
        ):
            journey.pay_from_purse(
                tap_id=self.tap.id,
                amount_vnd=payment.amount_vnd,
                at=self.tap.at,
                proof=payment.proof,
            )

    # The book's pointers

    def point(self, **changes: Any) -> None:
        """Moves the book's pointers as `changes` says, keeping every journey a late tap may
        still correct among the correctable ones."""
        book = self.book
        pointers: dict[str, Any] = {
            "open_journey": book.open_journey,
            "pending_exits": book.pending_exits,
            "last_ended": book.last_ended,
            "correctable": book.correctable,
        }
        pointers |= changes
        ended = pointers["last_ended"]
        if ended is not None and (ended != book.last_ended or ended not in pointers["correctable"]):
            # A ride this journey ended may still be split by a late exit (`metro_taps.split`),
            # or joined by a transfer that reached the backend before it (`tap_merges`); the
            # last ended journey stays correctable when a later leg of it ends, too.
            kept = [k for k in pointers["correctable"] if k != ended]
            pointers["correctable"] = [*kept, ended]
        displaced = book.open_journey
        if displaced is not None and pointers["open_journey"] not in (None, displaced):
            # A newer entry or boarding came while this journey's leg was open. A tap of that
            # leg uploaded late (an exit between the two entries) must still find it.
            journey = self.journey(displaced)
            if journey is not None and journey.status is JourneyStatus.OPEN:
                kept = [k for k in pointers["correctable"] if k != displaced]
                pointers["correctable"] = [*kept, displaced]
        book.point(**pointers, at=self.tap.at)
