"""The journeys of a section of a cycle's movements, read at once as clearing needs them.

On PostgreSQL, one statement selects, for every id asked for, the latest of the journey's
events that carry legs or a price. When it is a `Priced` that recorded the legs' standalone
fares (version 2 on), the journey is that event's `PricedJourney`: the legs have not changed
since, and nothing else of the journey is read. The other journeys (priced before fares were
recorded, or with legs changed since their last pricing) are read by their legs: a second
statement selects only the events that carry them (`journey_legs.LEG_FIELDS`), only the
fields needed are decoded (`StateFields`), and `journey_legs` applies them. No aggregate is
replayed: a journey read either way has what the repository's `Journey` says of its legs
(journeys are never snapshotted, and all their events are still stored). On any other store
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

from clearing.adapters.aggregate_reads import IDS_PER_QUERY_MAX, AggregateReads
from clearing.adapters.fast_events import StateFields
from clearing.domain.journey_legs import LEG_FIELDS, PricedJourney, journey_legs, priced_legs
from ticketing.journeys.domain.journey import Journey
from ticketing.shared.adapters.event_rows import event_rows, events_statement

LEG_TOPICS = sorted(get_topic(cls) for cls in LEG_FIELDS)
PRICED_TOPIC = get_topic(Journey.Priced)
# The fields of a `Priced` state read to attribute its journey.
PRICED_FIELDS = ("leg_fares",)
PRICED_TOPICS = sorted([*LEG_TOPICS, PRICED_TOPIC])
LEG_FARES_KEY = b'"leg_fares"'


class JourneyLegReads:
    """`get_many(ids)`: the journeys found among `ids` (`PricedJourney` or `JourneyLegs` on
    PostgreSQL, else the repository's `Journey`), by id; an id that is no journey is absent."""

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
            by_legs = []
            for journey_id, journey in self._priced(self._recorder, chunk):
                if journey is None:
                    by_legs.append(journey_id)
                else:
                    found[journey_id] = journey
            if by_legs:
                found.update(self._read(self._recorder, by_legs))
        return found

    def _priced(
        self, recorder: PostgresAggregateRecorder, ids: list[UUID]
    ) -> Iterator[tuple[UUID, PricedJourney | None]]:
        """Each id with a journey's latest event of legs or price: its `PricedJourney` when
        that is a `Priced` recording the legs' fares, else None (read by its legs)."""
        statement = events_statement(
            recorder,
            "SELECT ids.id, latest.originator_version, latest.topic, latest.state "
            "FROM unnest(%s) AS ids(id) CROSS JOIN LATERAL ("
            "SELECT originator_version, topic, state FROM {events} "
            "WHERE originator_id = ids.id AND topic = ANY(%s) "
            "ORDER BY originator_version DESC LIMIT 1) AS latest",
        )
        rows = event_rows(recorder, statement, (ids, PRICED_TOPICS))
        cls = Journey.Priced
        fields = self._states.row_fields
        for journey_id, version, topic, state in rows:
            # A `Priced` stored before version 2 has no leg fares: not decoded (and upcast)
            # only to find that out. Any state naming them is decoded, as the mapper would.
            if topic != PRICED_TOPIC or LEG_FARES_KEY not in state:
                yield journey_id, None
                continue
            leg_fares = fields(cls, PRICED_FIELDS, journey_id, version, topic, state)["leg_fares"]
            if leg_fares is None:
                yield journey_id, None
            else:
                yield journey_id, PricedJourney(journey_id, priced_legs(leg_fares))

    def _read(
        self, recorder: PostgresAggregateRecorder, ids: list[UUID]
    ) -> Iterator[tuple[UUID, Any]]:
        statement = events_statement(
            recorder,
            "SELECT originator_id, originator_version, topic, state FROM {events} "
            "WHERE originator_id = ANY(%s) AND topic = ANY(%s) "
            "ORDER BY originator_id, originator_version",
        )
        rows = event_rows(recorder, statement, (ids, LEG_TOPICS))
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
