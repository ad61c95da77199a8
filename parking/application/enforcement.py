"""An officer's check of a plate in a lot: one read of the plate's aggregate, which keeps the
open session and its paid end. One query to the store in either case: a plate this process
holds is brought up to date with the events written since, and one it does not hold is most
often one never recorded (no session ever), found so by one look for its first event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parking.application.catalogue import Catalogue
from parking.application.store import ParkingStore
from parking.domain.enforcement import EnforcementStatus, status_at
from parking.domain.occupancy import PlateAtLot
from parking.domain.plate import normalise_plate
from parking.domain.ports import Clock


@dataclass(frozen=True)
class Verdict:
    lot_id: str
    plate: str
    status: EnforcementStatus
    paid_until: datetime | None
    session_id: UUID | None


class Enforcement:
    def __init__(self, store: ParkingStore, catalogue: Catalogue, clock: Clock) -> None:
        self.store = store
        self.catalogue = catalogue
        self.clock = clock
        # Lots known to exist: a lot is never deleted, so one look is enough.
        self._lots: set[str] = set()

    def check(self, lot_id: str, plate_text: str) -> Verdict:
        plate = normalise_plate(plate_text)
        if lot_id not in self._lots:
            self.catalogue.lot(lot_id)
            self._lots.add(lot_id)
        found: PlateAtLot | None = self.store.read_if_recorded(
            PlateAtLot.create_id(lot_id, plate.compact)
        )
        session_id = None if found is None else found.session_id
        paid_until = None if found is None else found.paid_until
        return Verdict(
            lot_id, plate.display, status_at(paid_until, self.clock()), paid_until, session_id
        )
