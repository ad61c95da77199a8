"""Releases holds left past their expiry: abandoned metro entries, parking never ended."""

from __future__ import annotations

from ticketing.accounts.adapters.ledger_follower import LedgerFollower
from ticketing.accounts.adapters.read_model import LedgerReadModel
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import ExpireHold
from ticketing.accounts.domain.errors import LedgerError

SWEEP_BATCH_MAX = 200
SWEEP_BATCHES_MAX = 100


def sweep_expired_holds(
    ledger: Ledger, read_model: LedgerReadModel, follower: LedgerFollower
) -> tuple[int, int]:
    """Expires due holds in bounded batches; returns (expired, refused).

    The read model finds the candidates; the ledger decides, so a hold the read model still
    shows as pending but that was posted meanwhile is refused, not expired."""
    expired = refused = 0
    for _ in range(SWEEP_BATCHES_MAX):
        follower.catch_up()
        due = read_model.due_holds(now=ledger.now(), limit=SWEEP_BATCH_MAX)
        if not due:
            break
        results = ledger.execute_batch([ExpireHold(a, h) for a, h in due])
        failed = sum(isinstance(r, LedgerError) for r in results)
        expired += len(results) - failed
        refused += failed
        if failed == len(results):
            break  # nothing moved, so the same holds would come back
    return expired, refused
