"""Clearing's event store: the book and its cycles."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from clearing.domain.book import BOOK_ID, ClearingBook
from clearing.domain.cycle import ClearingCycle
from ticketing.shared.observed import ObservedApplication

# The book gathers two events a day; a snapshot every month keeps its read short.
BOOK_SNAPSHOT_INTERVAL = 60


class ClearingStore(ObservedApplication):
    name = "Clearing"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {ClearingBook: BOOK_SNAPSHOT_INTERVAL}

    def book(self) -> ClearingBook:
        """The book, or a new one (saved with the first cycle it opens)."""
        try:
            book: ClearingBook = self.repository.get(BOOK_ID)
        except AggregateNotFoundError:
            return ClearingBook()
        return book

    def cycle_or_none(self, cycle_id: UUID) -> ClearingCycle | None:
        try:
            cycle: ClearingCycle = self.repository.get(cycle_id)
        except AggregateNotFoundError:
            return None
        return cycle
