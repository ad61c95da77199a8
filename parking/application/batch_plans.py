"""Each action of a batch decided before anything is written: what it reads, the hold it asks
for, and the aggregates it changes once the hold is placed.

A plan repeats the checks of the one-by-one use case it stands for (`Sessions.start`,
`Sessions.extend`, `Ending.end`), in the same order, so an action refused here meets the refusal
it would meet alone. What the one-by-one path does beyond the common case (a repeat of a request
already applied, a plate whose session looks open, a plate and a session that disagree) is left
to it: the planner answers `None` and the batch sends that action down the one-by-one path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from parking.application.batch_actions import EndAction, ExtendAction, StartAction
from parking.application.batch_reads import BatchReads
from parking.application.ending import Ending
from parking.application.sessions import (
    Sessions,
    StartRequest,
    extension_fingerprint,
    hold_ttl_s,
)
from parking.domain.action_time import acted_at
from parking.domain.catalogue import Lot, check_catalogue_id
from parking.domain.errors import CodeAlreadyUsed, LotNotFound, SessionNotFound
from parking.domain.occupancy import PlateAtLot, ScannedCodeUse, code_use_id, opened_plate
from parking.domain.plate import Plate, normalise_plate
from parking.domain.ports import ScannedCode
from parking.domain.pricing import quote
from parking.domain.session import (
    ParkingSession,
    extension_hold_id,
    segments_as_data,
    session_id_for,
    start_hold_id,
)
from parking.domain.tariff import VehicleClass
from ticketing.accounts.domain.commands import PlaceHold


@dataclass
class Opening:
    """A start: a new session, its plate opened, the code used (when a code pays)."""

    index: int
    request: StartRequest
    session_id: UUID
    fingerprint: str
    lot: Lot
    plate: Plate
    plate_id: UUID
    plate_at_lot: PlateAtLot | None  # None: never seen in the lot
    scanned: ScannedCode | None
    account_id: UUID
    at: datetime
    paid_until: datetime
    ends_by: datetime
    hold: PlaceHold | None
    session: ParkingSession | None = None

    @property
    def keys(self) -> set[UUID]:
        keys = {self.session_id, self.plate_id}
        if self.scanned is not None:
            keys.add(code_use_id(self.scanned.card_id, self.scanned.counter))
        return keys

    def changes(self) -> list[Aggregate]:
        session = ParkingSession(
            start_id=self.request.start_id,
            fingerprint=self.fingerprint,
            lot_id=self.lot.lot_id,
            operator_id=self.lot.operator_id,
            table_id=self.lot.table_id,
            plate=self.plate.compact,
            plate_display=self.plate.display,
            vehicle_class=str(self.request.vehicle_class),
            account_id=self.account_id,
            started_by=str(self.request.started_by),
            started_at=self.at,
            paid_until=self.paid_until,
            ends_by=self.ends_by,
            hold_id=start_hold_id(self.session_id),
            held_vnd=0 if self.hold is None else self.hold.amount_vnd,
        )
        self.plate_at_lot = opened_plate(
            self.plate_at_lot, self.lot.lot_id, self.plate.compact, session.id, self.paid_until
        )
        self.session = session
        changed: list[Aggregate] = [session, self.plate_at_lot]
        if self.scanned is not None:
            scanned = self.scanned
            changed.append(ScannedCodeUse(scanned.card_id, scanned.counter, session.id))
        return changed


@dataclass
class Raising:
    """An extension: the session paid until later, and its plate with it."""

    index: int
    action: ExtendAction
    session: ParkingSession
    plate_at_lot: PlateAtLot
    fingerprint: str
    paid_until: datetime
    at: datetime
    hold: PlaceHold | None

    @property
    def keys(self) -> set[UUID]:
        return {self.session.id, self.plate_at_lot.id}

    def changes(self) -> list[Aggregate]:
        hold_id = extension_hold_id(self.session.id, self.action.extension_id)
        held_vnd = 0 if self.hold is None else self.hold.amount_vnd
        self.session.extend(
            self.action.extension_id, self.fingerprint, self.paid_until, hold_id, held_vnd, self.at
        )
        self.plate_at_lot.pay_until(self.session.id, self.paid_until)
        return [self.session, self.plate_at_lot]


@dataclass
class Closing:
    """An end: the fee for the real stay fixed on the session, its plate closed."""

    index: int
    action: EndAction
    session: ParkingSession
    plate_at_lot: PlateAtLot
    ended_at: datetime
    fee_vnd: int
    segments: list[dict[str, Any]] = field(default_factory=list)
    hold: None = None

    @property
    def keys(self) -> set[UUID]:
        return {self.session.id, self.plate_at_lot.id}

    def changes(self) -> list[Aggregate]:
        ended_by = str(self.action.ended_by)
        self.session.end(self.action.end_id, ended_by, self.ended_at, self.fee_vnd, self.segments)
        self.plate_at_lot.close(self.session.id)
        return [self.session, self.plate_at_lot]


Plan = Opening | Raising | Closing


class Planner:
    def __init__(self, sessions: Sessions, ending: Ending, reads: BatchReads) -> None:
        self.sessions = sessions
        self.ending = ending
        self.reads = reads

    def _lot(self, lot_id: str) -> Lot:
        """As `Catalogue.lot`, from the batches' memory: a lot changed since is read again."""
        check_catalogue_id("lot_id", lot_id)
        found = self.reads.get(Lot.create_id(lot_id))
        if not isinstance(found, Lot):
            raise LotNotFound(lot_id)
        return found

    def plan(self, index: int, action: StartAction | ExtendAction | EndAction) -> Plan | None:
        """The action's plan; None for the one-by-one path; raises the action's refusal."""
        match action:
            case StartAction():
                return self._start(index, action.request)
            case ExtendAction():
                return self._extend(index, action)
            case EndAction():
                return self._end(index, action)

    def _start(self, index: int, request: StartRequest) -> Opening | None:
        request.payment.check()
        request.payer.check()
        session_id = session_id_for(request.start_id)
        if self.reads.get(session_id) is not None:
            return None  # a repeat
        now = self.sessions.clock()
        at = acted_at(request.started_at, now)
        lot = self._lot(request.lot_id)
        self.sessions.check_lot_serves(lot, request.vehicle_class, at)
        plate = normalise_plate(request.plate)
        plate_id = PlateAtLot.create_id(lot.lot_id, plate.compact)
        plate_at_lot: PlateAtLot | None = self.reads.get(plate_id)
        if plate_at_lot is not None and plate_at_lot.session_id is not None:
            # Refused alone, with the hold an earlier attempt may have left released.
            return None
        scanned = self.sessions.scanned(request.payer, at)
        if scanned is not None and self.reads.get(code_use_id(scanned.card_id, scanned.counter)):
            raise CodeAlreadyUsed  # before any hold: a second scan moves no money
        account_id = scanned.account_id if scanned else request.payer.account_id
        assert account_id is not None
        paid_until, amount_vnd, ends_by = self.sessions.priced(lot, request, at)
        hold = None
        if amount_vnd > 0:
            description = f"parking {lot.lot_id} {plate.display}"
            ttl_s = hold_ttl_s(paid_until, now)
            hold_id = start_hold_id(session_id)
            hold = PlaceHold(account_id, hold_id, amount_vnd, ttl_s, description)
        return Opening(
            index=index,
            request=request,
            session_id=session_id,
            fingerprint=request.fingerprint(),
            lot=lot,
            plate=plate,
            plate_id=plate_id,
            plate_at_lot=plate_at_lot,
            scanned=scanned,
            account_id=account_id,
            at=at,
            paid_until=paid_until,
            ends_by=ends_by,
            hold=hold,
        )

    def _extend(self, index: int, action: ExtendAction) -> Raising | None:
        action.payment.check()
        fingerprint = extension_fingerprint(action.payment)
        session = self._session(action.session_id)
        if session.extension_repeats(action.extension_id, fingerprint):
            return None
        at = self.sessions.clock()
        paid_until = self.sessions.extension_end(session, action.payment, at)
        session.check_extension(paid_until)
        table = self.sessions.catalogue.table(session.table_id)
        priced = quote(table, VehicleClass(session.vehicle_class), session.started_at, paid_until)
        amount_vnd = max(0, priced.total_vnd - session.held_vnd)
        plate_at_lot = self._plate_of(session)
        if plate_at_lot is None:
            return None
        hold = None
        if amount_vnd > 0:
            description = f"parking {session.lot_id} {session.plate_display} extended"
            hold_id = extension_hold_id(session.id, action.extension_id)
            ttl_s = hold_ttl_s(paid_until, at)
            hold = PlaceHold(session.account_id, hold_id, amount_vnd, ttl_s, description)
        return Raising(index, action, session, plate_at_lot, fingerprint, paid_until, at, hold)

    def _end(self, index: int, action: EndAction) -> Closing | None:
        session = self._session(action.session_id)
        if session.end_repeats(action.end_id):
            return None  # ended already: the one-by-one path settles it if it is not yet
        ended_at = self.ending.ended_at(session, acted_at(action.at, self.ending.clock()))
        table = self.sessions.catalogue.table(session.table_id)
        vehicle_class = VehicleClass(session.vehicle_class)
        priced = quote(table, vehicle_class, session.started_at, ended_at, allow_overstay=True)
        plate_at_lot = self._plate_of(session)
        if plate_at_lot is None:
            return None
        segments = segments_as_data(priced)
        return Closing(index, action, session, plate_at_lot, ended_at, priced.total_vnd, segments)

    def _session(self, session_id: UUID) -> ParkingSession:
        found = self.reads.get(session_id)
        if not isinstance(found, ParkingSession):
            raise SessionNotFound(session_id)
        return found

    def _plate_of(self, session: ParkingSession) -> PlateAtLot | None:
        """The open session's plate; None when the two disagree (one of them read before
        another writer changed both): the one-by-one path reads them again in order."""
        found = self.reads.get(PlateAtLot.create_id(session.lot_id, session.plate))
        if not isinstance(found, PlateAtLot) or found.session_id != session.id:
            return None
        return found
