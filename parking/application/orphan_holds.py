"""Holds that no session took up: a start or an extension whose process died (or whose store
failed) after the hold was placed and before the session was saved, and whose client never
sent the request again. Nothing else names such a hold, so the sweeper releases it once it is
older than any request can take; a retry that comes later still finds its hold (voided) and the
session pays its fee by debit at the end instead.
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from uuid import UUID

from parking.application.sessions import Sessions
from parking.domain.ports import Clock
from parking.domain.session import HOLD_ID_PREFIX, ParkingSession
from ticketing.accounts.adapters.read_model import LedgerReadModel
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved, HoldNotFound

# Far longer than a request runs (the idempotency layer gives up on one after a minute).
ORPHAN_AFTER = timedelta(minutes=10)
ORPHANS_PER_SWEEP_MAX = 500
# `parking:<session hex>:start` and `parking:<session hex>:<extension digest>`; a reservation's
# hold (`:reservation`) belongs to the reservation, which closes it itself.
_SESSION_HOLD = re.compile(r"parking:(?P<session>[0-9a-f]{32}):(?P<step>start|[0-9a-f]{16})")


class OrphanHolds:
    def __init__(
        self, sessions: Sessions, ledger: Ledger, holds: LedgerReadModel, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.ledger = ledger
        self.holds = holds
        self.clock = clock

    def release(self) -> int:
        """Voids the pending session holds no session holds; returns how many."""
        placed_before = self.clock() - ORPHAN_AFTER
        pending = self.holds.pending_holds_placed_before(
            HOLD_ID_PREFIX, placed_before, limit=ORPHANS_PER_SWEEP_MAX
        )
        released = 0
        for account_id, hold_id in pending:
            if self._orphaned(hold_id):
                with contextlib.suppress(HoldAlreadyResolved, HoldNotFound):
                    self.ledger.execute(VoidHold(account_id, hold_id))
                    released += 1
        return released

    def _orphaned(self, hold_id: str) -> bool:
        matched = _SESSION_HOLD.fullmatch(hold_id)
        if matched is None:
            return False
        found = self.sessions.store.get_or_none(UUID(hex=matched["session"]))
        if not isinstance(found, ParkingSession):
            return True
        return all(hold["hold_id"] != hold_id for hold in found.holds)
