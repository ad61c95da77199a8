"""The aggregates one section of taps works on: each read once, changed in memory tap after tap,
and saved together with the section's tracking record, or thrown away together.

A section asks its `LogCheckedCache` first (a rider seen in an earlier section costs no read); a
section with no cache reads the store, as the follower does when it applies a tap alone.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.domain import Aggregate

from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.rider_journeys import RiderJourneys
from ticketing.journeys.domain.rider_passes import RiderPasses
from ticketing.shared.log_checked_cache import LogCheckedCache

Load = Callable[[UUID], Aggregate | None]


class Section:
    def __init__(self, load: Load, cache: LogCheckedCache | None = None) -> None:
        self._load = load
        self._cache = cache
        # Everything handed out, so a later tap of the section gets the same object.
        self._held: dict[UUID, Aggregate | None] = {}
        # The version each was handed out at; None for one the section made.
        self._versions: dict[UUID, int | None] = {}

    def journey(self, journey_id: UUID) -> Journey | None:
        found = self._get(journey_id)
        return found if isinstance(found, Journey) else None

    def book(self, account_id: UUID) -> RiderJourneys:
        book_id = RiderJourneys.create_id(account_id)
        found = self._get(book_id)
        if isinstance(found, RiderJourneys):
            return found
        book = RiderJourneys(account_id=account_id)
        self.keep(book)
        return book

    def passes(self, account_id: UUID) -> RiderPasses | None:
        found = self._get(RiderPasses.create_id(account_id))
        return found if isinstance(found, RiderPasses) else None

    def keep(self, *aggregates: Aggregate) -> None:
        """Holds aggregates the section made (a new journey, a rider's first book)."""
        for aggregate in aggregates:
            self._held[aggregate.id] = aggregate
            self._versions[aggregate.id] = None
            if self._cache is not None:
                self._cache.put(aggregate.id, aggregate)

    def changed(self) -> list[Aggregate]:
        return [a for a in self._held.values() if a is not None and a.pending_events]

    def discard(self) -> None:
        """Forgets, in the cache too, the objects the section made or changed: they may hold
        changes the store does not (pending, or taken by a save that failed). What it only read
        is as the store has it and stays cached: a section thrown away because the ledger
        refused a rider's charge (most of them, when riders run short) reads nothing again."""
        if self._cache is not None:
            self._cache.forget(
                aggregate_id
                for aggregate_id, aggregate in self._held.items()
                if aggregate is not None and aggregate.version != self._versions[aggregate_id]
            )
        self._held.clear()
        self._versions.clear()

    def _get(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id not in self._held:
            if self._cache is None:
                found = self._load(aggregate_id)
            else:
                found = self._cache.get(aggregate_id, self._load)
            self._held[aggregate_id] = found
            self._versions[aggregate_id] = None if found is None else found.version
        return self._held[aggregate_id]
