"""Many aggregates of one PostgreSQL store read in one query, for a batch about to change them.

The library reads one aggregate at a time: its latest snapshot, then the events after it, two
queries each. A batch of a hundred ledger commands in a process that has not seen its accounts
yet (a worker just started, or the accounts last changed by another worker) would wait on two
hundred round trips. Here one statement returns, for every id asked, its latest snapshot (when
the store keeps snapshots) and the events after it in order; each aggregate is rebuilt from
them as the library rebuilds it (the application's mapper, then each event's `mutate`).

The log is read the same way by a memory checking what other writers changed
(`LogCheckedCache.refresh`): first only each notification's id, aggregate and version (no
topic, no state), then, in one more query, the few notifications it moves an aggregate it holds
on with. A worker beside another reads every event the other writes, most of them about
aggregates it does not hold.

Stores other than PostgreSQL answer `None` (not known), and the caller reads as before.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, CanMutateAggregate, Snapshot
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from psycopg.sql import SQL, Composed, Identifier

from ticketing.shared.adapters.event_rows import event_rows, events_statement
from ticketing.shared.domain.invariants import require

# One notification in the log: its id, its aggregate and the aggregate's version.
Position = tuple[int, UUID, int]

# Ids read in one query.
BULK_READ_MAX = 1_000


def read_many(
    app: Application[UUID], aggregate_ids: Collection[UUID]
) -> dict[UUID, Aggregate | None] | None:
    """Each id's aggregate as stored, None for an id with no events; None for a store that
    cannot read many at once."""
    require(len(aggregate_ids) <= BULK_READ_MAX, "bounded by BULK_READ_MAX")
    recorder = app.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        return None
    found: dict[UUID, Aggregate | None] = dict.fromkeys(aggregate_ids)
    if not aggregate_ids:
        return found
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(_statement(app, recorder), {"ids": list(aggregate_ids)}, binary=True)
        for row in cursor.fetchall():
            originator_id = row["originator_id"]
            event = app.mapper.to_domain_event(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
            if isinstance(event, Snapshot):  # the aggregate made anew, events after it follow
                found[originator_id] = cast(Aggregate, event.mutate(None))
                continue
            assert isinstance(event, CanMutateAggregate), "the store holds aggregates' events"
            found[originator_id] = event.mutate(found[originator_id])
    return found


def _statement(app: Application[UUID], events: PostgresAggregateRecorder) -> Composed:
    schema = Identifier(events.datastore.schema)
    table = Identifier(events.events_table_name)
    snapshots = _snapshots_table(app)
    if snapshots is None:
        return SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%(ids)s::uuid[]) ORDER BY originator_id, originator_version"
        ).format(schema=schema, table=table)
    return SQL(
        "WITH s AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version, "
        "topic, state FROM {schema}.{snapshots} WHERE originator_id = ANY(%(ids)s::uuid[]) "
        "ORDER BY originator_id, originator_version DESC) "
        "SELECT originator_id, originator_version, topic, state, 0 AS part FROM s "
        "UNION ALL "
        "SELECT e.originator_id, e.originator_version, e.topic, e.state, 1 AS part "
        "FROM {schema}.{table} e LEFT JOIN s ON s.originator_id = e.originator_id "
        "WHERE e.originator_id = ANY(%(ids)s::uuid[]) "
        "AND e.originator_version > coalesce(s.originator_version, 0) "
        "ORDER BY originator_id, part, originator_version"
    ).format(schema=schema, table=table, snapshots=Identifier(snapshots))


def _snapshots_table(app: Application[UUID]) -> str | None:
    store: Any = app.snapshots
    if store is None:
        return None
    recorder = store.recorder
    require(isinstance(recorder, PostgresAggregateRecorder), "snapshots beside their events")
    table: str = recorder.events_table_name
    return table


def log_positions(app: Application[UUID], start: int, *, limit: int) -> list[Position] | None:
    """The positions of the first `limit` notifications after `start`, in order; None for a
    store that cannot read them alone. The stores commit notifications in the order of their
    ids (a table lock), so what one query sees is all of the log up to its last row."""
    recorder = app.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):
        return None
    statement = events_statement(
        recorder,
        "SELECT notification_id, originator_id, originator_version FROM {events} "
        "WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
    )
    return [(row[0], row[1], row[2]) for row in event_rows(recorder, statement, (start, limit))]


def notifications_with_ids(app: Application[UUID], ids: Collection[int]) -> list[Notification]:
    """The notifications with these ids, in order (read from PostgreSQL only)."""
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder), "positions came from PostgreSQL"
    if not ids:
        return []
    statement = events_statement(
        recorder,
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {events} "
        "WHERE notification_id = ANY(%s::bigint[]) ORDER BY notification_id",
    )
    return [
        Notification(
            id=row[0],
            originator_id=row[1],
            originator_version=row[2],
            topic=row[3],
            state=bytes(row[4]),
        )
        for row in event_rows(recorder, statement, (list(ids),))
    ]
