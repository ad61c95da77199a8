"""Bus taps uploaded late: each door's validator uploads on its own schedule, so a bus tap may
reach the backend after a later tap of the same ride. Such a tap and the taps of the rider's
last bus legs on its route are paired again in the order they happened, each boarding with the
next tap, giving the legs an in-order upload would have made (`Journey.repair_legs`); the
journey is then priced again."""

from __future__ import annotations

from datetime import timedelta

from ticketing.journeys.application.fare_steps import reprice
from ticketing.journeys.application.order import paired_in_time_order
from ticketing.journeys.application.tap_merges import merge_transfer
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S, TapWork
from ticketing.journeys.domain.journey import JOURNEY_LEGS_MAX, Journey
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import LegEnd


def run_around(work: TapWork, journey: Journey | None) -> int | None:
    """Where the journey's last bus legs on this tap's route begin, when this tap happened
    before the latest of their taps: it was uploaded late, and belongs among them."""
    if (
        journey is None
        or journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED)
        or not work.same_payment(journey)
    ):
        return None
    legs, route_id = journey.legs, work.place.route_id
    first = len(legs)
    while first > 0 and legs[first - 1].mode == "bus" and legs[first - 1].route_id == route_id:
        first -= 1
    run = legs[first:]
    times = [t for leg in run for t in (leg.departure, leg.arrival) if t is not None]
    at = work.tap.at
    if not run or at >= max(times):
        return None  # in order: the rules for the next tap apply
    if min(times) - at > timedelta(seconds=BUS_RIDE_MAX_S):
        return None
    ahead = legs[first - 1].arrival if first > 0 else None
    if ahead is not None and ahead > at:
        return None  # before the leg ahead of the run: not one of its taps
    if first + (len(times) + 2) // 2 > JOURNEY_LEGS_MAX:
        return None
    return first


def repair(work: TapWork, journey: Journey, first: int) -> list[Journey]:
    """Pairs the run's taps and this one again in the order they happened: each boarding
    with the next tap, as if every tap had been uploaded in order."""
    tap = LegEnd(work.tap.at, work.tap.id, work.place.stop_id)
    legs = paired_in_time_order(journey.legs[first:], tap)
    book = work.book
    was_open = book.open_journey == str(journey.id)
    before_vnd = journey.fare_vnd
    journey.repair_legs(first_index=first, legs=legs, at=work.tap.at)
    work.paid_from_purse(journey)
    key = str(journey.id)
    if not reprice(work, journey, before_vnd):
        work.point(open_journey=None if was_open else book.open_journey)
        return [journey]
    if journey.complete:
        work.point(open_journey=None if was_open else book.open_journey, last_ended=key)
        return [journey, *merge_transfer(work, journey)]
    work.point(open_journey=key)
    return [journey]
