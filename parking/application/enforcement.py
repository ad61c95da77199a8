"""An officer's check of a plate in a lot.

Two ways to the same answer. `check_indexed`, in the event loop: one read of the enforcement
index (`parking.domain.enforcement_index`), trusted only while the index is known complete.
`check`, in a thread: one read of the plate's aggregate in the event store (a plate this
process holds is brought up to date with the events written since; one it does not hold is
most often one never recorded, found so by one look for its first event). The route asks the
index first and the store when the index cannot answer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parking.application.catalogue import Catalogue
from parking.application.store import ParkingStore
from parking.domain.enforcement import EnforcementStatus, status_at
from parking.domain.enforcement_index import EnforcementIndex, IndexUnavailable
from parking.domain.occupancy import PlateAtLot
from parking.domain.plate import normalise_plate
from parking.domain.ports import Clock

# While the index cannot be read, every check says so; the log hears it this often at most.
INDEX_WARNING_EVERY_S = 60.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    lot_id: str
    plate: str
    status: EnforcementStatus
    paid_until: datetime | None
    session_id: UUID | None


class Enforcement:
    def __init__(
        self, store: ParkingStore, catalogue: Catalogue, clock: Clock, index: EnforcementIndex
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.clock = clock
        self.index = index
        # Lots known to exist: a lot is never deleted, so one look is enough.
        self._lots: set[str] = set()
        self._warned_s = -INDEX_WARNING_EVERY_S

    def check(self, lot_id: str, plate_text: str) -> Verdict:
        """The answer from the event store (blocking: run it in a thread)."""
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

    async def check_indexed(self, lot_id: str, plate_text: str) -> Verdict | None:
        """The answer from the index, or None when only `check` can give it: a lot this
        process has not seen yet (`check` looks it up, and answers an unknown one), an index
        not known complete, or one that cannot be reached. An unreadable plate is refused
        here as `check` refuses it."""
        plate = normalise_plate(plate_text)
        if lot_id not in self._lots:
            return None
        try:
            read = await self.index.read(PlateAtLot.create_id(lot_id, plate.compact))
        except IndexUnavailable as error:
            self._warn(error)
            return None
        if not read.complete:
            return None
        entry = read.entry
        session_id = None if entry is None else entry.session_id
        paid_until = None if entry is None else entry.paid_until
        return Verdict(
            lot_id, plate.display, status_at(paid_until, self.clock()), paid_until, session_id
        )

    def _warn(self, error: IndexUnavailable) -> None:
        now_s = time.monotonic()
        if now_s - self._warned_s >= INDEX_WARNING_EVERY_S:
            self._warned_s = now_s
            log.warning("enforcement index unreadable, checks read the event store: %s", error)
