"""Bus taps of other rides that happened between two taps on one route: the rider left that
bus in between, so the two taps are two boardings, never one ride's boarding and alighting.

Taps reach the backend in upload order, each bus's validator uploading on its own schedule. A
bus tap that happened during a ride the rider's taps already paired (boarding and alighting on
another route) was uploaded late: that ride's alighting was in fact the boarding of another
ride. The ride is left open at its boarding (charged the most it could cost, at day end, as a
boarding no tap ended), this tap is applied, and the old alighting is applied again after it,
as the new boarding it was. Without this, a rider switching between two routes without tapping
off paid one ride in two whenever the validators uploaded in the wrong order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from uuid import uuid5

from ticketing.journeys.application.fare_steps import reprice
from ticketing.journeys.application.tap_work import TapMoment, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.taps.domain.validator import Direction

# The bus pairing rule (`bus_taps.bus_tap`), passed in: it calls this module first.
ApplyTap = Callable[[TapWork], list[Journey]]


def known_journeys(work: TapWork, journeys: list[Journey | None]) -> list[Journey]:
    """The rider's journeys the book points at (open, last ended, correctable), each once."""
    found = [*journeys, work.journey(work.book.last_ended)]
    unique = {journey.id: journey for journey in found if journey is not None}
    return list(unique.values())


def tapped_between(known: list[Journey], legs: list[Leg], at: datetime) -> bool:
    """Whether the rider tapped on another route (or in the metro) strictly between the
    earliest and the latest of `legs`' taps and `at`, in the journeys known. Taps on the same
    route are the same ride's or a neighbour's, which `tap_repairs` pairs in time order."""
    route_id = legs[0].route_id
    moments = [at, *(m for leg in legs for m in (leg.departure, leg.arrival) if m is not None)]
    low, high = min(moments), max(moments)
    for journey in known:
        for other in journey.legs:
            if other.mode == "bus" and other.route_id == route_id:
                continue
            for end in (other.start, other.end):
                if end is not None and low < end.at < high:
                    return True
    return False


def ride_during(work: TapWork, known: list[Journey]) -> tuple[Journey, int] | None:
    """The journey and the index of its bus ride boarded before this tap and alighted after it
    (this tap, uploaded late, shows the rider had left that bus, or on its route boarded it
    again), when every leg from there on is by bus and can be applied again."""
    for journey in known:
        if (
            journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED)
            # A card purse paid each tap at the validator; its pairing is left as it is.
            or journey.paid_from is not PaidFrom.ACCOUNT
            or not work.same_payment(journey)
        ):
            continue
        for index, leg in enumerate(journey.legs):
            start, end = leg.start, leg.end
            if (
                leg.mode == "bus"
                and start is not None
                and end is not None
                and start.at < work.tap.at < end.at
                and all(later.mode == "bus" for later in journey.legs[index:])
            ):
                return journey, index
    return None


def split_ride(
    work: TapWork, journey: Journey, index: int, bus_tap: ApplyTap, this_tap: ApplyTap | None = None
) -> list[Journey]:
    """Leaves the journey's ride at `index` open at its boarding, applies this tap (with
    `this_tap`, by default `bus_tap`: a metro gate's tap may split a bus ride too), then
    applies again with `bus_tap`, in the order they happened, the ride's old alighting (the
    boarding it was) and the taps of the legs after it."""
    legs = journey.legs[index:]
    again = sorted((end, leg) for leg in legs for end in (leg.start, leg.end) if end is not None)[
        1:
    ]  # every tap but the ride's boarding, which stays
    boarded = dataclasses.replace(legs[0], to_stop_id=None, arrival=None, exit_tap=None)
    before_vnd = journey.fare_vnd
    journey.repair_legs(first_index=index, legs=[boarded], at=work.tap.at)
    if index == 0:
        # No leg is complete: nothing is due until the boarding ends, or the day closes.
        work.charger.adjust(journey, 0, f"repair:{journey.repairs}", work.tap.at)
    else:
        reprice(work, journey, before_vnd)
    book, key = work.book, str(journey.id)
    work.point(
        open_journey=key,
        last_ended=None if book.last_ended == key else book.last_ended,
        correctable=[k for k in book.correctable if k != key],
    )
    changed = [journey, *(this_tap or bus_tap)(work)]
    for number, (end, leg) in enumerate(again):
        tap = TapMoment(id=end.tap, at=end.at, category=work.tap.category, media=work.tap.media)
        place = dataclasses.replace(
            work.place,
            mode="bus",
            network_id=leg.network_id,
            route_id=leg.route_id,
            stop_id=end.stop_id,
            direction=Direction.NONE,
        )
        # A tap applied again may start a journey; its id must differ from any its tap began.
        seed = uuid5(journey.id, f"split:{journey.repairs}:{number}")
        changed += bus_tap(work.again(tap, place, seed=seed))
    return changed
