"""Ending a session: the fee for the real stay fixed, then paid from the holds, then sealed.

Three steps, each safe to repeat. The end is saved first with its fee and segments, so a retry
(the same end id, or the sweeper) settles at that fee and never prices the stay again. The
ledger calls carry ids derived from the session, so a repeat is answered with the first result.
The settlement and the detail record are saved together, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from parking.application.records import record_of
from parking.application.sessions import Sessions
from parking.application.store import ParkingStore
from parking.domain.limits import STAY_LIMIT
from parking.domain.ports import Clock
from parking.domain.pricing import quote
from parking.domain.record import ParkingDetailRecord
from parking.domain.session import (
    EndedBy,
    ParkingSession,
    SessionState,
    rest_debit_id,
    segments_as_data,
)
from parking.domain.settlement import plan_settlement
from parking.domain.tariff import VehicleClass
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Debit, PostHold, VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved, HoldNotFound, LedgerError
from ticketing.shared.domain.errors import Contended
from ticketing.shared.optimistic import save_with_retries

# The shortest stay priced: a session ended the second it started still pays its first block.
STAY_MIN = timedelta(seconds=1)


@dataclass(frozen=True)
class Ended:
    session: ParkingSession
    record: ParkingDetailRecord


class Ending:
    def __init__(
        self, store: ParkingStore, sessions: Sessions, ledger: Ledger, clock: Clock
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.ledger = ledger
        self.clock = clock

    def end(
        self,
        session_id: UUID,
        end_id: str,
        ended_by: EndedBy,
        *,
        at: datetime | None = None,
    ) -> Ended:
        """Ends the session at `at` (now by default), posts its fee and seals its record."""
        session = self.sessions.get(session_id)
        if not session.end_repeats(end_id):
            ended_at = self.ended_at(session, at or self.clock())
            table = self.sessions.catalogue.table(session.table_id)
            vehicle_class = VehicleClass(session.vehicle_class)
            priced = quote(table, vehicle_class, session.started_at, ended_at, allow_overstay=True)

            def attempt() -> ParkingSession:
                # The plate before the session (see `Sessions.plate_at_lot_of`).
                plate_at_lot = self.sessions.plate_at_lot_of(session)
                again = self.sessions.get(session_id)
                if again.end_repeats(end_id):
                    return again
                segments = segments_as_data(priced)
                again.end(end_id, str(ended_by), ended_at, priced.total_vnd, segments)
                plate_at_lot.close(again.id)
                self.store.save(again, plate_at_lot)
                return again

            session = save_with_retries(attempt, what=f"parking session {session_id}")
        return self.settle(session)

    def settle(self, session: ParkingSession) -> Ended:
        """Pays an ended session's fee and seals its record (a settled one is read back)."""
        if session.state is SessionState.SETTLED:
            return Ended(session, record_of(self.store, session.id))
        plan = plan_settlement(
            [(hold["hold_id"], int(hold["amount_vnd"])) for hold in session.holds],
            session.fee_vnd,
        )
        posted_vnd = 0
        rest_vnd = plan.rest_vnd
        for use in plan.uses:
            if self._use_hold(session.account_id, use.hold_id, use.post_vnd):
                posted_vnd += use.post_vnd
            else:
                rest_vnd += use.post_vnd
        debited_vnd = self._debit_rest(session, rest_vnd)
        unpaid_vnd = rest_vnd - debited_vnd
        at = self.clock()

        def attempt() -> Ended:
            again = self.sessions.get(session.id)
            if again.state is SessionState.SETTLED:
                return Ended(again, record_of(self.store, again.id))
            again.settle(posted_vnd, debited_vnd, unpaid_vnd, at)
            record = seal(again, at)
            self.store.save(again, record)
            return Ended(again, record)

        return save_with_retries(attempt, what=f"parking session {session.id}")

    def ended_at(self, session: ParkingSession, at: datetime) -> datetime:
        return min(max(at, session.started_at + STAY_MIN), session.started_at + STAY_LIMIT)

    def _use_hold(self, account_id: UUID, hold_id: str, post_vnd: int) -> bool:
        """Posts `post_vnd` of a hold (voids it when 0); False when the hold had already ended
        without this post (expired), so what it was to pay is owed by a debit instead."""
        try:
            if post_vnd > 0:
                self.ledger.execute(PostHold(account_id, hold_id, post_vnd))
            else:
                self.ledger.execute(VoidHold(account_id, hold_id))
        except (HoldAlreadyResolved, HoldNotFound):
            return post_vnd == 0
        return True

    def _debit_rest(self, session: ParkingSession, rest_vnd: int) -> int:
        """Debits what the holds did not cover; 0 when the account cannot pay it."""
        if rest_vnd <= 0:
            return 0
        description = f"parking {session.lot_id} {session.plate_display} beyond the paid time"
        try:
            self.ledger.execute(
                Debit(session.account_id, rest_debit_id(session.id), rest_vnd, description)
            )
        except Contended:
            raise
        except LedgerError:
            return 0  # the account cannot pay it (no money, blocked, closed): left unpaid
        return rest_vnd


def seal(session: ParkingSession, at: datetime) -> ParkingDetailRecord:
    assert session.ended_at is not None
    return ParkingDetailRecord(
        session_id=session.id,
        lot_id=session.lot_id,
        operator_id=session.operator_id,
        table_id=session.table_id,
        versions=sorted({int(segment["version"]) for segment in session.segments}),
        plate=session.plate,
        vehicle_class=session.vehicle_class,
        account_id=session.account_id,
        started_at=session.started_at,
        started_by=session.started_by,
        ended_at=session.ended_at,
        ended_by=session.ended_by,
        segments=session.segments,
        fee_vnd=session.fee_vnd,
        held_vnd=session.held_vnd,
        posted_vnd=session.posted_vnd,
        debited_vnd=session.debited_vnd,
        unpaid_vnd=session.unpaid_vnd,
        sealed_at=at,
    )
