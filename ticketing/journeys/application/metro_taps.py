"""Metro gate taps paired into rides. An exit pairs with the open entry on its line (the most
recent), else with a journey left open (closed at day end, or left behind by a newer entry: a
late exit, the real fare replacing the maximum), else it waits for its entry, also after the
day-end close charged it the maximum (at `PENDING_EXITS_MAX` waiting, the oldest of a closed
day makes room, else it is refused `exits_waiting_full`, uncharged, for staff). An entry first
takes the earliest waiting exit on its line that came after it, else holds the most its ride
can cost. An exit that happened during one of the rider's recent rides on its line, which a
later exit already ended, ends that ride instead; the later exit is then applied again."""

from __future__ import annotations

import dataclasses
from uuid import uuid5

from ticketing.fares.errors import FareRefused
from ticketing.journeys.application.bus_splits import (
    Undos,
    break_transfer,
    known_journeys,
    transfer_left,
    undo_and_apply,
    undos_after,
)
from ticketing.journeys.application.bus_taps import bus_tap
from ticketing.journeys.application.fare_steps import reprice
from ticketing.journeys.application.leg_ends import complete, end
from ticketing.journeys.application.tap_work import TapMoment, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.leg import LegEnd
from ticketing.journeys.domain.rider_journeys import PENDING_EXITS_MAX
from ticketing.taps.domain.validator import Direction

# Why an exit past `PENDING_EXITS_MAX` waiting ones is refused, for staff to pair by hand.
EXITS_WAITING_FULL = "exits_waiting_full"


def metro_entry(work: TapWork) -> list[Journey]:
    book, tap, place = work.book, work.tap, work.place
    known = _known(work)
    undos = _bus_rides_during(work, known)
    left = transfer_left(work, known) or undos.trip_in_the_way
    if left is not None:
        return break_transfer(work, *left, metro_entry)
    if undos.rides:
        return undo_and_apply(work, undos.rides, bus_tap, metro_entry)
    waiting = [
        (arrival, journey)
        for journey in work.journeys(book.pending_exits + book.correctable)
        if journey.status in (JourneyStatus.EXIT_PENDING, JourneyStatus.CLOSED)
        and journey.last_leg.entry_tap is None
        and journey.last_leg.route_id == place.route_id
        and (arrival := journey.last_leg.arrival) is not None
        and arrival >= tap.at
    ]
    if waiting:
        # The first exit after this entry ends its ride; a later one is another ride's.
        _, journey = min(waiting, key=lambda waits: waits[0])
        leg = journey.last_leg.entered(stop_id=place.stop_id, at=tap.at, tap=tap.id)
        return complete(work, journey, leg)
    journey = work.join_or_start(work.leg(entry=True))
    try:
        most = work.pricing.max_fare(journey)
    except FareRefused as error:
        journey.refuse(code=error.code, reason=error.reason, at=tap.at)
        work.point(open_journey=None)
        return [journey]
    step = f"hold:{len(journey.legs) - 1}"
    work.charger.hold(journey, most.total_vnd - journey.charged_vnd, step, tap.at)
    work.point(open_journey=str(journey.id))
    return [journey]


def metro_exit(work: TapWork) -> list[Journey]:
    book = work.book
    known = _known(work)
    undos = _bus_rides_during(work, known)
    left = transfer_left(work, known) or undos.trip_in_the_way
    if left is not None:
        return break_transfer(work, *left, metro_exit)
    if undos.rides:
        return undo_and_apply(work, undos.rides, bus_tap, metro_exit)
    # The open journey too: one that took a later transfer's bus ride holds its trips.
    keys = [book.last_ended, book.open_journey, *reversed(book.correctable)]
    for paired in work.journeys([k for k in dict.fromkeys(keys) if k is not None]):
        ride = _exits_within(work, paired)
        if ride is not None:
            return _split(work, paired, *ride)
    candidates = [work.open(), *reversed(work.journeys(book.correctable))]
    for journey in candidates:
        if journey is not None and work.waits_for_exit(journey):
            return end(work, journey)
    return _wait_for_entry(work, work.start(work.leg(entry=False)))


def _known(work: TapWork) -> list[Journey]:
    """The rider's journeys a gate tap uploaded late may change: the open one and those still
    correctable. A metro trip priced as a transfer from a bus ride this tap happened during
    first moves to a journey of its own (`transfer_left`), then the ride is undone."""
    return known_journeys(work, [work.open(), *work.journeys(work.book.correctable)])


def _bus_rides_during(work: TapWork, known: list[Journey]) -> Undos:
    """The bus rides already paired that this gate tap, uploaded late, undoes (`bus_splits`):
    one it happened during (the rider had left that bus, so its alighting was the boarding of
    another ride), and those a journey took as transfers across it."""
    return undos_after(work, known, bus=False)


def _wait_for_entry(work: TapWork, journey: Journey) -> list[Journey]:
    """Keeps an exit that came before its entry among the waiting ones. At the bound, the
    oldest exit of a day already closed (charged the maximum, as an exit that never found
    its entry is) makes room; no exit of a day still open is ever pushed out."""
    waiting = work.book.pending_exits
    if len(waiting) >= PENDING_EXITS_MAX:
        # Only a full list is searched, and only until the first exit of a closed day.
        closed = next((key for key in waiting if not _day_open(work, key)), None)
        if closed is None:
            # More exits wait than one rider can ride in the days not yet closed: these are
            # not one rider's rides (a copied medium, a device's clock gone wrong). This one
            # is set aside uncharged (the day-end close skips it); staff list it as refused.
            reason = (
                f"{PENDING_EXITS_MAX} exits already wait for their entries, more rides than "
                "one rider can make before the day-end close: set aside for staff to pair"
            )
            journey.refuse(code=EXITS_WAITING_FULL, reason=reason, at=work.tap.at)
            return [journey]
        waiting = [key for key in waiting if key != closed]
    work.point(pending_exits=[*waiting, str(journey.id)])
    return [journey]


def _day_open(work: TapWork, key: str) -> bool:
    """Whether a waiting exit's day is still open: the day-end close has not charged it."""
    journey = work.journey(key)
    return journey is not None and journey.status is JourneyStatus.EXIT_PENDING


def _exits_within(work: TapWork, journey: Journey) -> tuple[int, LegEnd] | None:
    """The index of the journey's metro ride on this line during which this exit happened,
    and the ride's exit: a later exit, another ride's, paired while this one was still on its
    way (gates upload on their own schedules)."""
    if journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED) or not work.same_payment(
        journey
    ):
        return None
    for index, leg in enumerate(journey.legs):
        start, end = leg.start, leg.end
        if (
            leg.mode == "metro"
            and leg.route_id == work.place.route_id
            and start is not None
            and end is not None
            and start.at <= work.tap.at < end.at
        ):
            return index, end
    return None


def _split(work: TapWork, journey: Journey, index: int, ride_end: LegEnd) -> list[Journey]:
    """Ends the journey's ride at `index` at this exit, prices the journey again, and
    applies the ride's later exit (`ride_end`) again as the exit of another ride."""
    later = TapMoment(
        id=ride_end.tap,
        at=ride_end.at,
        category=work.tap.category,
        media=work.tap.media,
    )
    later_place = dataclasses.replace(
        work.place, stop_id=ride_end.stop_id, direction=Direction.EXIT
    )
    leg = work.ended(journey.legs[index])
    before_vnd = journey.fare_vnd
    legs = [leg, *journey.legs[index + 1 :]]
    journey.repair_legs(first_index=index, legs=legs, at=work.tap.at)
    work.paid_from_purse(journey)
    reprice(work, journey, before_vnd)
    # The later exit may start a journey of its own; its id must differ from any journey
    # its tap already began (it may have arrived first and waited for this entry).
    seed = uuid5(journey.id, f"split:{journey.repairs}")
    return [journey, *metro_exit(work.again(later, later_place, seed=seed))]
