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
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import resolve_topic

from clearing.adapters.fast_events import FieldsOf, StateFields, fast_mapper
from ticketing.shared.adapters.event_rows import event_rows, events_statement
from ticketing.shared.domain.invariants import require

# Rows per query on PostgreSQL: a page of money events is a megabyte or two.
LOG_PAGE_MAX = 5_000


def log_events(
    app: Application[UUID], after: int, cut_off: int, topics: tuple[str, ...], page: int
) -> Iterator[tuple[int, object]]:
    """(notification id, event) of `topics` with ids in `after` < id <= `cut_off`, in id
    order. `page` bounds the rows read at once from a notification log."""
    to_event = fast_mapper(app).to_domain_event
    for notification_id, originator_id, version, topic, state in _rows(
        app, after, cut_off, topics, page
    ):
        yield notification_id, to_event(StoredEvent(originator_id, version, topic, state))


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
    fields = StateFields(app).row_fields
    for notification_id, found, version, topic, state in _rows(app, after, cut_off, topics, page):
        cls = resolve_topic(topic)
        names = fields_of(cls)
        if names is None:
            continue
        # The applications' ids are UUIDs: a store giving text ids has them converted, as the
        # mapper converts them.
        originator_id = found if isinstance(found, UUID) else UUID(found)
        yield notification_id, originator_id, cls, fields(cls, names, found, version, topic, state)


# A row of the events table: notification id, originator id, version, topic, state.
Row = tuple[int, "UUID | str", int, str, bytes]


def _rows(
    app: Application[UUID], after: int, cut_off: int, topics: tuple[str, ...], page: int
) -> Iterator[Row]:
    recorder = app.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        yield from _postgres_rows(recorder, after, cut_off, topics)
        return
    start = after
    while start < cut_off:
        notifications = app.notification_log.select(
            start=start + 1, limit=page, stop=cut_off, topics=topics
        )
        for notification in notifications:
            require(start < notification.id <= cut_off, "notifications come in id order")
            start = notification.id
            yield (
                notification.id,
                notification.originator_id,
                notification.originator_version,
                notification.topic,
                notification.state,
            )
        if len(notifications) < page:
            return


def _postgres_rows(
    recorder: PostgresApplicationRecorder, after: int, cut_off: int, topics: tuple[str, ...]
) -> Iterator[Row]:
    """The rows a page at a time; the next page is asked for (in a thread of its own) as soon
    as this one has come, so the store finds it while this process decodes this one."""
    statement = events_statement(
        recorder,
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {events} WHERE notification_id > %s AND notification_id <= %s "
        "AND topic = ANY(%s) ORDER BY notification_id LIMIT %s",
    )
    wanted = list(topics)

    def page(start: int) -> list[tuple[Any, ...]]:
        return event_rows(recorder, statement, (start, cut_off, wanted, LOG_PAGE_MAX))

    start = after
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearing-log") as reader:
        coming = reader.submit(page, start) if start < cut_off else None
        while coming is not None:
            rows = coming.result()
            last = rows[-1][0] if rows else cut_off
            full = len(rows) == LOG_PAGE_MAX and last < cut_off
            coming = reader.submit(page, last) if full else None
            for notification_id, originator_id, version, topic, state in rows:
                require(start < notification_id <= cut_off, "notifications come in id order")
                start = notification_id
                yield notification_id, originator_id, version, topic, state
