"""The journeys of a section of a cycle's movements, read at once as clearing needs them.

On PostgreSQL, one statement selects, for every id asked for, only the events that carry the
journey's legs, category and medium (`journey_legs.LEG_FIELDS`: about half of a journey's
events; its prices and charges are not read); only the fields it needs are decoded
(`StateFields`), and `journey_legs` applies them. No aggregate is replayed: a journey read
this way has the legs, category and medium the repository's `Journey` has (journeys are never
snapshotted, and all their events are still stored), and nothing else. On any other store
each journey is the repository's, read one by one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from itertools import groupby, islice
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from clearing.adapters.aggregate_reads import IDS_PER_QUERY_MAX, AggregateReads
from clearing.adapters.fast_events import StateFields
from clearing.domain.journey_legs import LEG_FIELDS, journey_legs

LEG_TOPICS = sorted(get_topic(cls) for cls in LEG_FIELDS)


class JourneyLegReads:
    """`get_many(ids)`: the journeys found among `ids` (`JourneyLegs` on PostgreSQL, else the
    repository's `Journey`), by id; an id that is no journey is absent."""

    def __init__(self, journeys: Application[UUID]) -> None:
        self.app = journeys
        recorder = journeys.recorder
        self._recorder = recorder if isinstance(recorder, PostgresAggregateRecorder) else None
        self._one_by_one = AggregateReads(journeys)
        self._states = StateFields(journeys)

    def get_many(self, ids: Collection[UUID]) -> dict[UUID, Any]:
        if self._recorder is None:
            return self._one_by_one.get_many(ids)
        found: dict[UUID, Any] = {}
        wanted = iter(sorted(set(ids)))
        while chunk := list(islice(wanted, IDS_PER_QUERY_MAX)):
            found.update(self._read(self._recorder, chunk))
        return found

    def _read(
        self, recorder: PostgresAggregateRecorder, ids: list[UUID]
    ) -> Iterator[tuple[UUID, Any]]:
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) AND topic = ANY(%s) "
            "ORDER BY originator_id, originator_version"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        # Plain tuples: the store's connections make a dict of every row, a cost per event.
        # Binary: a state comes as its bytes, not as hex text decoded here.
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(statement, (ids, LEG_TOPICS), prepare=True, binary=True)
            rows = cursor.fetchall()
        fields = self._states.row_fields
        for journey_id, events in groupby(rows, key=itemgetter(0)):
            changes = []
            for originator_id, version, topic, state in events:
                cls = resolve_topic(topic)
                names = LEG_FIELDS[cls]
                changes.append((cls, fields(cls, names, originator_id, version, topic, state)))
            journey = journey_legs(journey_id, changes)
            if journey is not None:
                yield journey_id, journey
