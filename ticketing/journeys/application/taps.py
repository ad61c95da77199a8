"""What one accepted tap does to a rider's journeys, and how a journey is closed at day end.

Pairing rules: a bus tap on the route of the rider's open bus leg is its alighting, any other bus
tap a boarding; a metro exit pairs with the open entry on its line (the most recent), else with a
journey left open (closed at day end, or left behind by a newer entry: a late exit, the real fare
replacing the maximum), else it waits for its entry, also after the day-end close charged it
the maximum (at `PENDING_EXITS_MAX` waiting, the oldest of a closed day makes room, else it is
refused `exits_waiting_full`, uncharged, for staff); a metro entry first takes the earliest
waiting exit on its line that came after it. A boarding or an entry within `TRANSFER_JOIN_S`
after the rider's last journey ended joins it, so the feed's transfer rules price the two
together; a tap from before that end never joins it.

Taps reach the backend in upload order, not in the order they happened. A bus tap earlier than
the latest tap of the rider's last bus legs on its route (in the open journey, else the last one
ended; within `BUS_RIDE_MAX_S`) was uploaded late, each door's validator uploading on its own
schedule: those legs' taps and this one are paired again in time order, each boarding with the
next tap, so the legs are those an in-order upload would have made (`Journey.repair_legs`), and
the journey is priced again. A bus tap earlier than the boarding of a leg left open by the
day-end close is that leg's real boarding. Rides in different journeys (more than the transfer
window apart) are not paired again across journeys. A bus tap within a ride's length of the
boarding of a leg left open (by a newer tap, or at day end) is its alighting. A metro exit that
happened during one of the rider's recent rides on its line, which a later exit already ended,
ends that ride instead; the later exit is then applied again as another ride's. Any upload order
of two or three metro rides, or of a metro ride then a bus ride, gives the rides taken. When a
journey ends and another of the rider's ended journeys began within `TRANSFER_JOIN_S` after it
(or it began so after the other), the two are a ride and its transfer that arrived out of order:
the later one's legs move into the earlier one, which is priced again with the feed's transfer
rules; the later one's charges go back to the account and it is left `merged`.

A journey the engine cannot price is refused with the engine's reason and its hold is voided;
charges already made (earlier legs, a day-end close) stay, and staff list refused journeys.

A re-tap after a tear is no tap of a journey but the torn tap's session proved again
(`journey_retaps`): a session the rider's journeys hold changes nothing, and a re-tap whose torn
tap is not held stands for it, at the time and validator its card event names.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from ticketing.accounts.domain.account import TransportAccount
from ticketing.cards.application.card_purses import RETAP_AFTER_TEAR, CardPayment
from ticketing.fares.engine import FareEngine
from ticketing.fares.errors import FareRefused
from ticketing.fares.journey import Fare
from ticketing.fares.journey_fares import (
    MEDIUM_FARE_MEDIA,
    rider_category_id,
    service_day,
    service_day_end,
)
from ticketing.journeys.application.charges import Charger
from ticketing.journeys.application.order import paired_in_time_order, transfer_between
from ticketing.journeys.application.pricing import RiderPricing, covering_passes
from ticketing.journeys.application.retaps import session_held, tap_held
from ticketing.journeys.domain.journey import JOURNEY_LEGS_MAX, Journey, JourneyStatus, PaidFrom
from ticketing.journeys.domain.rider_journeys import PENDING_EXITS_MAX, RiderJourneys
from ticketing.taps.domain.tap import tap_id
from ticketing.taps.domain.validator import Direction, Validator, ValidatorKind

# The longest transfer window of the Hanoi feed (bus to metro, 3,600 s); the engine decides
# whether a discount applies, this only bounds which journeys are worth asking about.
TRANSFER_JOIN_S = 3600
# The longest bus ride: a bus tap this much earlier than an open boarding on the same route may
# be that ride's real boarding (Hanoi's longest routes take about two hours end to end).
BUS_RIDE_MAX_S = 3 * 3600
# Why an exit past `PENDING_EXITS_MAX` waiting ones is refused, for staff to pair by hand.
EXITS_WAITING_FULL = "exits_waiting_full"

log = logging.getLogger(__name__)

Load = Callable[[UUID], Journey | None]
PlaceOf = Callable[[int], "TapPlace | None"]


@dataclass(frozen=True)
class TapPlace:
    """Where a validator stands in fare terms."""

    mode: str  # metro | bus
    network_id: str
    route_id: str
    stop_id: str
    direction: Direction

    @classmethod
    def of(cls, validator: Validator, fares: FareEngine) -> TapPlace:
        mode = "metro" if validator.kind is ValidatorKind.METRO_GATE else "bus"
        # The feed knows each route's network; an unknown route leaves it empty, and the engine
        # refuses the journey saying so.
        network_id = fares.feed.route_networks.get(validator.route_id, "")
        return cls(mode, network_id, validator.route_id, validator.stop_id, validator.direction)


@dataclass
class _Tap:
    id: str
    at: datetime
    category: str
    media: str

    @property
    def iso(self) -> str:
        return self.at.isoformat()


def apply_tap(
    *,
    tap: Any,
    place: TapPlace,
    account: TransportAccount,
    paid_from: PaidFrom,
    pricing: RiderPricing,
    load: Load,
    charger: Charger,
    payment: CardPayment | None = None,
    place_of: PlaceOf | None = None,
) -> list[Journey]:
    """Applies one accepted tap; returns the journeys it changed (the caller saves them).
    `payment` is what the card's session proves the purse paid, for a purse-paid journey;
    `place_of` finds a validator's place, for the torn tap a re-tap recovers."""
    at = tap.tapped_at
    if payment is not None and payment.recovered is not None:
        at = payment.recovered.at
        place = (place_of and place_of(payment.recovered.validator_id)) or place
    elif tap.device_reason == RETAP_AFTER_TEAR:
        return []  # let through free, yet its session proves no torn one: nothing to book
    if payment is not None and session_held(payment, pricing.book, load):
        return []
    this = _Tap(
        id=str(tap_id(tap.validator_id, tap.seq, tap.epoch)),
        at=at,
        category=rider_category_id(account.rider_category),
        media=MEDIUM_FARE_MEDIA[tap.medium],
    )
    if tap_held(this.id, pricing.book, load):
        log.warning("tap %s was applied already; applying it again changes nothing", this.id)
        return []
    work = _Work(pricing, load, charger, this, place, account.id, paid_from, payment)
    if place.mode == "bus":
        return work.bus()
    if place.direction is Direction.EXIT:
        return work.metro_exit()
    return work.metro_entry()


def close_journey(journey: Journey, pricing: RiderPricing, charger: Charger) -> None:
    """Charges an open journey the most it could have cost, and lets a late tap correct it."""
    at = service_day_end(date.fromisoformat(journey.service_day), pricing.fares.timezone)
    before_vnd = journey.fare_vnd
    try:
        fare = pricing.max_fare(journey)
    except FareRefused as error:
        charger.void(journey, at)
        journey.refuse(code=error.code, reason=error.reason, at=at)
    else:
        journey.close_at_day_end(fare_vnd=fare.total_vnd, at=at)
        charger.settle(journey, fare.total_vnd, "close", at)
        pricing.count(journey, before_vnd, at)
    book = pricing.book
    key = str(journey.id)
    # An exit closed before its entry came still waits for it, among the waiting exits (which
    # are bounded by the rides a rider can make), not among the few correctable journeys that
    # a newer ride pushes out: its entry, uploaded after the close, corrects the fare.
    waits = journey.status is JourneyStatus.CLOSED and journey.last_leg["entry_tap"] is None
    book.point(
        open_journey=None if book.open_journey == key else book.open_journey,
        pending_exits=book.pending_exits if waits else [j for j in book.pending_exits if j != key],
        last_ended=book.last_ended,
        correctable=[*(k for k in book.correctable if k != key), *([] if waits else [key])],
        at=at,
    )


class _Work:
    def __init__(
        self,
        pricing: RiderPricing,
        load: Load,
        charger: Charger,
        tap: _Tap,
        place: TapPlace,
        account_id: UUID,
        paid_from: PaidFrom,
        payment: CardPayment | None,
        *,
        seed: UUID | None = None,
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
        # Names the journey this tap starts when its own id is taken (see `_split`).
        self.seed = seed

    # The three kinds of tap

    def bus(self) -> list[Journey]:
        journey = self._open()
        repaired = journey if journey is not None else self._journey(self.book.last_ended)
        first = self._run_around(repaired)
        if repaired is not None and first is not None:
            return self._repair(repaired, first)
        if journey is not None and self._waits_for_exit(journey):
            return self._end(journey)
        left = self._journeys(self.book.correctable)
        for candidate in reversed(left):
            # A leg left open (a newer tap came first, or the day ended) alights here when
            # this tap came within a ride's length of its boarding.
            if self._waits_for_exit(candidate) and self._within_a_ride(candidate):
                return self._end(candidate)
        for earlier in [journey, *reversed(left)]:
            if earlier is not None and self._boarded_later(earlier):
                return self._board_late(earlier)
        started = self._join_or_start(self._leg(entry=True))
        self._point(open_journey=str(started.id))
        return [started]

    def _within_a_ride(self, journey: Journey) -> bool:
        departure = datetime.fromisoformat(journey.last_leg["departure"])
        return self.tap.at - departure <= timedelta(seconds=BUS_RIDE_MAX_S)

    def metro_entry(self) -> list[Journey]:
        waiting = [
            journey
            for journey in self._journeys(self.book.pending_exits + self.book.correctable)
            if journey.status in (JourneyStatus.EXIT_PENDING, JourneyStatus.CLOSED)
            and journey.last_leg["entry_tap"] is None
            and journey.last_leg["route_id"] == self.place.route_id
            and journey.last_leg["arrival"] >= self.tap.iso
        ]
        if waiting:
            # The first exit after this entry ends its ride; a later one is another ride's.
            journey = min(waiting, key=lambda j: j.last_leg["arrival"])
            leg = journey.last_leg | {
                "from_stop_id": self.place.stop_id,
                "departure": self.tap.iso,
                "entry_tap": self.tap.id,
            }
            return self._complete(journey, leg)
        journey = self._join_or_start(self._leg(entry=True))
        try:
            most = self.pricing.max_fare(journey)
        except FareRefused as error:
            journey.refuse(code=error.code, reason=error.reason, at=self.tap.at)
            self._point(open_journey=None)
            return [journey]
        step = f"hold:{len(journey.legs) - 1}"
        self.charger.hold(journey, most.total_vnd - journey.charged_vnd, step, self.tap.at)
        self._point(open_journey=str(journey.id))
        return [journey]

    def metro_exit(self) -> list[Journey]:
        keys = [self.book.last_ended, *reversed(self.book.correctable)]
        for paired in self._journeys([k for k in dict.fromkeys(keys) if k is not None]):
            index = self._exits_within(paired)
            if index is not None:
                return self._split(paired, index)
        candidates = [self._open(), *reversed(self._journeys(self.book.correctable))]
        for journey in candidates:
            if journey is not None and self._waits_for_exit(journey):
                return self._end(journey)
        return self._wait_for_entry(self._start(self._leg(entry=False)))

    def _wait_for_entry(self, journey: Journey) -> list[Journey]:
        """Keeps an exit that came before its entry among the waiting ones. At the bound, the
        oldest exit of a day already closed (charged the maximum, as an exit that never found
        its entry is) makes room; no exit of a day still open is ever pushed out."""
        waiting = self.book.pending_exits
        if len(waiting) >= PENDING_EXITS_MAX:
            # Only a full list is searched, and only until the first exit of a closed day.
            closed = next((key for key in waiting if not self._day_open(key)), None)
            if closed is None:
                # More exits wait than one rider can ride in the days not yet closed: these are
                # not one rider's rides (a copied medium, a device's clock gone wrong). This one
                # is set aside uncharged (the day-end close skips it); staff list it as refused.
                reason = (
                    f"{PENDING_EXITS_MAX} exits already wait for their entries, more rides than "
                    "one rider can make before the day-end close: set aside for staff to pair"
                )
                journey.refuse(code=EXITS_WAITING_FULL, reason=reason, at=self.tap.at)
                return [journey]
            waiting = [key for key in waiting if key != closed]
        self._point(pending_exits=[*waiting, str(journey.id)])
        return [journey]

    def _day_open(self, key: str) -> bool:
        """Whether a waiting exit's day is still open: the day-end close has not charged it."""
        journey = self._journey(key)
        return journey is not None and journey.status is JourneyStatus.EXIT_PENDING

    # Steps

    def _end(self, journey: Journey) -> list[Journey]:
        leg = journey.last_leg | {
            "to_stop_id": self.place.stop_id,
            "arrival": self.tap.iso,
            "exit_tap": self.tap.id,
        }
        return self._complete(journey, leg)

    def _board_late(self, journey: Journey) -> list[Journey]:
        # The open leg's only tap was its alighting; this earlier tap is its boarding.
        last = journey.last_leg
        leg = last | {
            "from_stop_id": self.place.stop_id,
            "to_stop_id": last["from_stop_id"],
            "departure": self.tap.iso,
            "arrival": last["departure"],
            "entry_tap": self.tap.id,
            "exit_tap": last["entry_tap"],
        }
        return self._complete(journey, leg)

    def _complete(self, journey: Journey, leg: dict[str, Any]) -> list[Journey]:
        closed = journey.status is JourneyStatus.CLOSED
        before_vnd = journey.fare_vnd
        journey.end_leg(leg=leg, at=self.tap.at)
        self._paid_from_purse(journey)
        key = str(journey.id)
        pending = [j for j in self.book.pending_exits if j != key]
        correctable = [j for j in self.book.correctable if j != key]
        open_journey = None if self.book.open_journey == key else self.book.open_journey
        try:
            fare = self.pricing.price(journey)
        except FareRefused as error:
            self.charger.void(journey, self.tap.at)
            journey.refuse(code=error.code, reason=error.reason, at=self.tap.at)
            self._point(open_journey=open_journey, pending_exits=pending, correctable=correctable)
            return [journey]
        self._charge(journey, fare, closed=closed)
        self.pricing.count(journey, before_vnd, self.tap.at)
        self._point(
            open_journey=open_journey,
            pending_exits=pending,
            last_ended=key,
            correctable=correctable,
        )
        return [journey, *self._merge_transfer(journey)]

    def _merge_transfer(self, journey: Journey) -> list[Journey]:
        """When this ended journey and another ended one of the rider are a ride and its
        transfer (the later began within `TRANSFER_JOIN_S` after the earlier ended) that reached
        the backend out of order, moves the later one's legs into the earlier one, so the feed's
        transfer rules price them together. The later journey's charges go back to the account
        and the earlier one charges the whole; the later is left `merged`."""
        if journey.status is not JourneyStatus.ENDED:
            return []
        keys = [self.book.last_ended, *reversed(self.book.correctable)]
        for other in self._journeys(
            [k for k in dict.fromkeys(keys) if k not in (None, str(journey.id))]
        ):
            if (
                other.status is not JourneyStatus.ENDED
                or other.paid_from is not journey.paid_from
                or other.fare_media != journey.fare_media
                or len(other.legs) + len(journey.legs) > JOURNEY_LEGS_MAX
            ):
                continue
            for earlier, later in ((other, journey), (journey, other)):
                if transfer_between(earlier, later, TRANSFER_JOIN_S):
                    return self._merge(earlier, later)
        return []

    def _merge(self, earlier: Journey, later: Journey) -> list[Journey]:
        at = self.tap.at
        later_fare_vnd = later.fare_vnd
        self.charger.refund(later, later.charged_vnd, at, "merged")
        if later.charged_vnd != 0:
            return []  # the ledger refused the refund; the journeys stay as they are
        before_vnd = earlier.fare_vnd
        earlier.join_legs(later, at=at)
        later.merge_into(earlier.id, at=at)
        self.pricing.count(later, later_fare_vnd, at)
        self._reprice(earlier, before_vnd, step=f"merge:{len(earlier.legs)}")
        gone = str(later.id)
        book = self.book
        self._point(
            open_journey=None if book.open_journey == gone else book.open_journey,
            pending_exits=[k for k in book.pending_exits if k != gone],
            last_ended=str(earlier.id),
            correctable=[k for k in book.correctable if k != gone],
        )
        return [earlier, later]

    def _exits_within(self, journey: Journey) -> int | None:
        """The index of the journey's metro ride on this line during which this exit happened,
        a ride that a later exit ended: that exit was another ride's, paired while this one
        was still on its way (gates upload on their own schedules)."""
        if (
            journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED)
            or journey.paid_from is not self.paid_from
            or journey.fare_media != self.tap.media
        ):
            return None
        for index, leg in enumerate(journey.legs):
            if (
                leg["mode"] == "metro"
                and leg["route_id"] == self.place.route_id
                and leg["entry_tap"] is not None
                and leg["exit_tap"] is not None
                and leg["departure"] <= self.tap.iso < leg["arrival"]
            ):
                return index
        return None

    def _split(self, journey: Journey, index: int) -> list[Journey]:
        """Ends the journey's ride at `index` at this exit, prices the journey again, and
        applies the later exit again as the exit of another ride."""
        ride = journey.legs[index]
        later = _Tap(
            id=ride["exit_tap"],
            at=datetime.fromisoformat(ride["arrival"]),
            category=self.tap.category,
            media=self.tap.media,
        )
        later_place = dataclasses.replace(
            self.place, stop_id=ride["to_stop_id"], direction=Direction.EXIT
        )
        leg = ride | {
            "to_stop_id": self.place.stop_id,
            "arrival": self.tap.iso,
            "exit_tap": self.tap.id,
        }
        before_vnd = journey.fare_vnd
        legs = [leg, *journey.legs[index + 1 :]]
        journey.repair_legs(first_index=index, legs=legs, at=self.tap.at)
        self._paid_from_purse(journey)
        self._reprice(journey, before_vnd)
        # The later exit may start a journey of its own; its id must differ from any journey
        # its tap already began (it may have arrived first and waited for this entry).
        seed = uuid5(journey.id, f"split:{journey.repairs}")
        again = _Work(
            self.pricing,
            self.load,
            self.charger,
            later,
            later_place,
            self.account_id,
            self.paid_from,
            None,
            seed=seed,
        )
        return [journey, *again.metro_exit()]

    def _reprice(self, journey: Journey, before_vnd: int | None, *, step: str = "") -> bool:
        """Prices a journey whose legs were paired again or joined, its complete legs when the
        last is open, and settles the difference under ledger step `step` (by default the
        journey's repair count); False when the engine refused it."""
        complete = journey.legs if journey.complete else journey.legs[:-1]
        if not complete:
            return True
        try:
            fare = self.pricing.price(journey, complete)
        except FareRefused as error:
            self.charger.void(journey, self.tap.at)
            journey.refuse(code=error.code, reason=error.reason, at=self.tap.at)
            return False
        _record_fare(journey, fare, self.tap.at)
        self.charger.adjust(
            journey, fare.total_vnd, step or f"repair:{journey.repairs}", self.tap.at
        )
        self.charger.refund_purse(journey, self.tap.at)
        self.pricing.count(journey, before_vnd, self.tap.at)
        return True

    def _run_around(self, journey: Journey | None) -> int | None:
        """Where the journey's last bus legs on this tap's route begin, when this tap happened
        before the latest of their taps: it was uploaded late, and belongs among them."""
        if (
            journey is None
            or journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED)
            or journey.paid_from is not self.paid_from
            or journey.fare_media != self.tap.media
        ):
            return None
        legs = journey.legs
        first = len(legs)
        while (
            first > 0
            and legs[first - 1]["mode"] == "bus"
            and legs[first - 1]["route_id"] == self.place.route_id
        ):
            first -= 1
        run = legs[first:]
        times = [t for leg in run for t in (leg["departure"], leg["arrival"]) if t is not None]
        if not run or self.tap.iso >= max(times):
            return None  # in order: the rules for the next tap apply
        if datetime.fromisoformat(min(times)) - self.tap.at > timedelta(seconds=BUS_RIDE_MAX_S):
            return None
        if first > 0 and (legs[first - 1]["arrival"] or "") > self.tap.iso:
            return None  # before the leg ahead of the run: not one of its taps
        if first + (len(times) + 2) // 2 > JOURNEY_LEGS_MAX:
            return None
        return first

    def _repair(self, journey: Journey, first: int) -> list[Journey]:
        """Pairs the run's taps and this one again in the order they happened: each boarding
        with the next tap, as if every tap had been uploaded in order."""
        tap = (self.tap.iso, self.tap.id, self.place.stop_id)
        legs = paired_in_time_order(journey.legs[first:], tap)
        was_open = self.book.open_journey == str(journey.id)
        before_vnd = journey.fare_vnd
        journey.repair_legs(first_index=first, legs=legs, at=self.tap.at)
        self._paid_from_purse(journey)
        key = str(journey.id)
        if not self._reprice(journey, before_vnd):
            self._point(open_journey=None if was_open else self.book.open_journey)
            return [journey]
        if journey.complete:
            self._point(open_journey=None if was_open else self.book.open_journey, last_ended=key)
            return [journey, *self._merge_transfer(journey)]
        self._point(open_journey=key)
        return [journey]

    def _charge(self, journey: Journey, fare: Fare, *, closed: bool) -> None:
        if closed:
            journey.correct(fare_vnd=fare.total_vnd, at=self.tap.at)
        _record_fare(journey, fare, self.tap.at)
        if closed:
            refund_vnd = journey.charged_vnd - fare.total_vnd
            self.charger.refund(journey, refund_vnd, self.tap.at)
        else:
            step = f"leg:{len(journey.legs) - 1}"
            self.charger.settle(journey, fare.total_vnd, step, self.tap.at)
        self.charger.refund_purse(journey, self.tap.at)

    def _join_or_start(self, leg: dict[str, Any]) -> Journey:
        last = self._journey(self.book.last_ended)
        if (
            last is not None
            and last.status is JourneyStatus.ENDED
            and last.paid_from is self.paid_from
            and last.fare_media == self.tap.media
            and len(last.legs) < JOURNEY_LEGS_MAX
            and last.last_leg["arrival"] is not None
            # A transfer comes after the ride it follows: an earlier tap uploaded late is not one.
            and last.last_leg["arrival"] <= self.tap.iso
            and datetime.fromisoformat(last.last_leg["arrival"])
            + timedelta(seconds=TRANSFER_JOIN_S)
            >= self.tap.at
        ):
            last.add_leg(leg=leg, at=self.tap.at)
            self._paid_from_purse(last)
            return last
        return self._start(leg)

    def _start(self, leg: dict[str, Any]) -> Journey:
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
        self._paid_from_purse(journey)
        return journey

    def _paid_from_purse(self, journey: Journey) -> None:
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

    def _leg(self, *, entry: bool) -> dict[str, Any]:
        place, iso = self.place, self.tap.iso
        return {
            "mode": place.mode,
            "network_id": place.network_id,
            "route_id": place.route_id,
            "from_stop_id": place.stop_id if entry else None,
            "to_stop_id": None if entry else place.stop_id,
            "departure": iso if entry else None,
            "arrival": None if entry else iso,
            "entry_tap": self.tap.id if entry else None,
            "exit_tap": None if entry else self.tap.id,
        }

    def _waits_for_exit(self, journey: Journey) -> bool:
        last = journey.last_leg
        return (
            journey.status in (JourneyStatus.OPEN, JourneyStatus.CLOSED)
            and last["mode"] == self.place.mode
            and last["route_id"] == self.place.route_id
            and last["entry_tap"] is not None
            and last["exit_tap"] is None
            and last["departure"] <= self.tap.iso
        )

    def _boarded_later(self, journey: Journey) -> bool:
        """Whether the journey's open bus leg on this route began after this tap, soon enough
        that this tap is its boarding."""
        last = journey.last_leg
        if not (
            journey.status in (JourneyStatus.OPEN, JourneyStatus.CLOSED)
            and last["mode"] == "bus"
            and last["route_id"] == self.place.route_id
            and last["entry_tap"] is not None
            and last["exit_tap"] is None
            and last["departure"] > self.tap.iso
        ):
            return False
        later = datetime.fromisoformat(last["departure"])
        return later - self.tap.at <= timedelta(seconds=BUS_RIDE_MAX_S)

    def _open(self) -> Journey | None:
        return self._journey(self.book.open_journey)

    def _journey(self, key: str | None) -> Journey | None:
        return None if key is None else self.load(UUID(key))

    def _journeys(self, keys: list[str]) -> list[Journey]:
        return [j for j in (self._journey(k) for k in keys) if j is not None]

    def _point(self, **changes: Any) -> None:
        book = self.book
        pointers: dict[str, Any] = {
            "open_journey": book.open_journey,
            "pending_exits": book.pending_exits,
            "last_ended": book.last_ended,
            "correctable": book.correctable,
        }
        pointers |= changes
        ended = pointers["last_ended"]
        if ended is not None and ended != book.last_ended:
            # A ride this journey ended may still be split by a late exit (`_split`).
            kept = [k for k in pointers["correctable"] if k != ended]
            pointers["correctable"] = [*kept, ended]
        displaced = book.open_journey
        if displaced is not None and pointers["open_journey"] not in (None, displaced):
            # A newer entry or boarding came while this journey's leg was open. A tap of that
            # leg uploaded late (an exit between the two entries) must still find it.
            journey = self._journey(displaced)
            if journey is not None and journey.status is JourneyStatus.OPEN:
                kept = [k for k in pointers["correctable"] if k != displaced]
                pointers["correctable"] = [*kept, displaced]
        book.point(**pointers, at=self.tap.at)


def _record_fare(journey: Journey, fare: Fare, at: datetime) -> None:
    journey.price(
        fare_vnd=fare.total_vnd,
        reference_vnd=fare.reference_total_vnd,
        transfer_discount_vnd=fare.transfer_discount_vnd,
        at=at,
        pass_product_ids=covering_passes(fare),
        cap_id=fare.cap_id,
    )
