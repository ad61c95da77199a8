"""A bus tap: on the route of the rider's open bus leg, within a ride's length of its boarding,
it is that leg's alighting, else a boarding (a tap hours later on the same route is the next ride,
paid as one, not the end of a ride nobody tapped off). A tap uploaded late among a ride's taps is
paired again with them (`tap_repairs`); a tap within a ride's length of a leg left open (by a
newer tap, or at day end) alights it, unless the rider tapped elsewhere between the two (then it
is a new boarding); a tap earlier than the boarding of a leg left open is that leg's real
boarding."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ticketing.journeys.application.leg_ends import complete, end
from ticketing.journeys.application.tap_repairs import repair, run_around
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus


def bus_tap(work: TapWork) -> list[Journey]:
    journey = work.open()
    repaired = journey if journey is not None else work.journey(work.book.last_ended)
    first = run_around(work, repaired)
    if repaired is not None and first is not None:
        return repair(work, repaired, first)
    if journey is not None and work.waits_for_exit(journey) and _within_a_ride(work, journey):
        return end(work, journey)
    left = work.journeys(work.book.correctable)
    for candidate in reversed(left):
        # A leg left open (a newer tap came first, or the day ended) alights here when
        # this tap came within a ride's length of its boarding and the rider tapped nothing
        # between the two.
        if (
            work.waits_for_exit(candidate)
            and _within_a_ride(work, candidate)
            and not _tapped_between(work, candidate, [journey, *left])
        ):
            return end(work, candidate)
    for earlier in [journey, *reversed(left)]:
        if earlier is not None and _boarded_later(work, earlier):
            return _board_late(work, earlier)
    started = work.join_or_start(work.leg(entry=True))
    work.point(open_journey=str(started.id))
    return [started]


def _within_a_ride(work: TapWork, journey: Journey) -> bool:
    departure = journey.last_leg.departure
    return departure is not None and work.tap.at - departure <= timedelta(seconds=BUS_RIDE_MAX_S)


def _tapped_between(work: TapWork, candidate: Journey, known: list[Journey | None]) -> bool:
    """Whether the rider tapped anywhere between the boarding of the candidate's open leg and
    this tap. A rider who boarded another bus (or entered the metro) since has left that bus:
    this tap is a new boarding, else every other boarding of a rider switching routes without
    tapping off would ride free as the alighting of the one before."""
    boarded = work.tap.at if candidate.last_leg.departure is None else candidate.last_leg.departure
    for journey in known:
        if journey is None:
            continue
        legs = journey.legs[:-1] if journey.id == candidate.id else journey.legs
        for leg in legs:
            for moment in (leg.departure, leg.arrival):
                if moment is not None and boarded < moment < work.tap.at:
                    return True
    return False


def _board_late(work: TapWork, journey: Journey) -> list[Journey]:
    # The open leg's only tap was its alighting; this earlier tap is its boarding.
    last = journey.last_leg
    leg = replace(
        last,
        from_stop_id=work.place.stop_id,
        to_stop_id=last.from_stop_id,
        departure=work.tap.at,
        arrival=last.departure,
        entry_tap=work.tap.id,
        exit_tap=last.entry_tap,
    )
    return complete(work, journey, leg)


def _boarded_later(work: TapWork, journey: Journey) -> bool:
    """Whether the journey's open bus leg on this route began after this tap, soon enough
    that this tap is its boarding."""
    last = journey.last_leg
    later = last.departure
    if not (
        journey.status in (JourneyStatus.OPEN, JourneyStatus.CLOSED)
        and last.mode == "bus"
        and last.route_id == work.place.route_id
        and last.entry_tap is not None
        and last.exit_tap is None
        and later is not None
        and later > work.tap.at
    ):
        return False
    return later - work.tap.at <= timedelta(seconds=BUS_RIDE_MAX_S)
