"""A section of taps thrown away (the ledger refused a charge) forgets, in the follower's cache,
only what it made or changed; what it only read stays cached and costs no second read."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ticketing.journeys.application.section import Section
from ticketing.shared.log_checked_cache import LogCheckedCache


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def count_one(self) -> None:
        self.count += 1


class Store:
    def __init__(self) -> None:
        self.app = Application[UUID]()
        self.reads: list[UUID] = []

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        self.reads.append(aggregate_id)
        found: Aggregate = self.app.repository.get(aggregate_id)
        return found


def test_a_discarded_section_keeps_what_it_only_read_and_forgets_what_it_changed() -> None:
    store = Store()
    read_only, changed, saved_then_failed = Counter(), Counter(), Counter()
    store.app.save(read_only, changed, saved_then_failed)
    cache = LogCheckedCache(store.app)
    section = Section(store.load, cache)
    assert section._get(read_only.id) is not None
    in_memory = section._get(changed.id)
    failing = section._get(saved_then_failed.id)
    made = Counter()
    section.keep(made)
    assert isinstance(in_memory, Counter)
    assert isinstance(failing, Counter)
    in_memory.count_one()
    failing.count_one()
    failing.collect_events()  # as a save that then failed would have taken them

    section.discard()

    store.reads.clear()
    again = Section(store.load, cache)
    for counter in (read_only, changed, saved_then_failed):
        again._get(counter.id)
    assert store.reads == [changed.id, saved_then_failed.id]
    assert cache.get(made.id, lambda _: None) is None
