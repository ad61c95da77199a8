"""The demo's street parking, on the real parking context: the Hanoi default lots, a session from
the app and one an attendant starts from a scanned code, two reservations (one taken up, one
missed), an extension, a stay across iParking's
18:00, an officer's checks, then the sealed records and a credit.

Every step goes through `container.parking`, which reads the demo's clock: the story moves that
clock to each scene's time, so the fees (and the stay that crosses into the night) come out the
same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

from parking.adapters.lot_files import load_lot_file
from parking.application.reservations import BookRequest
from parking.application.service import Parking
from parking.application.sessions import Payer, Payment, StartRequest
from parking.domain.plate import normalise_plate
from parking.domain.record import ParkingDetailRecord
from parking.domain.session import EndedBy, StartedBy
from parking.domain.tariff import VehicleClass
from tapledger.bootstrap import Container
from tapledger.demo_clock import HANOI, SimClock
from tapledger.demo_taps import Phone
from ticketing.accounts.domain.commands import TopUp
from ticketing.shared.domain.errors import DomainError

APP_LOT = "hk-ly-thai-to"  # iParking, always open: Tuấn's car
ATTENDANT_LOT = "hk-trang-thi"  # iParking, 06:00 to 23:00: Lan's motorbike
TUAN_CAR = "29A-123.45"
LAN_MOTORBIKE = "29-B1 456.78"
UNPAID_CAR = "30E-678.90"
TUAN_TOP_UP_VND = 100_000
CREDIT_VND = 10_000
RESERVATION_LOT = "dd-ton-duc-thang"  # Dong Da, always open: booked places for cars
HOA_CAR = "30G-111.22"
MINH_CAR = "30H-333.44"
RESERVED_FEE_VND = 25_000
BOOKING_TOP_UP_VND = 50_000
# Dong Da's reservation terms for a car: a no-show pays one first hour.
NO_SHOW_VND = 25_000
# What the iParking table charges. The car: 2 h for 25,000, then 35,000 an hour, so 2 h 40 min
# pays three hours. The motorbike: a day turn (5,000) and, past 18:00, a night turn (8,000).
CAR_FEE_VND = 60_000
MOTORBIKE_FEE_VND = 13_000
# (fee, posted, segments) of the car's record, then the motorbike's: each stay has two segments,
# the car's where its second tier begins, the motorbike's where the night begins.
# Then Hoa's reserved car at Dong Da: 45 minutes in its first hour, 25,000.
EXPECTED_RECORDS = [
    (CAR_FEE_VND, CAR_FEE_VND, 2),
    (MOTORBIKE_FEE_VND, MOTORBIKE_FEE_VND, 2),
    (RESERVED_FEE_VND, RESERVED_FEE_VND, 1),
]


@dataclass
class _Story:
    """What the parking scenes share: the product, its clock, and the checks made so far."""

    container: Container
    clock: SimClock
    console: Console
    checks: list[bool] = field(default_factory=list)

    @property
    def parking(self) -> Parking:
        return self.container.parking

    def heading(self, what: str) -> None:
        self.console.print(f"\n{self.clock.label()} {what}")

    def ok(self, what: str) -> None:
        self.console.print(f"  [green]ok[/green] {what}")

    def detail(self, what: str) -> None:
        """A line that says more about the step above it."""
        self.console.print(f"     {what}")

    def refused(self, what: str, error: DomainError) -> None:
        self.console.print(
            f"  [yellow]refused[/yellow] {what}: [bold]{error.code}[/bold] ({error})"
        )


def parking_scene(
    container: Container,
    clock: SimClock,
    riders: dict[str, UUID],
    lan_phone: Phone,
    console: Console,
) -> bool:
    """Runs a day of street parking; returns whether every fee and verdict was the expected one."""
    story = _Story(container, clock, console)
    clock.advance_to(11, 30)
    story.heading("street parking: the Hanoi lots")
    _load_lots(story)
    car = _app_session(story, riders["Tuan"])
    clock.advance_to(11, 40)
    motorbike = _attendant_session(story, lan_phone)
    clock.advance_to(11, 45)
    hoa_booking, minh_booking = _bookings(story, riders["Hoa"], riders["Minh"])
    clock.advance_to(12, 5)
    reserved = _arrival(story, hoa_booking)
    clock.advance_to(12, 15)
    _enforcement(story)
    clock.advance_to(12, 45)
    _no_show_and_departure(story, minh_booking, reserved)
    clock.advance_to(13, 20)
    _extension(story, car)
    clock.advance_to(14, 10)
    story.heading("Tuấn drives off")
    ended = story.parking.ending.end(car, "app-tuan-end-1410", EndedBy.APP)
    story.ok(f"Tuấn ends his session from the app: {_segments(ended.record)}")
    story.detail(_settled(ended.record))
    clock.advance_to(18, 30)
    _across_the_evening(story, motorbike)
    _records(story, [car, motorbike, reserved])
    return all(story.checks)


def _load_lots(story: _Story) -> None:
    lot_file = load_lot_file()
    for operator_id, name in lot_file.operators:
        story.parking.catalogue.register_operator(operator_id, name)
    for spec in lot_file.lots:
        story.parking.catalogue.register_lot(spec)
    story.ok(
        f"the Hanoi default lots: {len(lot_file.operators)} operators, {len(lot_file.lots)} lots"
    )
    table = Table(title="Lots (places per class)", title_justify="left")
    for column in ("lot", "operator", "rate table", "open"):
        table.add_column(column)
    for vehicle_class in VehicleClass:
        table.add_column(str(vehicle_class), justify="right")
    for spec in lot_file.lots:
        hours = spec.opening_hours
        table.add_row(
            spec.lot_id,
            spec.operator_id,
            spec.table_id,
            "always"
            if hours is None
            else f"{_minute(hours.opens_minute)}-{_minute(hours.closes_minute)}",
            *(str(spec.capacity.get(cls, 0)) for cls in VehicleClass),
        )
    story.console.print(table)


def _app_session(story: _Story, tuan: UUID) -> UUID:
    # After loading his smart card Tuấn has 50,000 VND: the extended session's 60,000 would
    # only just fit within his overdraft.
    story.container.ledger.execute(TopUp(tuan, TUAN_TOP_UP_VND, "bank-55121"))
    story.ok(f"Tuấn tops up {TUAN_TOP_UP_VND:,} VND for a day in town")
    started = story.parking.sessions.start(
        StartRequest(
            start_id="app-tuan-1130",
            lot_id=APP_LOT,
            plate=TUAN_CAR,
            vehicle_class=VehicleClass.CAR,
            payment=Payment(paid_until=story.clock.now + timedelta(hours=2)),
            payer=Payer(account_id=tuan),
            started_by=StartedBy.APP,
        )
    )
    session = started.session
    story.ok(
        f"Tuấn parks his car {session.plate_display} at Ly Thai To from the app, paid 2 h "
        f"until {_hm(session.paid_until)}: hold {session.held_vnd:,} VND"
    )
    return session.id


def _attendant_session(story: _Story, lan_phone: Phone) -> UUID:
    story.heading("an attendant's handheld at Trang Thi")
    code = lan_phone.code(story.clock.now)
    paid_until = story.clock.now.astimezone(HANOI).replace(hour=20, minute=0)
    started = story.parking.sessions.start(
        StartRequest(
            start_id="handheld-tt-07-1",
            lot_id=ATTENDANT_LOT,
            plate=LAN_MOTORBIKE,
            vehicle_class=VehicleClass.MOTORBIKE,
            payment=Payment(paid_until=paid_until),
            payer=Payer(code=code),
            started_by=StartedBy.ATTENDANT,
        )
    )
    session = started.session
    story.ok(
        f"the attendant scans Lan's phone code and types the plate {session.plate_display}: "
        f"a motorbike paid until {_hm(session.paid_until)}, hold {session.held_vnd:,} VND "
        "(a day turn and a night turn)"
    )
    try:
        story.parking.sessions.start(
            StartRequest(
                start_id="handheld-tt-07-2",
                lot_id=ATTENDANT_LOT,
                plate="29-B1 456.79",
                vehicle_class=VehicleClass.MOTORBIKE,
                payment=Payment(paid_until=paid_until),
                payer=Payer(code=code),
                started_by=StartedBy.ATTENDANT,
            )
        )
        story.checks.append(False)
    except DomainError as error:
        story.refused("the same code, scanned again for another motorbike", error)
        story.checks.append(error.code == "code_already_used")
    return session.id


def _bookings(story: _Story, hoa: UUID, minh: UUID) -> tuple[str, str]:
    story.heading("two riders book a car place at Ton Duc Thang for 12:00-13:00")
    window_from = story.clock.now.astimezone(HANOI).replace(hour=12, minute=0)
    ids = []
    for name, account_id, plate in (("Hoa", hoa, HOA_CAR), ("Minh", minh, MINH_CAR)):
        reference = f"bank-{name.lower()}-1145"
        story.container.ledger.execute(TopUp(account_id, BOOKING_TOP_UP_VND, reference))
        reservation_id = f"app-{name.lower()}-res-1145"
        booked = story.parking.reservations.book(
            BookRequest(
                reservation_id=reservation_id,
                lot_id=RESERVATION_LOT,
                vehicle_class=VehicleClass.CAR,
                plate=plate,
                window_from=window_from,
                window_to=window_from + timedelta(hours=1),
                account_id=account_id,
            )
        )
        story.ok(
            f"{name} tops up {BOOKING_TOP_UP_VND:,} VND and books for "
            f"{booked.reservation.plate_display}: "
            f"hold {booked.reservation.held_vnd:,} VND"
        )
        ids.append(reservation_id)
    return ids[0], ids[1]


def _arrival(story: _Story, reservation_id: str) -> UUID:
    story.heading("Hoa arrives at her booked place")
    session = story.parking.reservations.arrive(reservation_id, "app-hoa-arrive-1205").session
    story.ok(
        f"the reservation becomes a session ({session.started_by}), paid until "
        f"{_hm(session.paid_until)}: hold {session.held_vnd:,} VND"
    )
    story.checks.append(session.started_by == StartedBy.RESERVATION)
    return session.id


def _no_show_and_departure(story: _Story, missed: str, reserved: UUID) -> None:
    story.heading("Minh never came; Hoa leaves")
    story.parking.follower.catch_up()  # the sweeper finds its work in the views
    report = story.parking.sweeper.sweep()
    reservation = story.parking.reservations.get(missed)
    story.ok(
        f"the sweeper marks {report.no_shows} reservation a no-show: Minh pays "
        f"{reservation.fee_vnd:,} VND of the {reservation.held_vnd:,} held, "
        f"{reservation.held_vnd - reservation.fee_vnd:,} released"
    )
    story.checks.append((report.no_shows, reservation.fee_vnd) == (1, NO_SHOW_VND))
    ended = story.parking.ending.end(reserved, "app-hoa-end-1245", EndedBy.APP)
    story.ok(f"Hoa ends her session from the app: {_segments(ended.record)}")
    story.detail(_settled(ended.record))


def _enforcement(story: _Story) -> None:
    story.heading("an officer checks plates at Ly Thai To")
    statuses = []
    for plate in (TUAN_CAR, UNPAID_CAR):
        verdict = story.parking.enforcement.check(APP_LOT, plate)
        statuses.append(verdict.status.value)
        until = "" if verdict.paid_until is None else f", paid until {_hm(verdict.paid_until)}"
        story.console.print(f"  {verdict.plate}: [bold]{verdict.status.value}[/bold]{until}")
    story.checks.append(statuses == ["paid", "unpaid"])


def _extension(story: _Story, car: UUID) -> None:
    story.heading("Tuấn's meeting runs late")
    before = story.parking.sessions.get(car).held_vnd
    session = story.parking.sessions.extend(
        car,
        "app-tuan-ext-1320",
        Payment(paid_until=story.clock.now.astimezone(HANOI).replace(hour=14, minute=30)),
    )
    story.ok(
        f"Tuấn extends from the app until {_hm(session.paid_until)}: the hold grows by "
        f"{session.held_vnd - before:,} to {session.held_vnd:,} VND"
    )


def _across_the_evening(story: _Story, motorbike: UUID) -> None:
    story.heading("Lan collects her motorbike, after iParking's day ends at 18:00")
    ended = story.parking.ending.end(motorbike, "handheld-tt-07-3", EndedBy.ATTENDANT)
    story.ok(f"the attendant ends the stay: {_segments(ended.record)}")
    story.detail(_settled(ended.record))


def _records(story: _Story, session_ids: list[UUID]) -> None:
    records = [story.parking.records.get(session_id) for session_id in session_ids]
    table = Table(title="Parking detail records", title_justify="left")
    for column in ("lot", "plate", "class", "segments"):
        table.add_column(column)
    for column in ("fee", "posted"):
        table.add_column(column, justify="right")
    for record in records:
        table.add_row(
            record.lot_id,
            normalise_plate(record.plate).display,
            record.vehicle_class,
            str(len(record.segments)),
            f"{record.fee_vnd:,}",
            f"{record.posted_vnd:,}",
        )
    story.console.print()
    story.console.print(table)
    car = story.parking.records.credit(
        records[0].session_id, "credit-lty-0001", CREDIT_VND, "pay app down at the exit for 10 min"
    )
    story.ok(
        f"the operator credits {CREDIT_VND:,} VND to Tuấn's record at {car.lot_id} "
        f"(the pay app was down at the exit): net {car.net_vnd:,} VND"
    )
    fees = [(record.fee_vnd, record.posted_vnd, len(record.segments)) for record in records]
    story.checks.append(fees == EXPECTED_RECORDS)
    story.checks.append(car.net_vnd == CAR_FEE_VND - CREDIT_VND)


def _segments(record: ParkingDetailRecord) -> str:
    """The priced parts of a stay: `day 11:30-13:30 25,000 + day 13:30-14:10 35,000`."""
    return " + ".join(
        f"{segment['period']} {_hm(_instant(segment['start']))}-{_hm(_instant(segment['end']))} "
        f"{int(segment['amount_vnd']):,}"
        for segment in record.segments
    )


def _settled(record: ParkingDetailRecord) -> str:
    released = record.held_vnd - record.posted_vnd
    return (
        f"fee {record.fee_vnd:,} VND: {record.posted_vnd:,} posted from the holds, "
        f"{released:,} released, {record.unpaid_vnd:,} unpaid"
    )


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _minute(minute_of_day: int) -> str:
    return f"{minute_of_day // 60:02}:{minute_of_day % 60:02}"


def _hm(at: datetime) -> str:
    return f"{at.astimezone(HANOI):%H:%M}"
