"""The PostgreSQL recorder of tapledger's stores: the library's, with a cheaper write.

The library sends a commit's events as an array of a composite type in text, which escapes
every byte of every event's state with a regular expression, then waits for the insert's
answer before it sends the commit. Here the events go as four typed arrays in binary (ids,
versions, topics, states), and the whole transaction (begin, the table lock that keeps
notification ids in commit order, the notify, the insert, the commit) as one pipeline with one
sync: one round trip, and no statement waits on Python while the lock is held.

The table lock serialises every writer of the log, so it must be held no longer than the
server's own work: under load the library's writing thread waits for the GIL between the insert
and the commit while every other writer waits for the lock.

Nothing is server-prepared: psycopg may believe a statement prepared in a pipeline that a
duplicate aborted, and every later use on that connection would fail. Nothing is retried
either: a retry after the commit was sent would be refused as a repeat of the very events it
recorded (a conflict the caller reads as another writer's); the caller retries instead, reads
what is stored, and is told the truth.

`Settings.event_store_env` names this class as the library's application recorder, so every
store on PostgreSQL writes this way; a store with a recorder of its own (the taps' claims)
builds on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import get_topic
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from ticketing.shared.domain.invariants import require

BEGIN = SQL("BEGIN")
COMMIT = SQL("COMMIT")

Columns = tuple[list[Any], ...]


class PostgresEventRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        require(datastore.originator_id_type == "uuid", "stored aggregates have UUIDs")
        self.insert_typed_statement = SQL(
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), events=Identifier(events_table_name))
        self._notify_statement = SQL("NOTIFY {0}").format(Identifier(self.channel_name))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The events' notification ids, in the order given, once committed."""
        if not stored_events:
            return []
        insert, params = self.insert_statement(stored_events, **kwargs)
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as inserted,
        ):
            try:
                with conn.pipeline(), conn.cursor() as control:
                    control.execute(BEGIN, prepare=False)
                    for statement in self.lock_table_statements:
                        control.execute(statement, prepare=False)
                    control.execute(self._notify_statement, prepare=False)
                    inserted.execute(insert, params, prepare=False)
                    control.execute(COMMIT, prepare=False)
            except BaseException:
                # The pipeline skipped the commit: end the failed transaction here.
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        conn.rollback()
                raise
            return [notification_id for (notification_id,) in inserted.fetchall()]

    def insert_statement(
        self, stored_events: Sequence[StoredEvent], **_: Any
    ) -> tuple[Composed, Columns]:
        """The statement that inserts the events, and its parameters."""
        return self.insert_typed_statement, event_columns(stored_events)


def event_columns(stored_events: Sequence[StoredEvent]) -> Columns:
    """The events as the typed insert's four arrays."""
    return (
        [stored.originator_id for stored in stored_events],
        [stored.originator_version for stored in stored_events],
        [stored.topic for stored in stored_events],
        [stored.state for stored in stored_events],
    )


EVENT_RECORDER_TOPIC = get_topic(PostgresEventRecorder)
