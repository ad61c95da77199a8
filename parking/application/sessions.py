"""Quotes, and sessions started and extended, paid by holds on the transport account.

The hold is placed first, under an id derived from the request's own id, and the session saved
after it: a retry of the same request finds the same hold (the ledger answers a repeat with the
first result) and completes the session; a request the session save refuses (the plate has a
session open, the code was used) releases the hold it placed. A process that dies between the
two leaves a hold that no session names; it is released when its time runs out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate

from parking.application.catalogue import Catalogue
from parking.application.store import ParkingStore
from parking.domain import limits
from parking.domain.action_time import acted_at
from parking.domain.catalogue import Lot
from parking.domain.errors import (
    CodeAlreadyUsed,
    LotClosed,
    NoPlaceFree,
    PaidUntilInvalid,
    PayerMissing,
    QuoteNotFound,
    SessionAlreadyOpen,
    SessionNotFound,
)
from parking.domain.occupancy import PlateAtLot, ScannedCodeUse, code_use_id, opened_plate
from parking.domain.plate import Plate, normalise_plate
from parking.domain.ports import Clock, CodeReader, ScannedCode
from parking.domain.pricing import quote
from parking.domain.quotes import ParkingQuote
from parking.domain.session import (
    ParkingSession,
    StartedBy,
    extension_hold_id,
    session_id_for,
    start_hold_id,
)
from parking.domain.tariff import VehicleClass
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import PlaceHold, VoidHold
from ticketing.accounts.domain.errors import (
    HoldAlreadyResolved,
    HoldNotFound,
    LedgerError,
    TransferConflict,
)
from ticketing.accounts.domain.limits import HOLD_TTL_MAX_S, HOLD_TTL_MIN_S
from ticketing.accounts.domain.transfer import TransferKind
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.optimistic import save_with_retries


@dataclass(frozen=True)
class Payment:
    """Until when a stay is paid: a paid end priced now, or a quote made before."""

    paid_until: datetime | None = None
    quote_id: UUID | None = None

    def check(self) -> None:
        if (self.paid_until is None) == (self.quote_id is None):
            raise PaidUntilInvalid("give exactly one of paid_until and quote_id")


@dataclass(frozen=True)
class Payer:
    """Who pays: an account named by the caller, or a scanned code."""

    account_id: UUID | None = None
    code: str | None = None

    def check(self) -> None:
        if (self.account_id is None) == (self.code is None):
            raise PayerMissing("give exactly one payer: an account or a scanned code")


@dataclass(frozen=True)
class StartRequest:
    start_id: str
    lot_id: str
    plate: str
    vehicle_class: VehicleClass
    payment: Payment
    payer: Payer
    started_by: StartedBy
    # When a handheld queued the start while offline; None: now.
    started_at: datetime | None = None

    def fingerprint(self) -> str:
        return fingerprint_of(
            self.lot_id,
            normalise_plate(self.plate).compact,
            str(self.vehicle_class),
            _iso(self.payment.paid_until),
            str(self.payment.quote_id),
            str(self.payer.account_id),
            self.payer.code or "",
            str(self.started_by),
            _iso(self.started_at),
        )


@dataclass(frozen=True)
class Started:
    session: ParkingSession
    replayed: bool


def _iso(at: datetime | None) -> str:
    return "" if at is None else at.isoformat()


def fingerprint_of(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def extension_fingerprint(payment: Payment) -> str:
    return fingerprint_of(_iso(payment.paid_until), str(payment.quote_id))


def hold_ttl_s(paid_until: datetime, at: datetime) -> int:
    ttl = (paid_until - at + limits.HOLD_GRACE).total_seconds()
    return int(min(max(ttl, HOLD_TTL_MIN_S), HOLD_TTL_MAX_S))


class Sessions:
    def __init__(
        self,
        store: ParkingStore,
        catalogue: Catalogue,
        ledger: Ledger,
        codes: CodeReader,
        clock: Clock,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.ledger = ledger
        self.codes = codes
        self.clock = clock

    # Quotes

    def make_quote(
        self,
        lot_id: str,
        vehicle_class: VehicleClass,
        end: datetime,
        *,
        start: datetime | None = None,
        account_id: UUID | None = None,
    ) -> ParkingQuote:
        at = self.clock()
        lot = self.catalogue.lot(lot_id)
        start = start or at
        self.check_lot_serves(lot, vehicle_class, start)
        priced = quote(self.catalogue.table(lot.table_id), vehicle_class, start, end)
        made = ParkingQuote.make(lot_id, priced, account_id, at)
        self.store.save(made)
        return made

    def get_quote(self, quote_id: UUID) -> ParkingQuote:
        found: ParkingQuote | None = self.store.get_or_none(quote_id)
        if not isinstance(found, ParkingQuote):
            raise QuoteNotFound(quote_id)
        return found

    # Sessions

    def get(self, session_id: UUID) -> ParkingSession:
        found: ParkingSession | None = self.store.get_or_none(session_id)
        if not isinstance(found, ParkingSession):
            raise SessionNotFound(session_id)
        return found

    def start(self, request: StartRequest) -> Started:
        request.payment.check()
        request.payer.check()
        session_id = session_id_for(request.start_id)
        fingerprint = request.fingerprint()
        known: ParkingSession | None = self.store.get_or_none(session_id)
        if known is not None:
            known.check_start_repeat(fingerprint)
            return Started(known, replayed=True)
        now = self.clock()
        at = acted_at(request.started_at, now)
        lot = self.catalogue.lot(request.lot_id)
        self.check_lot_serves(lot, request.vehicle_class, at)
        plate = normalise_plate(request.plate)
        hold_id = start_hold_id(session_id)
        self._check_plate_free_for_start(lot, plate, session_id, request.payer, hold_id)
        scanned = self.scanned(request.payer, at)
        if scanned is not None and self._code_used(scanned):
            raise CodeAlreadyUsed  # before any hold: a second scan moves no money
        account_id = scanned.account_id if scanned else request.payer.account_id
        assert account_id is not None
        paid_until, amount_vnd, ends_by = self.priced(lot, request, at)
        if amount_vnd > 0:
            description = f"parking {lot.lot_id} {plate.display}"
            ttl_s = hold_ttl_s(paid_until, now)
            amount_vnd = self._hold(PlaceHold(account_id, hold_id, amount_vnd, ttl_s, description))

        def attempt() -> Started:
            if self.store.get_or_none(session_id) is not None:
                return self._repeat(session_id, fingerprint)
            known: PlateAtLot | None = self.store.get_or_none(
                PlateAtLot.create_id(lot.lot_id, plate.compact)
            )
            open_id = None if known is None else known.session_id
            if open_id == session_id:
                # A copy of this request saved the session since it was looked for above.
                return self._repeat(session_id, fingerprint)
            if open_id is not None:
                raise SessionAlreadyOpen(plate.display, lot.lot_id, open_id)
            session = ParkingSession(
                start_id=request.start_id,
                fingerprint=fingerprint,
                lot_id=lot.lot_id,
                operator_id=lot.operator_id,
                table_id=lot.table_id,
                plate=plate.compact,
                plate_display=plate.display,
                vehicle_class=str(request.vehicle_class),
                account_id=account_id,
                started_by=str(request.started_by),
                started_at=at,
                paid_until=paid_until,
                ends_by=ends_by,
                hold_id=hold_id,
                held_vnd=amount_vnd,
            )
            plate_at_lot = opened_plate(known, lot.lot_id, plate.compact, session.id, paid_until)
            changed: list[Aggregate] = [session, plate_at_lot]
            if scanned is not None:
                if self._code_used(scanned):
                    raise CodeAlreadyUsed
                changed.append(ScannedCodeUse(scanned.card_id, scanned.counter, session.id))
            self.store.save(*changed)
            return Started(session, replayed=False)

        try:
            return save_with_retries(attempt, what=f"parking at {lot.lot_id}")
        except DomainError:
            # Refused (the plate is taken, the code used, the store contended): the hold is
            # this request's alone unless a repeat of it saved the session. Any other failure
            # (the database gone) keeps the hold for the retry, or until it expires.
            if self.store.get_or_none(session_id) is None:
                self._release(account_id, hold_id, amount_vnd)
            raise

    def _repeat(self, session_id: UUID, fingerprint: str) -> Started:
        session = self.get(session_id)
        session.check_start_repeat(fingerprint)
        return Started(session, replayed=True)

    def extend(self, session_id: UUID, extension_id: str, payment: Payment) -> ParkingSession:
        payment.check()
        fingerprint = extension_fingerprint(payment)
        session = self.get(session_id)
        if session.extension_repeats(extension_id, fingerprint):
            return session
        at = self.clock()
        paid_until = self.extension_end(session, payment, at)
        session.check_extension(paid_until)
        table = self.catalogue.table(session.table_id)
        priced = quote(table, VehicleClass(session.vehicle_class), session.started_at, paid_until)
        amount_vnd = max(0, priced.total_vnd - session.held_vnd)
        hold_id = extension_hold_id(session.id, extension_id)
        if amount_vnd > 0:
            description = f"parking {session.lot_id} {session.plate_display} extended"
            ttl_s = hold_ttl_s(paid_until, at)
            command = PlaceHold(session.account_id, hold_id, amount_vnd, ttl_s, description)
            amount_vnd = self._hold(command)

        def attempt() -> ParkingSession:
            # The plate before the session: see `plate_at_lot_of`.
            plate_at_lot = self.plate_at_lot_of(session)
            again = self.get(session_id)
            if again.extension_repeats(extension_id, fingerprint):
                return again
            again.check_extension(paid_until)
            again.extend(extension_id, fingerprint, paid_until, hold_id, amount_vnd, at)
            plate_at_lot.pay_until(again.id, paid_until)
            self.store.save(again, plate_at_lot)
            return again

        try:
            return save_with_retries(attempt, what=f"parking session {session_id}")
        except DomainError:
            # Refused: the hold is this extension's alone unless a repeat of it saved the
            # extension. Any other failure keeps the hold for the retry, or until it expires.
            if extension_id not in self.get(session_id).extensions:
                self._release(session.account_id, hold_id, amount_vnd)
            raise

    # Helpers

    def check_lot_serves(self, lot: Lot, vehicle_class: VehicleClass, at: datetime) -> None:
        if not lot.open_at(at):
            raise LotClosed(lot.lot_id, at)
        if lot.places(vehicle_class) == 0:
            raise NoPlaceFree(lot.lot_id, str(vehicle_class))

    def check_plate_free(self, lot_id: str, plate: str) -> None:
        """Refuses a plate that has a session open in the lot."""
        self._check_plate_free(self.catalogue.lot(lot_id), normalise_plate(plate))

    def _check_plate_free_for_start(
        self, lot: Lot, plate: Plate, session_id: UUID, payer: Payer, hold_id: str
    ) -> None:
        try:
            self._check_plate_free(lot, plate, session_id)
        except SessionAlreadyOpen:
            # An earlier attempt of this request may have placed its hold and died (or lost
            # its answer) before releasing it: no session will take it up.
            # Whatever the ledger answers, the answer to this request is the open session.
            if payer.account_id is not None:
                with contextlib.suppress(LedgerError):
                    self.ledger.execute(VoidHold(payer.account_id, hold_id))
            raise

    def _check_plate_free(self, lot: Lot, plate: Plate, session_id: UUID | None = None) -> None:
        """Refuses a plate with a session open, unless it is the one this request starts (a
        copy of the request sent at the same time saved it since it was looked for)."""
        plate_at_lot: PlateAtLot | None = self.store.get_or_none(
            PlateAtLot.create_id(lot.lot_id, plate.compact)
        )
        if plate_at_lot is not None and plate_at_lot.session_id not in (None, session_id):
            raise SessionAlreadyOpen(plate.display, lot.lot_id, plate_at_lot.session_id)

    def plate_at_lot_of(self, session: ParkingSession) -> PlateAtLot:
        """The plate's aggregate, to change with the session. A save attempt reads it before
        the session: the two reads are not one snapshot, and a session and its plate are saved
        together, so a plate read first is never newer than the session read after it. Read
        the other way round, another worker's end committed between the reads gives a session
        still open beside a plate already closed (an invariant error, not a retry)."""
        found: PlateAtLot = self.store.repository.get(
            PlateAtLot.create_id(session.lot_id, session.plate)
        )
        return found

    def _code_used(self, scanned: ScannedCode) -> bool:
        return self.store.get_or_none(code_use_id(scanned.card_id, scanned.counter)) is not None

    def scanned(self, payer: Payer, at: datetime) -> ScannedCode | None:
        if payer.code is None:
            return None
        return self.codes.read(payer.code, at)

    def priced(
        self, lot: Lot, request: StartRequest, at: datetime
    ) -> tuple[datetime, int, datetime]:
        """The paid end, the amount to hold, and the end of the longest stay allowed."""
        table = self.catalogue.table(lot.table_id)
        if request.payment.quote_id is not None:
            made = self.get_quote(request.payment.quote_id)
            made.check_usable(lot.lot_id, str(request.vehicle_class), at)
            paid_until, amount_vnd = made.end, made.amount_vnd
            max_stay = timedelta(minutes=made.max_stay_minutes)
        else:
            assert request.payment.paid_until is not None
            if request.payment.paid_until <= at:
                raise PaidUntilInvalid("paid_until must be after the start")
            priced = quote(table, request.vehicle_class, at, request.payment.paid_until)
            paid_until, amount_vnd, max_stay = priced.end, priced.total_vnd, priced.max_stay
        return paid_until, amount_vnd, at + max_stay

    def extension_end(self, session: ParkingSession, payment: Payment, at: datetime) -> datetime:
        if payment.quote_id is None:
            assert payment.paid_until is not None
            return payment.paid_until
        made = self.get_quote(payment.quote_id)
        made.check_usable(session.lot_id, session.vehicle_class, at)
        return made.end

    def _hold(self, command: PlaceHold) -> int:
        """Places the hold of a start or an extension, or finds the one an earlier attempt of
        the same request placed; the amount held under its id.

        The hold's time to live is counted from each attempt's own now, so an attempt repeated
        a second later (its worker killed after the hold, or two copies of one request sent at
        once) asks for another hold than the first, and the ledger refuses it as a different
        request. Its id is derived from the request's own, and the same account holds it, so
        it is this request's hold: the session takes it up, at the amount it holds."""
        try:
            return self.ledger.execute(command).amount_vnd
        except TransferConflict:
            placed = self.ledger.get_transfer(command.hold_id)
            if (
                placed is None
                or placed.kind is not TransferKind.HOLD
                or placed.account_id != command.account_id
            ):
                raise
            return placed.amount_vnd

    def _release(self, account_id: UUID, hold_id: str, amount_vnd: int) -> None:
        """Voids a hold this request placed and no session took up."""
        if amount_vnd <= 0:
            return
        # Already released: expired, or voided by a retry of this request.
        with contextlib.suppress(HoldAlreadyResolved, HoldNotFound):
            self.ledger.execute(VoidHold(account_id, hold_id))
