"""Many aggregates of one application read at once: one query for a whole section of a cycle's
movements, where reading them one by one costs a round trip (and a query plan) each.

On PostgreSQL the events of every id asked for are selected in one statement and each
aggregate is replayed from them, as the repository replays one. The aggregates clearing reads
(journeys, parking sessions, detail records, reservations) are never snapshotted, and their
events are all still stored, so the replay from the first event is the aggregate the
repository would give. On any other store each id is read by the repository, one by one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from itertools import groupby, islice
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder

from ticketing.shared.adapters.event_rows import event_rows, events_statement

# Ids per statement: a section's journeys, a few hundred kilobytes of events.
IDS_PER_QUERY_MAX = 2_000


class AggregateReads:
    """`get_many(ids)`: the aggregates found among `ids`, by id; an id not found is absent."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        recorder = app.recorder
        self._recorder = recorder if isinstance(recorder, PostgresAggregateRecorder) else None

    def get_many(self, ids: Collection[UUID]) -> dict[UUID, Any]:
        found: dict[UUID, Any] = {}
        if self._recorder is None:
            for aggregate_id in ids:
                aggregate = self._one(aggregate_id)
                if aggregate is not None:
                    found[aggregate_id] = aggregate
            return found
        wanted = iter(sorted(set(ids)))
        while chunk := list(islice(wanted, IDS_PER_QUERY_MAX)):
            found.update(self._replayed(self._recorder, chunk))
        return found

    def _one(self, aggregate_id: UUID) -> Any:
        try:
            return self.app.repository.get(aggregate_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            return None

    def _replayed(
        self, recorder: PostgresAggregateRecorder, ids: list[UUID]
    ) -> Iterator[tuple[UUID, Any]]:
        statement = events_statement(
            recorder,
            "SELECT originator_id, originator_version, topic, state FROM {events} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version",
        )
        rows = event_rows(recorder, statement, (ids,))
        mapper = self.app.mapper
        for aggregate_id, events in groupby(rows, key=itemgetter(0)):
            aggregate: Any = None
            for originator_id, version, topic, state in events:
                stored = StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                aggregate = mapper.to_domain_event(stored).mutate(aggregate)  # type: ignore[attr-defined]
            if aggregate is not None:
                yield aggregate_id, aggregate
