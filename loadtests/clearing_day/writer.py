"""Writes the planned day through the product's aggregates: accounts and transfer records on
the ledger, journeys priced by the fare engine and charged by the product's charger, parking
sessions with their holds, each group of riders saved in a few large transactions.

Each group's movements are applied in time order, and the ledger's events carry the time of
the tap (or the parking action) they come from, so the cycle's cut-off finds the day's end in
them. The ledger's `at` runs through the day once per group: a group is saved after its day.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from loadtests.clearing_day.ledger_book import LedgerBook
from loadtests.clearing_day.plan import (
    HANOI,
    PARKING_HOUR_VND,
    TOP_UP_VND,
    DaySize,
    JourneyPlan,
    ParkingPlan,
    Ride,
    RiderPlan,
    rider_plan,
)
from parking.domain.session import ParkingSession, rest_debit_id, start_hold_id
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Debit, PlaceHold, PostHold, TopUp
from ticketing.fares.engine import FareEngine
from ticketing.fares.journey import Fare
from ticketing.fares.journey_fares import max_fare, price, service_day
from ticketing.journeys.application.charges import DeferredCharger
from ticketing.journeys.application.fare_steps import record_fare
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import PaidFrom
from ticketing.journeys.domain.leg import Leg
from ticketing.shared.domain.invariants import require

# Riders whose day is written before their aggregates are saved: a few tens of thousands of
# events in memory, in one transaction per application.
RIDERS_PER_GROUP = 1_000
LOTS = {
    "hk-ly-thai-to": ("hanoi-iparking", "hanoi-iparking"),
    "hk-trang-thi": ("hanoi-iparking", "hanoi-iparking"),
    "dd-ton-duc-thang": ("dong-da-parking", "hanoi-dong-da"),
}  # lot -> (operator, rate table), as parking/lots/hanoi-default.json has them
PARKING_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Stores:
    """The product's applications the day is written into."""

    ledger: Ledger
    journeys: Application[UUID]
    parking: Application[UUID]
    fares: FareEngine


@dataclass
class Written:
    riders: int = 0
    journeys: int = 0
    sessions: int = 0
    top_ups: int = 0
    ledger_aggregates: int = 0
    movements: int = 0  # the ledger's money events
    charged_vnd: int = 0  # what riders paid for rides and parking: the day's revenue


class CachedFares:
    """The fare engine's answers by journey shape: the day has a few hundred shapes."""

    def __init__(self, engine: FareEngine) -> None:
        self.engine = engine
        self.standalone = StandaloneFares(engine)
        self._fares: dict[tuple[Any, ...], Fare] = {}

    def price(self, journey: Journey) -> Fare:
        key = ("price", journey.rider_category, journey.fare_media, *_shapes(journey.legs))
        if key not in self._fares:
            self._fares[key] = price(
                self.engine, journey.legs, journey.rider_category, journey.fare_media
            )
        return self._fares[key]

    def max_fare(self, journey: Journey) -> Fare:
        key = ("max", journey.rider_category, journey.fare_media, *_shapes(journey.legs))
        if key not in self._fares:
            self._fares[key] = max_fare(
                self.engine, journey.legs, journey.rider_category, journey.fare_media
            )
        return self._fares[key]


def _shapes(legs: Sequence[Leg]) -> Iterator[tuple[str | None, ...]]:
    for leg in legs:
        yield (leg.mode, leg.route_id, leg.from_stop_id, leg.to_stop_id)


Step = tuple[datetime, int, Callable[[], None]]


@dataclass
class Group:
    """One group of riders' day, applied in time order."""

    stores: Stores
    fares: CachedFares
    book: LedgerBook = field(default_factory=LedgerBook)
    journeys: list[Journey] = field(default_factory=list)
    sessions: list[ParkingSession] = field(default_factory=list)
    _steps: list[Step] = field(default_factory=list)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def add(self, at: datetime, step: Callable[[], None]) -> None:
        self._steps.append((at, next(self._seq), step))

    def run(self) -> None:
        for _, _, step in sorted(self._steps, key=lambda s: (s[0], s[1])):
            step()
        self._steps = []

    def save(self) -> int:
        ledger_aggregates = self.book.take()
        save_events(self.stores.ledger, ledger_aggregates)
        save_events(self.stores.journeys, self.journeys)
        save_events(self.stores.parking, self.sessions)
        return len(ledger_aggregates)

    def rider(self, plan: RiderPlan, opened_at: datetime) -> None:
        account = self.book.open(0, opened_at)
        if plan.top_up_at is not None:
            top_up = TopUp(account.id, TOP_UP_VND, f"day-pay-{plan.index}")
            self.add(plan.top_up_at, partial(self.book.apply, top_up, _utc(plan.top_up_at)))
        for journey in plan.journeys:
            self._journey(plan, account.id, journey)
        for session in plan.sessions:
            self._session(account.id, session)

    def _journey(self, rider: RiderPlan, account_id: UUID, plan: JourneyPlan) -> None:
        holder: list[Journey] = []
        rides = len(plan.rides)
        for index, ride in enumerate(plan.rides):
            self.add(ride.departure, partial(self._enter, rider, account_id, holder, index, ride))
            self.add(ride.arrival, partial(self._exit, holder, index, ride, rides))

    def _enter(
        self, rider: RiderPlan, account_id: UUID, holder: list[Journey], index: int, ride: Ride
    ) -> None:
        leg = _leg(ride, self.stores.fares)
        at = ride.departure
        if index == 0:
            journey = Journey.start(
                first_tap_id=ride.entry_tap,
                account_id=account_id,
                paid_from=PaidFrom.ACCOUNT,
                rider_category=rider.category,
                fare_media=rider.medium,
                service_day=service_day(at, HANOI).isoformat(),
                leg=leg,
                at=at,
            )
            holder.append(journey)
        else:
            journey = holder[0]
            journey.add_leg(leg=leg, at=at)
        if ride.mode == "metro":
            most = self.fares.max_fare(journey)
            charger = DeferredCharger(self.stores.ledger)
            charger.hold(journey, most.total_vnd - journey.charged_vnd, f"hold:{index}", at)
            self._ledger(charger, at)

    def _exit(self, holder: list[Journey], index: int, ride: Ride, rides: int) -> None:
        journey = holder[0]
        at = ride.arrival
        last = journey.last_leg
        journey.end_leg(
            leg=last.ended(stop_id=ride.to_stop_id, at=at, tap=str(ride.exit_tap)), at=at
        )
        fare = self.fares.price(journey)
        record_fare(journey, fare, at, self.fares.standalone)
        charger = DeferredCharger(self.stores.ledger)
        charger.settle(journey, fare.total_vnd, f"leg:{index}", at)
        self._ledger(charger, at)
        if index == rides - 1:
            self.journeys.append(journey)

    def _ledger(self, charger: DeferredCharger, at: datetime) -> None:
        for command in charger.commands:
            self.book.apply(command, _utc(at))

    def _session(self, account_id: UUID, plan: ParkingPlan) -> None:
        holder: list[ParkingSession] = []
        self.add(plan.started_at, lambda: holder.append(self._park(account_id, plan)))
        self.add(plan.ended_at, lambda: self._leave(holder[0], plan))

    def _park(self, account_id: UUID, plan: ParkingPlan) -> ParkingSession:
        operator_id, table_id = LOTS[plan.lot_id]
        session_id = ParkingSession.create_id(plan.start_id)
        hold_id = start_hold_id(session_id)
        held_vnd = plan.paid_hours * PARKING_HOUR_VND[plan.vehicle_class]
        at = plan.started_at
        self.book.apply(
            PlaceHold(account_id, hold_id, held_vnd, PARKING_TTL_S, f"parking {plan.lot_id}"),
            _utc(at),
        )
        return ParkingSession(
            start_id=plan.start_id,
            fingerprint=hashlib.sha256(plan.start_id.encode()).hexdigest(),
            lot_id=plan.lot_id,
            operator_id=operator_id,
            table_id=table_id,
            plate=plate_compact(plan.plate),
            plate_display=plan.plate,
            vehicle_class=plan.vehicle_class,
            account_id=account_id,
            started_by="app",
            started_at=at,
            paid_until=at + timedelta(hours=plan.paid_hours),
            ends_by=at + timedelta(hours=24),
            hold_id=hold_id,
            held_vnd=held_vnd,
        )

    def _leave(self, session: ParkingSession, plan: ParkingPlan) -> None:
        at = plan.ended_at
        hours = -(-int((plan.ended_at - plan.started_at).total_seconds()) // 3600)
        fee_vnd = max(1, hours) * PARKING_HOUR_VND[plan.vehicle_class]
        session.end(f"end-{plan.start_id}", "app", at, fee_vnd, [])
        posted_vnd = min(fee_vnd, session.held_vnd)
        self.book.apply(
            PostHold(session.account_id, start_hold_id(session.id), posted_vnd), _utc(at)
        )
        rest_vnd = fee_vnd - posted_vnd
        if rest_vnd > 0:
            debit = Debit(session.account_id, rest_debit_id(session.id), rest_vnd, "parking rest")
            self.book.apply(debit, _utc(at))
        session.settle(posted_vnd, rest_vnd, 0, at)
        self.sessions.append(session)


def write_day(
    stores: Stores, size: DaySize, day: date, progress: Callable[[Written], None] | None = None
) -> Written:
    """Writes every rider's day, a group at a time; `progress` hears after each group."""
    written = Written()
    fares = CachedFares(stores.fares)
    opened_at = _utc(datetime.combine(day, datetime.min.time(), HANOI) - timedelta(days=30))
    for first in range(0, size.riders, RIDERS_PER_GROUP):
        group = Group(stores, fares)
        for rider in range(first, min(size.riders, first + RIDERS_PER_GROUP)):
            plan = rider_plan(size, day, rider)
            group.rider(plan, opened_at)
            written.riders += 1
            written.journeys += len(plan.journeys)
            written.sessions += len(plan.sessions)
            written.top_ups += plan.top_up_at is not None
        group.run()
        written.ledger_aggregates += group.save()
        written.movements += group.book.movements
        written.charged_vnd += group.book.charged_vnd
        if progress is not None:
            progress(written)
    return written


def plate_compact(display: str) -> str:
    return "".join(ch for ch in display if ch.isalnum()).upper()


def _leg(ride: Ride, fares: FareEngine) -> Leg:
    return Leg(
        mode=str(ride.mode),
        network_id=fares.feed.route_networks.get(ride.route_id, ""),
        route_id=ride.route_id,
        from_stop_id=ride.from_stop_id,
        to_stop_id=None,
        departure=ride.departure,
        arrival=None,
        entry_tap=str(ride.entry_tap),
        exit_tap=None,
    )


def save_events(app: Application[UUID], aggregates: Iterable[Any]) -> None:
    """Stores the aggregates' new events as the application's recorder would (the same rows:
    id, version, topic and the state its mapper encodes), but with PostgreSQL's COPY: several
    times faster than the recorder's inserts, one statement per row. The generator is the only
    writer, so the table lock the recorder takes to order concurrent commits is not needed.
    The events are stored in the order they happened (their `at`), as the product commits them;
    an aggregate's events keep their order (the sort is stable, and their times never fall)."""
    events = [event for aggregate in aggregates for event in aggregate.collect_events()]
    recorder = app.recorder
    require(isinstance(recorder, PostgresAggregateRecorder), "the day is written to PostgreSQL")
    assert isinstance(recorder, PostgresAggregateRecorder)
    statement = SQL(
        "COPY {schema}.{table} (originator_id, originator_version, topic, state) FROM STDIN"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with (
        recorder.datastore.transaction(commit=True) as cursor,
        cursor.copy(statement) as copy,
    ):
        for event in sorted(events, key=lambda e: getattr(e, "at", e.timestamp)):
            stored = app.mapper.to_stored_event(event)
            copy.write_row(
                (stored.originator_id, stored.originator_version, stored.topic, stored.state)
            )


def _utc(at: datetime) -> datetime:
    # The ledger keeps its times in UTC (`Ledger.now`).
    return at.astimezone(UTC)
