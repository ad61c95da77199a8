"""Detail records: read, and corrected by credits refunded to the transport account.

The credit is saved on the record first and refunded after, under a reference derived from the
record and the credit's number: a retry of the same credit id refunds once, and a refund the
process did not live to make is made by that retry.
"""

from __future__ import annotations

from uuid import UUID

from parking.application.store import ParkingStore
from parking.domain.errors import RecordNotFound
from parking.domain.ports import Clock
from parking.domain.record import ParkingDetailRecord, credit_reference, record_id_for
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import TopUp
from ticketing.shared.optimistic import save_with_retries


def record_of(store: ParkingStore, session_id: UUID) -> ParkingDetailRecord:
    found: ParkingDetailRecord | None = store.get_or_none(record_id_for(session_id))
    if not isinstance(found, ParkingDetailRecord):
        raise RecordNotFound(session_id)
    return found


class Records:
    def __init__(self, store: ParkingStore, ledger: Ledger, clock: Clock) -> None:
        self.store = store
        self.ledger = ledger
        self.clock = clock

    def get(self, session_id: UUID) -> ParkingDetailRecord:
        return record_of(self.store, session_id)

    def credit(
        self, session_id: UUID, credit_id: str, amount_vnd: int, reason: str
    ) -> ParkingDetailRecord:
        def attempt() -> ParkingDetailRecord:
            record = record_of(self.store, session_id)
            if not record.credit_repeats(credit_id, amount_vnd, reason):
                record.check_credit(amount_vnd, reason)
                number = len(record.credits) + 1
                record.credit(credit_id, number, amount_vnd, reason, self.clock())
                self.store.save(record)
            return record

        record = save_with_retries(attempt, what=f"parking record of {session_id}")
        number = int(record.credits[credit_id]["number"])
        self.ledger.execute(
            TopUp(record.account_id, amount_vnd, credit_reference(record.id, number))
        )
        return record
