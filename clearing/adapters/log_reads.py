"""The events of some topics in an application's log, between two notification ids, in id order.

On PostgreSQL they are selected from the events table directly, in pages of `LOG_PAGE_MAX`
rows as plain tuples in PostgreSQL's binary format: the query the notification log runs, but
with pages ten times its section (a cycle reads millions of events, and each page is a round
trip), without a dict made of every row, and with each state as its bytes rather than the hex
text the client would decode. On any other store they come from the application's
notification log, a section at a time. The rows are the same either way: `after` < id <=
`cut_off`, the topic one of `topics`, by id; each is decoded whole (`log_events`), or only the
fields a reader needs (`log_fields`), the values the application's mapper gives either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from clearing.adapters.fast_events import FieldsOf, StateFields, fast_mapper
from ticketing.shared.domain.invariants import require

# Rows per query on PostgreSQL: a page of money events is a megabyte or two.
LOG_PAGE_MAX = 5_000


def log_events(
    app: Application[UUID], after: int, cut_off: int, topics: tuple[str, ...], page: int
) -> Iterator[tuple[int, object]]:
    """(notification id, event) of `topics` with ids in `after` < id <= `cut_off`, in id
    order. `page` bounds the rows read at once from a notification log."""
    to_event = fast_mapper(app).to_domain_event
    for notification_id, stored in _stored(app, after, cut_off, topics, page):
        yield notification_id, to_event(stored)


def log_fields(
    app: Application[UUID],
    after: int,
    cut_off: int,
    topics: tuple[str, ...],
    page: int,
    fields_of: FieldsOf,
) -> Iterator[tuple[int, UUID, type[Any], dict[str, Any]]]:
    """(notification id, originator id, event class, the fields `fields_of` names of its
    state) of `topics` with ids in `after` < id <= `cut_off`, in id order; an event of a
    class `fields_of` does not want is skipped."""
    states = StateFields(app)
    for notification_id, stored in _stored(app, after, cut_off, topics, page):
        cls = resolve_topic(stored.topic)
        names = fields_of(cls)
        if names is None:
            continue
        # The applications' ids are UUIDs: a store giving text ids has them converted, as the
        # mapper converts them.
        found = stored.originator_id
        originator_id = found if isinstance(found, UUID) else UUID(found)
        yield notification_id, originator_id, cls, states.fields(stored, cls, names)


def _stored(
    app: Application[UUID], after: int, cut_off: int, topics: tuple[str, ...], page: int
) -> Iterator[tuple[int, StoredEvent]]:
    recorder = app.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        yield from _postgres_stored(recorder, after, cut_off, topics)
        return
    start = after
    while start < cut_off:
        notifications = app.notification_log.select(
            start=start + 1, limit=page, stop=cut_off, topics=topics
        )
        for notification in notifications:
            require(start < notification.id <= cut_off, "notifications come in id order")
            start = notification.id
            yield notification.id, notification
        if len(notifications) < page:
            return


def _postgres_stored(
    recorder: PostgresApplicationRecorder, after: int, cut_off: int, topics: tuple[str, ...]
) -> Iterator[tuple[int, StoredEvent]]:
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE notification_id > %s AND notification_id <= %s "
        "AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    wanted = list(topics)
    start = after
    while start < cut_off:
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            params = (start, cut_off, wanted, LOG_PAGE_MAX)
            cursor.execute(statement, params, prepare=True, binary=True)
            rows = cursor.fetchall()
        for notification_id, originator_id, version, topic, state in rows:
            require(start < notification_id <= cut_off, "notifications come in id order")
            start = notification_id
            yield notification_id, StoredEvent(originator_id, version, topic, bytes(state))
        if len(rows) < LOG_PAGE_MAX:
            return
