"""The movements of a cycle not yet closed, and where its cut-off falls.

The cut is made in the store's order: the first money movement the ledger recorded at or after
the business day's end (its `at`, the ledger's clock) opens the next cycle, and the cut-off is
the notification just before it. Everything committed before that movement is in this cycle,
and everything after it is in the next, whatever time it carries: a ride before midnight whose
charge was committed after the first movement of the next day lands in the next cycle. When no
movement of the next day is committed yet, the cut-off is the log's head as the scan began; an
event committed later lands in the next cycle too. Purse payments, which are the journeys'
events, are cut the same way in the journeys' log, by when each payment was recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application

from clearing.application.ledger_movements import ClassifiedMovement, ledger_movements
from ticketing.shared.domain.invariants import InvariantViolated, require

# The movements of a log with ids in (after, cut-off], in id order.
Reader = Callable[[Application[UUID], int, int], Iterator[ClassifiedMovement]]


class CycleScan:
    """Iterate once for the cycle's movements in one log (the ledger's, or the journeys' for
    purse payments); `cut_off` is known when the iteration ends."""

    def __init__(
        self,
        log: Application[UUID],
        position: int,
        day_end: datetime,
        read: Reader = ledger_movements,
    ) -> None:
        self._log = log
        self._read = read
        self._position = position
        self._day_end = day_end
        self._head = max(position, log.recorder.max_notification_id() or 0)
        self._cut_off: int | None = None

    @property
    def cut_off(self) -> int:
        cut_off = self._cut_off
        if cut_off is None:
            raise InvariantViolated("the cut-off is known once the scan has ended")
        return cut_off

    def __iter__(self) -> Iterator[ClassifiedMovement]:
        require(self._cut_off is None, "a scan is iterated once")
        for item in self._read(self._log, self._position, self._head):
            if item.at is None:
                raise InvariantViolated("a ledger movement carries when it was recorded")
            if item.at >= self._day_end:
                self._cut_off = item.notification_id - 1
                return
            yield item
        self._cut_off = self._head
