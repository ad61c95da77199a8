"""Which of many aggregate ids have events in parking's store, in one query on PostgreSQL.

A batch of starts names a session and a plate for each; nearly all of them are new, and asking
the store about each (a query, or two for a plate: its snapshot, then its events) costs more
than writing them. On PostgreSQL one query answers for all of them. Other stores answer `None`
(not known), and the caller reads each id as it would have.
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from ticketing.shared.domain.invariants import require

# Ids asked about in one query.
RECORDED_IDS_MAX = 1_000


def recorded_ids(recorder: object, aggregate_ids: Collection[UUID]) -> set[UUID] | None:
    """The ids among `aggregate_ids` that have at least one event; None for a store that
    cannot answer for many at once."""
    require(len(aggregate_ids) <= RECORDED_IDS_MAX, "bounded by RECORDED_IDS_MAX")
    if not isinstance(recorder, PostgresAggregateRecorder):
        return None
    if not aggregate_ids:
        return set()
    statement = SQL(
        "SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s)"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, [list(aggregate_ids)])
        return {UUID(str(row["originator_id"])) for row in cursor.fetchall()}
