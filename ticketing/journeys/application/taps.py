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
(`retaps`): a session the rider's journeys hold changes nothing, and a re-tap whose torn tap is
not held stands for it, at the time and validator its card event names.

Where each rule lives: `bus_taps`, `metro_taps`, `tap_repairs` (taps paired again in time
order), `tap_merges` (a ride and its transfer joined), over `leg_ends` (a leg ended, priced and
charged), `fare_steps` and `tap_work` (the tap, the rider's book, the bounds named above).
"""

from __future__ import annotations

import logging
from datetime import date

from ticketing.accounts.domain.account import TransportAccount
from ticketing.cards.application.card_purses import RETAP_AFTER_TEAR, CardPayment
from ticketing.fares.errors import FareRefused
from ticketing.fares.journey_fares import MEDIUM_FARE_MEDIA, rider_category_id, service_day_end
from ticketing.journeys.application.bus_taps import bus_tap
from ticketing.journeys.application.charges import Charger
from ticketing.journeys.application.metro_taps import metro_entry, metro_exit
from ticketing.journeys.application.pricing import RiderPricing
from ticketing.journeys.application.retaps import session_held, tap_held
from ticketing.journeys.application.tap_work import Load, PlaceOf, TapMoment, TapPlace, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom
from ticketing.taps.domain.tap import tap_id
from ticketing.taps.domain.tap_facts import TapFacts
from ticketing.taps.domain.validator import Direction

log = logging.getLogger(__name__)


def apply_tap(
    *,
    tap: TapFacts,
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
    this = TapMoment(
        id=str(tap_id(tap.validator_id, tap.seq, tap.epoch)),
        at=at,
        category=rider_category_id(account.rider_category),
        media=MEDIUM_FARE_MEDIA[tap.medium],
    )
    if tap_held(this.id, pricing.book, load):
        log.warning("tap %s was applied already; applying it again changes nothing", this.id)
        return []
    work = TapWork(pricing, load, charger, this, place, account.id, paid_from, payment)
    if place.mode == "bus":
        return bus_tap(work)
    if place.direction is Direction.EXIT:
        return metro_exit(work)
    return metro_entry(work)


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
    waits = journey.status is JourneyStatus.CLOSED and journey.last_leg.entry_tap is None
    book.point(
        open_journey=None if book.open_journey == key else book.open_journey,
        pending_exits=book.pending_exits if waits else [j for j in book.pending_exits if j != key],
        last_ended=book.last_ended,
        correctable=[*(k for k in book.correctable if k != key), *([] if waits else [key])],
        at=at,
    )
