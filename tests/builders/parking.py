"""A parking world on the product's composition root: an operator, a Dong Da car lot and an
iParking lot (cars and motorbikes), a rider with money and a phone that shows TL1 codes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from parking.application.reservations import Booked, BookRequest
from parking.application.service import Parking
from parking.application.sessions import Payer, Payment, Started, StartRequest
from parking.domain.catalogue import LotSpec, OpeningHours
from parking.domain.session import StartedBy
from parking.domain.tariff import VehicleClass
from tapledger.bootstrap import Container
from tests.builders.product import local_product
from tests.doubles import Clock
from tests.tap_media import Phone
from ticketing.accounts.domain.commands import TopUp

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
# 08:00 in Hanoi on a Monday.
MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=HANOI)
OPERATOR = "hanoi-parking"
DONG_DA_LOT = "dd-ton-duc-thang"  # cars, Dong Da's hourly tiers, open 06:00 to 22:00
IPARKING_LOT = "hk-ly-thai-to"  # cars and motorbikes, iParking turns, always open
BALANCE_VND = 500_000
PLATE = "29A-123.45"
OTHER_PLATE = "30E-678.90"


@dataclass
class ParkingWorld:
    container: Container
    clock: Clock
    account_id: UUID
    phone: Phone
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def parking(self) -> Parking:
        return self.container.parking

    def new_id(self, prefix: str = "req") -> str:
        return f"{prefix}-{next(self._ids)}"

    def balance(self, account_id: UUID | None = None) -> tuple[int, int]:
        """(posted, pending) of the account."""
        account = self.container.ledger.get_account(account_id or self.account_id)
        return account.posted_vnd, account.pending_vnd

    def open_account(self, amount_vnd: int = BALANCE_VND) -> UUID:
        account = self.container.ledger.open_account(rider_category=0)
        if amount_vnd:
            self.container.ledger.execute(TopUp(account.id, amount_vnd, f"pay-{account.id.hex}"))
        return account.id

    def code(self, counter: int = 1) -> str:
        return self.phone.code(int(self.clock().timestamp()), counter)

    def start(
        self,
        *,
        hours: float = 2,
        plate: str = PLATE,
        lot_id: str = DONG_DA_LOT,
        vehicle_class: VehicleClass = VehicleClass.CAR,
        account_id: UUID | None = None,
        code: str | None = None,
        start_id: str | None = None,
    ) -> Started:
        payer = Payer(code=code) if code else Payer(account_id=account_id or self.account_id)
        return self.parking.sessions.start(
            StartRequest(
                start_id=start_id or self.new_id("start"),
                lot_id=lot_id,
                plate=plate,
                vehicle_class=vehicle_class,
                payment=Payment(paid_until=self.clock() + timedelta(hours=hours)),
                payer=payer,
                started_by=StartedBy.ATTENDANT if code else StartedBy.APP,
            )
        )

    def book(
        self,
        *,
        start_in_hours: float = 2,
        hours: float = 2,
        plate: str = PLATE,
        lot_id: str = DONG_DA_LOT,
        vehicle_class: VehicleClass = VehicleClass.CAR,
        account_id: UUID | None = None,
        reservation_id: str | None = None,
    ) -> Booked:
        """Books a window starting `start_in_hours` from now and lasting `hours`."""
        window_from = self.clock() + timedelta(hours=start_in_hours)
        return self.parking.reservations.book(
            BookRequest(
                reservation_id=reservation_id or self.new_id("rsv"),
                lot_id=lot_id,
                vehicle_class=vehicle_class,
                plate=plate,
                window_from=window_from,
                window_to=window_from + timedelta(hours=hours),
                account_id=account_id or self.account_id,
            )
        )


def add_lots(parking: Parking) -> None:
    parking.catalogue.register_operator(OPERATOR, "Hanoi street parking")
    parking.catalogue.register_lot(
        LotSpec(
            lot_id=DONG_DA_LOT,
            operator_id=OPERATOR,
            name="Ton Duc Thang",
            address="Ton Duc Thang, Dong Da, Hanoi",
            lat=21.0187,
            lon=105.8290,
            opening_hours=OpeningHours(6 * 60, 22 * 60),
            capacity={VehicleClass.CAR: 2, VehicleClass.MOTORBIKE: 0, VehicleClass.LARGE: 0},
            table_id="hanoi-dong-da",
        )
    )
    parking.catalogue.register_lot(
        LotSpec(
            lot_id=IPARKING_LOT,
            operator_id=OPERATOR,
            name="Ly Thai To",
            address="Ly Thai To, Hoan Kiem, Hanoi",
            lat=21.0285,
            lon=105.8542,
            opening_hours=None,
            capacity={VehicleClass.CAR: 10, VehicleClass.MOTORBIKE: 50, VehicleClass.LARGE: 0},
            table_id="hanoi-iparking",
        )
    )


@contextmanager
def parking_world(
    data_dir: Path, start: datetime = MORNING, **settings: Any
) -> Iterator[ParkingWorld]:
    """`settings` override local mode's defaults (`database_url=` puts it on PostgreSQL)."""
    clock = Clock(start)
    with local_product(data_dir, clock=clock, **settings) as container:
        add_lots(container.parking)
        world = ParkingWorld(container, clock, account_id=UUID(int=0), phone=Phone.new())
        world.account_id = world.open_account()
        card = container.cards.issue_virtual_card(
            world.account_id, device_key=world.phone.public_key()
        )
        world.phone.certify(card.certificate_b64)
        yield world
