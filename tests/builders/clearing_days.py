"""Random days of money for clearing's property tests, made through the product: a rider's
top-ups, perhaps a metro day pass, rides tapped on a phone (bus, metro, bus then metro within
the transfer window) and uploaded as tapped or late in any validator order, rides paid from a
smart card's purse (metro, with the refund of the dearest fare taken at the entry, and bus), and
parking sessions with credits.

A day is a `DayPlan` (hypothesis draws it); `live(world, plan)` makes it happen on a
`ParkingWorld` and returns the top-ups it paid in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import strategies as st

from hardware.emulator.card import EmulatedCard
from hardware.tlc1.records import EventKind
from parking.domain.session import EndedBy
from tests.builders.journeys import BUS_01, GATE_IN_01, GATE_IN_09, GATE_OUT_02, GATE_OUT_12
from tests.builders.parking import MORNING, ParkingWorld
from tests.builders.purse_refunds import (
    DEAREST_TO_LA_THANH_VND,
    MAX_FROM_CAT_LINH_VND,
    ROUTE_01_FARE_VND,
    decide,
)
from tests.tap_media import CARD_SERIAL, personalised_card
from ticketing.accounts.domain.commands import TopUp
from ticketing.taps.application.ingestion import CardTap, QrTap

RIDE_KINDS = ("bus", "metro", "bus+metro")
# Phone rides start at 08:00 (and are uploaded by 15:10), card rides at 15:30, parking at 18:00
# on the Dong Da lot (cars, open until 22:00): the clock only moves forward.
CARD_RIDES_FROM_MIN = 7 * 60 + 30
PARKING_FROM = MORNING + timedelta(hours=10)
CARD_PURSE_VND = 50_000
DAY_PASS = "metro_2a_day"
DAY_PASS_VND = 30_000
CODE_AGE_S = 2


@dataclass(frozen=True)
class Ride:
    kind: str
    gap_min: int  # after the previous ride ended (under an hour: the same journey)
    far: bool  # the metro to Yên Nghĩa, else to La Thành


@dataclass(frozen=True)
class CardRide:
    metro: bool  # else a bus boarding
    gap_min: int


@dataclass(frozen=True)
class Stay:
    paid_h: int
    stay_min: int
    credit_vnd: int


@dataclass(frozen=True)
class DayPlan:
    top_ups_vnd: tuple[int, ...]
    day_pass: bool  # a metro 2A day pass bought on the account before the first ride
    rides: tuple[Ride, ...]
    uploads_late: bool  # each validator uploads its taps at the end of the rides, not at once
    validator_order: tuple[int, ...]  # the late uploads' order
    card_rides: tuple[CardRide, ...]
    stays: tuple[Stay, ...]


VALIDATORS = (BUS_01, GATE_IN_01, GATE_IN_09, GATE_OUT_02, GATE_OUT_12)

days = st.builds(
    DayPlan,
    top_ups_vnd=st.lists(st.integers(1, 50).map(lambda k: k * 1_000), max_size=3).map(tuple),
    day_pass=st.booleans(),
    rides=st.lists(
        st.builds(Ride, st.sampled_from(RIDE_KINDS), st.integers(0, 60), st.booleans()),
        max_size=4,
    ).map(tuple),
    uploads_late=st.booleans(),
    validator_order=st.permutations(VALIDATORS).map(tuple),
    card_rides=st.lists(st.builds(CardRide, st.booleans(), st.integers(0, 30)), max_size=2).map(
        tuple
    ),
    stays=st.lists(
        st.builds(Stay, st.integers(1, 2), st.integers(30, 90), st.sampled_from([0, 2_000, 5_000])),
        max_size=2,
    ).map(tuple),
)


@dataclass
class _Taps:
    world: ParkingWorld
    late: bool
    counter: int = 0

    def __post_init__(self) -> None:
        self.outbox: dict[int, list[QrTap]] = {}

    def tap(self, validator_id: int, at: datetime) -> None:
        self.counter += 1
        batch = self.outbox.setdefault(validator_id, [])
        code = self.world.phone.code(int(at.timestamp()) - CODE_AGE_S, self.counter)
        tap = QrTap(len(batch) + 1, at, "accepted", "accepted", code)
        batch.append(tap)
        if not self.late:
            self.world.clock.now = at
            self._upload(validator_id, [tap])

    def upload_late(self, order: tuple[int, ...], at: datetime) -> None:
        self.world.clock.now = at
        for validator_id in order:
            if self.late and validator_id in self.outbox:
                self._upload(validator_id, self.outbox[validator_id])

    def _upload(self, validator_id: int, taps: list[QrTap]) -> None:
        results = self.world.container.taps.ingest_batch(validator_id, taps)
        assert all(r.status == "accepted" for r in results), results
        self.world.container.catch_up()


def live(world: ParkingWorld, plan: DayPlan) -> int:
    """Makes the day happen; the top-ups it paid in (VND)."""
    world.clock.now = MORNING - timedelta(hours=1)
    for n, amount in enumerate(plan.top_ups_vnd):
        world.container.ledger.execute(TopUp(world.account_id, amount, f"momo-{n}"))
    if plan.day_pass:
        world.container.pass_sales.buy(
            world.account_id, purchase_id="pass-1", fare_product_id=DAY_PASS
        )
    taps = _Taps(world, plan.uploads_late)
    at = MORNING
    for ride in plan.rides:
        at = _ride(taps, ride, at + timedelta(minutes=ride.gap_min))
    taps.upload_late(plan.validator_order, at + timedelta(minutes=30))
    _card_rides(world, plan.card_rides)
    world.clock.now = PARKING_FROM
    for n, stay in enumerate(plan.stays):
        session = world.start(hours=stay.paid_h, start_id=f"start-{n}").session
        world.clock.advance(stay.stay_min * 60)
        world.parking.ending.end(session.id, f"end-{n}", EndedBy.APP)
        if stay.credit_vnd:
            world.parking.records.credit(session.id, f"credit-{n}", stay.credit_vnd, "meter fault")
        world.clock.advance(600)
    return sum(plan.top_ups_vnd)


def _ride(taps: _Taps, ride: Ride, at: datetime) -> datetime:
    """Taps the ride from `at`; when it ends."""
    exit_gate = GATE_OUT_12 if ride.far else GATE_OUT_02
    if ride.kind in ("bus", "bus+metro"):
        taps.tap(BUS_01, at)
        at += timedelta(minutes=15)
        taps.tap(BUS_01, at)
    if ride.kind == "bus+metro":
        taps.tap(GATE_IN_09, at + timedelta(minutes=5))
        at += timedelta(minutes=25)
        taps.tap(exit_gate, at)
    if ride.kind == "metro":
        taps.tap(GATE_IN_01, at)
        at += timedelta(minutes=20)
        taps.tap(exit_gate, at)
    return at


def _card_rides(world: ParkingWorld, rides: tuple[CardRide, ...]) -> None:
    """The rider's smart card pays its rides from its purse; each validator uploads at once."""
    if not rides:
        return
    world.container.journeys.smart_cards.issue(world.account_id, serial=CARD_SERIAL.hex())
    card = personalised_card(world.account_id, purse_vnd=CARD_PURSE_VND)
    minutes = CARD_RIDES_FROM_MIN
    for seq, ride in enumerate(rides, start=1):
        minutes += ride.gap_min
        if ride.metro:
            _card_tap(
                world, card, GATE_IN_01, minutes, EventKind.METRO_ENTRY, MAX_FROM_CAT_LINH_VND
            )
            minutes += 10
            _card_tap(
                world, card, GATE_OUT_02, minutes, EventKind.METRO_EXIT, DEAREST_TO_LA_THANH_VND
            )
        else:
            _card_tap(world, card, BUS_01, minutes, EventKind.BUS_BOARDING, ROUTE_01_FARE_VND)
        minutes += 20 + seq


def _card_tap(
    world: ParkingWorld,
    card: EmulatedCard,
    validator_id: int,
    minutes: int,
    kind: EventKind,
    fare_vnd: int,
) -> None:
    validation = decide(card, validator_id, minutes, kind, fare_vnd)
    assert validation.proof is not None
    world.clock.now = MORNING + timedelta(minutes=minutes)
    seq = 1_000 + minutes  # above the phone's taps at every validator
    tap = CardTap(
        seq,
        world.clock.now,
        "accepted",
        validation.outcome.value,
        CARD_SERIAL.hex(),
        validation.proof,
    )
    [result] = world.container.taps.ingest_batch(validator_id, [tap])
    assert result.status == "accepted", result
    world.container.catch_up()
