"""The parking aggregates of a section of a cycle's movements, read at once as clearing needs
them: each one's kind and operator (`AggregateOperator`).

On PostgreSQL, one statement selects, for every id asked for, only the aggregate's first event
(the one that creates it and names its operator, `aggregate_operators.CREATED_BY`), and only
its `operator_id` is decoded (`StateFields`); nothing is replayed. On any other store, or for
an id whose first event creates no aggregate clearing attributes, the aggregate is replayed
(`AggregateReads`), as the repository would read it.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import get_topic, resolve_topic

from clearing.adapters.aggregate_reads import IDS_PER_QUERY_MAX, AggregateReads
from clearing.adapters.fast_events import StateFields
from clearing.domain.aggregate_operators import CREATED_BY, OPERATOR_FIELDS, AggregateOperator
from ticketing.shared.adapters.event_rows import event_rows, events_statement

CREATED_TOPICS = sorted(get_topic(cls) for cls in CREATED_BY)
# Aggregates start at version 1 (`Aggregate._create`).
FIRST_VERSION = 1


class ParkingOperatorReads:
    """`get_many(ids)`: the parking aggregates found among `ids` (`AggregateOperator` on
    PostgreSQL, else the replayed aggregate), by id; an id not found is absent."""

    def __init__(self, parking: Application[UUID]) -> None:
        recorder = parking.recorder
        self._recorder = recorder if isinstance(recorder, PostgresAggregateRecorder) else None
        self._replayed = AggregateReads(parking)
        self._states = StateFields(parking)

    def get_many(self, ids: Collection[UUID]) -> dict[UUID, Any]:
        if self._recorder is None:
            return self._replayed.get_many(ids)
        found: dict[UUID, Any] = {}
        wanted = iter(sorted(set(ids)))
        while chunk := list(islice(wanted, IDS_PER_QUERY_MAX)):
            found.update(self._created(self._recorder, chunk))
        rest = set(ids) - set(found)
        if rest:
            found.update(self._replayed.get_many(rest))
        return found

    def _created(
        self, recorder: PostgresAggregateRecorder, ids: list[UUID]
    ) -> dict[UUID, AggregateOperator]:
        statement = events_statement(
            recorder,
            "SELECT originator_id, originator_version, topic, state FROM {events} "
            "WHERE originator_id = ANY(%s) AND originator_version = %s AND topic = ANY(%s)",
        )
        rows = event_rows(recorder, statement, (ids, FIRST_VERSION, CREATED_TOPICS))
        fields = self._states.row_fields
        found = {}
        for aggregate_id, version, topic, state in rows:
            cls = resolve_topic(topic)
            operator_id = fields(cls, OPERATOR_FIELDS, aggregate_id, version, topic, state)
            found[aggregate_id] = AggregateOperator(CREATED_BY[cls], operator_id["operator_id"])
        return found
