"""A bus tap: on the route of the rider's open bus leg, within a ride's length of its boarding,
it is that leg's alighting, else a boarding (a tap hours later on the same route is the next ride,
paid as one, not the end of a ride nobody tapped off). A bus ride without a tap-off ends at the
rider's next tap on another route or in the metro (an exit whose entry never came included),
and is charged its route's fare; the bus-to-metro discount needs a tap-off.

A tap uploaded late is applied as if every tap had come in the order it happened: bus legs of
the rider's with later taps are undone and applied again after it (`bus_splits`). Then a tap
with no tap at all of the rider's between it and a boarding left open (by a newer tap, or at
day end) on its route, within a ride's length, alights it; a tap among a run of taps on its
route is paired again with them (`tap_repairs`); a tap earlier than the boarding of a leg left
open is that leg's real boarding. No two taps on a route pair as one ride across a tap of the
rider's on another route or in the metro between them (the rider had left that bus)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from ticketing.journeys.application.bus_splits import (
    break_transfer,
    known_journeys,
    tapped_between,
    transfer_broken,
    undo_and_apply,
    undos_after,
)
from ticketing.journeys.application.leg_ends import complete, end
from ticketing.journeys.application.tap_repairs import repair, run_around
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus


def bus_tap(work: TapWork) -> list[Journey]:
    journey = work.open()
    left = work.journeys(work.book.correctable)
    known = known_journeys(work, [journey, *left])
    undos = undos_after(work, known, bus=True)
    if undos.rides:
        return undo_and_apply(work, undos.rides, bus_tap)
    broken = transfer_broken(work, known) or undos.trip_in_the_way
    if broken is not None:
        return break_transfer(work, *broken, bus_tap)
    for candidate in [journey, *reversed(left)]:
        # A boarding left open with no tap at all between it and this one: in the order the
        # taps happened this one came next, and alights it.
        if (
            candidate is not None
            and work.waits_for_exit(candidate)
            and _within_a_ride(work, candidate)
            and not tapped_between(known, [candidate.last_leg], work.tap.at, same_route=True)
        ):
            return end(work, candidate)
    last_ended = work.journey(work.book.last_ended)
    repaired = _run_repair(work, known, [journey if journey is not None else last_ended])
    if repaired is not None:
        return repaired
    for candidate in [journey, *reversed(left)]:
        # The open leg (or one left open: a newer tap came first, or the day ended) alights
        # here when this tap came within a ride's length of its boarding and the rider
        # tapped nothing between the two.
        if (
            candidate is not None
            and work.waits_for_exit(candidate)
            and _within_a_ride(work, candidate)
            and not tapped_between(known, [candidate.last_leg], work.tap.at)
        ):
            return end(work, candidate)
    # The last ended journey, or one left open by a boarding of another route, may hold the
    # run of taps this one belongs among.
    repaired = _run_repair(work, known, [last_ended, *reversed(left)])
    if repaired is not None:
        return repaired
    for earlier in [journey, *reversed(left)]:
        if (
            earlier is not None
            and _boarded_later(work, earlier)
            and not tapped_between(known, [earlier.last_leg], work.tap.at)
        ):
            return _board_late(work, earlier)
    started = work.join_or_start(work.leg(entry=True))
    work.point(open_journey=str(started.id))
    return [started]


def _run_repair(
    work: TapWork, known: list[Journey], journeys: list[Journey | None]
) -> list[Journey] | None:
    """Pairs this tap again with the first of `journeys` whose last legs on its route are a
    run of taps it happened among (`tap_repairs`); None when none is."""
    for journey in journeys:
        first = run_around(work, journey)
        if (
            journey is not None
            and first is not None
            # A tap of another ride among the run's taps splits them: they are not one run.
            and not tapped_between(known, journey.legs[first:], work.tap.at)
        ):
            return repair(work, journey, first)
    return None


def _within_a_ride(work: TapWork, journey: Journey) -> bool:
    departure = journey.last_leg.departure
    return departure is not None and work.tap.at - departure <= timedelta(seconds=BUS_RIDE_MAX_S)


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
