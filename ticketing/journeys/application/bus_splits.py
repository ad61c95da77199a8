"""Bus taps uploaded late among taps already paired: the taps after them are paired again in
the order they happened.

Taps reach the backend in upload order, each bus's validator (and each metro gate) uploading on
its own schedule. The pairing of a bus tap depends on the rider's tap just before it in time
(the boarding of a ride on its route, with nothing between, is what it alights), so a tap
uploaded late changes how every later tap pairs. When the rider's journeys hold bus legs with
taps later than the one being applied, and this tap happened during the first of them, or may
be the boarding that the first one's boarding alights (same route, within `BUS_RIDE_MAX_S`),
those legs are undone (a ride this tap happened during is left open at its boarding; rides all
later are taken off, except a journey's first boarding, which names the journey), and this tap
and the undone ones are applied again one by one in the order they happened, as an in-order
upload would have applied them. A tap before a ride on another route, or hours before it,
changes nothing of it and undoes nothing. Each journey's charge is then brought to its new fare
(debits and refunds under repair steps never used before), so what the rider pays for the day
does not depend on the upload order, and applying a tap again changes nothing (`retaps`).

Only bus legs of account-paid journeys are undone: a card purse paid each tap at the validator,
and a metro leg holds a hold of its own; a tap uploaded late before them is paired by the rules
of `bus_taps` and `tap_repairs` alone. A metro gate tap uploaded late that happened during a bus
ride already paired undoes it the same way: the rider had left that bus. So does one that
happened between a journey's legs, for the bus rides after it there: they joined that journey
as its transfers only because the gate's tap was not yet known (the trip it begins or ends
takes its own place among them when they are applied again).

A bus tap uploaded late that happened between a bus alighting and the metro entry a journey
priced as its transfer was the rider's next move: the bus-to-metro discount needs the entry to
follow the alighting. The metro trip and the legs after it move to a journey of their own,
priced without the transfer (an open trip's hold voided and placed again on it). So do they
for a bus tap during that ride or just before it on its route (the ride is paired again), and
for a metro gate's tap during it (the rider had left the bus): the ride's legs are then undone
as above, and the trip joins them again only as a transfer the taps in order allow.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import uuid5

from ticketing.journeys.application.fare_steps import reprice
from ticketing.journeys.application.tap_work import BUS_RIDE_MAX_S, TapMoment, TapWork
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom
from ticketing.journeys.domain.leg import Leg, LegEnd
from ticketing.taps.domain.validator import Direction

# The bus pairing rule (`bus_taps.bus_tap`), passed in: it calls this module first.
ApplyTap = Callable[[TapWork], list[Journey]]


@dataclasses.dataclass(frozen=True)
class Undo:
    """A journey's bus legs from `index` on, to be applied again after this tap; `keep` says
    whether the boarding of the leg at `index` stays (it came before this tap, or it is the
    journey's first tap)."""

    journey: Journey
    index: int
    keep: bool


def known_journeys(work: TapWork, journeys: list[Journey | None]) -> list[Journey]:
    """`journeys` and the rider's journeys the book points at (`TapWork.known`), each once."""
    found = [*journeys, *work.known()]
    unique = {journey.id: journey for journey in found if journey is not None}
    return list(unique.values())


def tapped_between(
    known: list[Journey], legs: list[Leg], at: datetime, *, same_route: bool = False
) -> bool:
    """Whether the rider tapped on another route (or in the metro) strictly between the
    earliest and the latest of `legs`' taps and `at`, in the journeys known; with `same_route`,
    a tap on the legs' route counts too. Without it, taps on the same route are the same
    ride's or a neighbour's, which `tap_repairs` pairs in time order."""
    route_id = legs[0].route_id
    moments = [at, *(m for leg in legs for m in (leg.departure, leg.arrival) if m is not None)]
    low, high = min(moments), max(moments)
    for journey in known:
        for other in journey.legs:
            if not same_route and other.mode == "bus" and other.route_id == route_id:
                continue
            for end in (other.start, other.end):
                if end is not None and low < end.at < high:
                    return True
    return False


@dataclasses.dataclass(frozen=True)
class Undos:
    """What a tap uploaded late undoes: the journeys' bus legs to apply again after it, and
    the first journey whose legs it would undo but for a metro trip among them, with that
    trip's index (the trip, and the legs after it, move to a journey of their own first,
    `break_transfer`, which the rides join again only as a transfer the taps in order allow)."""

    rides: list[Undo]
    trip_in_the_way: tuple[Journey, int] | None


def undos_after(work: TapWork, known: list[Journey], *, bus: bool) -> Undos:
    """The bus legs of the rider's journeys holding a tap later than this one, to be applied
    again after it: a ride this tap happened during, and for a bus tap the rides after one it
    may be the boarding of. A metro gate's tap undoes a ride it happened during, and the rides
    after it that a journey took as transfers across it. A journey with a metro trip among
    those legs is left out: its trip moves off first (`Undos.trip_in_the_way`)."""
    rides: list[Undo] = []
    in_the_way = None
    for journey in known:
        undo = _undo_of(work, journey, bus=bus)
        if undo is None:
            continue
        legs = journey.legs
        trip = next((i for i in range(undo.index, len(legs)) if legs[i].mode != "bus"), None)
        if trip is None:
            rides.append(undo)
        elif in_the_way is None:
            in_the_way = (journey, trip)  # after the first leg undone: that one is a bus ride
    return Undos(rides, in_the_way)


def _undo_of(work: TapWork, journey: Journey, *, bus: bool) -> Undo | None:
    """The undo this tap makes of the journey's legs from the first with a later tap, as
    `undos_after` says, whatever legs follow them; None when it makes none."""
    at = work.tap.at
    if (
        journey.status not in (JourneyStatus.OPEN, JourneyStatus.ENDED)
        # A card purse paid each tap at the validator; its pairing is left as it is.
        or journey.paid_from is not PaidFrom.ACCOUNT
        or not work.same_payment(journey)
    ):
        return None
    legs = journey.legs
    index = next((i for i, leg in enumerate(legs) if any(e.at > at for e in _ends(leg))), None)
    if index is None or legs[index].mode != "bus":
        return None
    start = legs[index].start
    if start is None:
        return None  # a bus leg begins at its boarding; a leg with none is no ride to undo
    during = start.at < at
    # A gate's tap between a journey's legs was the rider's move between them: the rides
    # after it joined that journey as its transfers only because it came late.
    between = not bus and index > 0
    if not (during or between or (bus and _may_board_before(work, legs[index], start))):
        return None
    # A journey's first boarding stays: the journey's id names it.
    undo = Undo(journey, index, keep=during or index == 0)
    return undo if _again(undo) else None


def undo_and_apply(
    work: TapWork, undos: list[Undo], bus_tap: ApplyTap, this_tap: ApplyTap | None = None
) -> list[Journey]:
    """Undoes each journey's legs as `undos` say, then applies this tap (with `this_tap`, by
    default `bus_tap`: a metro gate's tap undoes bus rides too) and, with `bus_tap`, the taps
    undone, all in the order they happened."""
    replays: list[tuple[LegEnd, Leg | None, Journey | None, int]] = [
        (LegEnd(work.tap.at, work.tap.id, work.place.stop_id), None, None, 0)
    ]
    for undo in undos:
        replays += [(end, leg, undo.journey, n) for n, (end, leg) in enumerate(_again(undo))]
        _undo(work, undo)
    changed = [undo.journey for undo in undos]
    for end, leg, journey, number in sorted(replays, key=lambda replay: replay[0]):
        if leg is None or journey is None:
            changed += (this_tap or bus_tap)(work)
            continue
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
    return list({journey.id: journey for journey in changed}.values())


def _may_board_before(work: TapWork, leg: Leg, boarding: LegEnd) -> bool:
    """Whether this bus tap, made before the boarding of `leg`, may be a boarding the other
    alights (same route, within a ride's length), which pairs every later tap differently.
    Any other tap before a ride changes nothing of it: the rider was not on that bus yet."""
    soon = boarding.at - work.tap.at <= timedelta(seconds=BUS_RIDE_MAX_S)
    return leg.route_id == work.place.route_id and soon


def _ends(leg: Leg) -> list[LegEnd]:
    return [end for end in (leg.start, leg.end) if end is not None]


def _again(undo: Undo) -> list[tuple[LegEnd, Leg]]:
    """The taps an undo takes off its journey, in the order they happened."""
    legs = undo.journey.legs[undo.index :]
    kept = legs[0].start if undo.keep else None
    return sorted((end, leg) for leg in legs for end in _ends(leg) if end != kept)


def _undo(work: TapWork, undo: Undo) -> None:
    """Takes the undo's taps off its journey, charges the journey what its complete legs now
    cost, and points the book at it as an in-order upload would have left it."""
    journey, index = undo.journey, undo.index
    if undo.keep:
        boarded = journey.legs[index]
        first, legs = (
            index,
            [dataclasses.replace(boarded, to_stop_id=None, arrival=None, exit_tap=None)],
        )
    else:
        first, legs = index - 1, [journey.legs[index - 1]]
    before_vnd = journey.fare_vnd
    journey.repair_legs(first_index=first, legs=legs, at=work.tap.at)
    if journey.complete or len(journey.legs) > 1:
        reprice(work, journey, before_vnd)
    else:
        # No leg is complete: nothing is due until the boarding ends, or the day closes.
        work.charger.adjust(journey, 0, f"repair:{journey.repairs}", work.tap.at)
    book, key = work.book, str(journey.id)
    correctable = [k for k in book.correctable if k != key]
    if not journey.complete:
        last_ended = None if book.last_ended == key else book.last_ended
        work.point(open_journey=key, last_ended=last_ended, correctable=correctable)
        return
    open_journey = None if book.open_journey == key else book.open_journey
    last_ended = _later_ended(work, journey)
    work.point(
        open_journey=open_journey,
        last_ended=last_ended,
        correctable=correctable if last_ended == key else [*correctable, key],
    )


def _later_ended(work: TapWork, journey: Journey) -> str:
    """The journey of the two that ended later: the book's last ended one, or `journey`."""
    last = work.journey(work.book.last_ended)
    ends = journey.last_leg.arrival
    if last is None or last.last_leg.arrival is None or ends is None:
        return str(journey.id)
    return str(last.id) if last.last_leg.arrival > ends else str(journey.id)


def transfer_broken(work: TapWork, known: list[Journey]) -> tuple[Journey, int] | None:
    """The journey and the index of its metro leg that this bus tap, uploaded late, happened
    just before, after the bus ride the journey priced that trip as a transfer from: the rider
    boarded a bus between, so the trip is no transfer and is priced on its own."""
    at = work.tap.at

    def breaks(ride: Leg, boarded: datetime) -> bool:
        # After the alighting, or during the ride (its legs are then undone, and the trip
        # joins them again when no tap came between), or a boarding the ride's boarding may
        # alight (the ride is paired again, its alighting then boards). After a metro trip
        # the journey went on with another: the bus ride between begins the next journey,
        # which may take that trip as its transfer.
        if ride.mode == "metro":
            return boarded < at
        return boarded < at or (
            ride.start is not None
            and _may_board_before(work, ride, ride.start)
            # A tap of the rider's between (a metro trip) keeps the two apart.
            and not tapped_between(known, [ride], at)
        )

    return _transfer_before(work, known, breaks)


def transfer_left(work: TapWork, known: list[Journey]) -> tuple[Journey, int] | None:
    """The journey and the index of its metro leg priced as a transfer from a bus ride that
    this metro gate tap, uploaded late, happened during: the rider had left that bus, so its
    alighting boarded another ride, and the trip after it is no transfer."""
    at = work.tap.at

    def leaves(ride: Leg, boarded: datetime) -> bool:
        return ride.mode == "bus" and ride.arrival is not None and boarded < at < ride.arrival

    return _transfer_before(work, known, leaves)


def _transfer_before(
    work: TapWork, known: list[Journey], breaks: Callable[[Leg, datetime], bool]
) -> tuple[Journey, int] | None:
    """The first account-paid journey's metro leg priced as a transfer from the bus ride
    before it, entered after this tap, whose transfer `breaks` says this tap undoes."""
    at = work.tap.at
    for journey in known:
        if (
            journey.status not in (JourneyStatus.ENDED, JourneyStatus.OPEN)
            or journey.paid_from is not PaidFrom.ACCOUNT
            or not work.same_payment(journey)
        ):
            continue
        for index, (ride, trip) in enumerate(itertools.pairwise(journey.legs), start=1):
            boarded, entered = ride.departure, trip.departure
            if (
                trip.mode == "metro"
                and boarded is not None
                and entered is not None
                and at < entered
                and breaks(ride, boarded)
            ):
                return journey, index
    return None


def break_transfer(work: TapWork, journey: Journey, index: int, bus_tap: ApplyTap) -> list[Journey]:
    """Moves the journey's legs from `index` (a metro trip) on to a journey of their own,
    prices both again (the first is refunded what the moved legs cost, the second charged
    them without the transfer), then applies this tap."""
    moved = journey.legs[index:]
    before_vnd = journey.fare_vnd
    # The metro entry's hold (a trip not yet ended) goes with the trip: placed again on it.
    work.charger.void(journey, work.tap.at)
    journey.repair_legs(first_index=index - 1, legs=[journey.legs[index - 1]], at=work.tap.at)
    reprice(work, journey, before_vnd)
    trip = Journey.start(
        first_tap_id=uuid5(journey.id, f"transfer:{journey.repairs}"),
        account_id=journey.account_id,
        paid_from=journey.paid_from,
        rider_category=journey.rider_category,
        fare_media=journey.fare_media,
        service_day=journey.service_day,
        leg=moved[0],
        at=work.tap.at,
    )
    work.made[trip.id] = trip
    if len(moved) > 1:
        trip.repair_legs(first_index=0, legs=moved, at=work.tap.at)
    reprice(work, trip, None)
    key = str(trip.id)
    if not trip.complete:
        if trip.last_leg.mode == "metro":
            most = work.pricing.max_fare(trip)
            step = f"hold:{len(trip.legs) - 1}"
            work.charger.hold(trip, most.total_vnd - trip.charged_vnd, step, work.tap.at)
        # (Else the trip's journey went on to a bus ride, which holds nothing until it ends.)
        book = work.book
        open_journey = key if book.open_journey in (None, str(journey.id)) else book.open_journey
        work.point(open_journey=open_journey)
    else:
        work.point(last_ended=_later_ended(work, trip))
        if key not in work.book.correctable:
            work.point(correctable=[*work.book.correctable, key])
    _keep_known(work, journey)
    _keep_known(work, trip)
    return [journey, trip, *bus_tap(work)]


def _keep_known(work: TapWork, journey: Journey) -> None:
    """Keeps the journey among those the book points at, so the taps applied next (this one
    and any applied again after it) may still pair with its legs, and see its taps between."""
    book, key = work.book, str(journey.id)
    if key not in (book.open_journey, book.last_ended) and key not in book.correctable:
        work.point(correctable=[*book.correctable, key])
