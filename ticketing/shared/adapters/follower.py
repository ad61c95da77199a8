"""Follows an application's notification log into SQL view tables, each event exactly once.

The position in the log is a tracking row written in the same transaction as the rows an event
produced, so a crash mid-section leaves both untouched and the section is simply read again.
The library's own projection runners need `recorder.subscribe()`, which its SQLite recorder
lacks; this follower pulls sections instead, and so runs the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ticketing.shared.domain.invariants import require
from ticketing.shared.following import FOLLOW_POLL_S, catch_up, follow, next_section

# Notifications applied in one transaction.
FOLLOW_SECTION_MAX = 500

tracking_metadata = MetaData()
tracking = Table(
    "projection_tracking",
    tracking_metadata,
    Column("projection", String(64), primary_key=True),
    Column("application_name", String(64), nullable=False),
    Column("notification_id", BigInteger, nullable=False),
)

log = logging.getLogger(__name__)


class ViewProjection(Protocol):
    """What a follower needs to know about one projection."""

    name: str  # the tracking row's key
    topics: tuple[str, ...]  # the event topics it reads
    tables: tuple[Table, ...]  # its view tables, in creation order

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        """Writes the rows of one section of events, inside the caller's transaction;
        `position` is where the section ends in the log, a version clients can ask since."""


class SqlTrackingRecorder(TrackingRecorder):
    """The follower's position in the log, one row per projection."""

    def __init__(self, engine: Engine, projection: str) -> None:
        self.engine = engine
        self.projection = projection

    def insert_tracking(self, tracking_: Tracking) -> None:
        with self.engine.begin() as conn:
            expected = conn.execute(
                select(tracking.c.notification_id).where(tracking.c.projection == self.projection)
            ).scalar_one()
            _advance(conn, self.projection, int(expected), tracking_.notification_id)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tracking.c.notification_id, tracking.c.application_name).where(
                    tracking.c.projection == self.projection
                )
            ).first()
        if row is None or row.application_name != application_name or row.notification_id == 0:
            return None
        return int(row.notification_id)


class Follower:
    """Applies one projection's events from one application's log to SQL tables."""

    def __init__(
        self,
        app: Application[UUID],
        engine: Engine,
        projection: ViewProjection,
        *,
        section_size: int = FOLLOW_SECTION_MAX,
    ) -> None:
        require(0 < section_size <= FOLLOW_SECTION_MAX, "sections are bounded")
        require(section_size <= app.log_section_size, "the log serves sections this large")
        self.app = app
        self.engine = engine
        self.projection = projection
        self.section_size = section_size
        self.tracking = SqlTrackingRecorder(engine, projection.name)
        self.wake = threading.Event()

    def create_tables(self) -> None:
        tracking_metadata.create_all(self.engine)
        for table in self.projection.tables:
            table.create(self.engine, checkfirst=True)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(tracking).values(
                        projection=self.projection.name,
                        application_name=self.app.name,
                        notification_id=0,
                    )
                )
        except IntegrityError:
            pass  # Another process, or an earlier start, created the row.

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.app.name) or 0

    def lag(self) -> int:
        """Notifications in the log that the follower has not reached yet."""
        head = self.app.recorder.max_notification_id() or 0
        return max(0, head - self.position())

    def pull(self) -> int:
        """Applies one section of new events; returns how many were applied."""
        start = self.position()
        section = next_section(
            self.app, start, limit=self.section_size, topics=self.projection.topics
        )
        if section is None:
            return 0
        # A section of none of the projection's topics still moves the position (to the head).
        notifications, end = section.notifications, section.end
        events = [self.app.mapper.to_domain_event(n) for n in notifications]
        try:
            with self.engine.begin() as conn:
                # Claim the section first: a second follower on the same tables waits here,
                # then finds the position moved and backs off without applying anything twice.
                _advance(conn, self.projection.name, start, end)
                self.projection.apply(conn, events, end)
        except _Overtaken:
            log.info("another follower of %s went past %s first", self.projection.name, start)
            return 0
        return len(notifications)

    def catch_up(self) -> int:
        """Applies every new event in the log; returns how many."""
        return catch_up(self.pull)

    def rebuild(self) -> int:
        """Drops the view tables and the position, then builds everything again from the log."""
        with self.engine.begin() as conn:
            for table in reversed(self.projection.tables):
                table.drop(conn, checkfirst=True)
            conn.execute(tracking.delete().where(tracking.c.projection == self.projection.name))
        self.create_tables()
        return self.catch_up()

    def run(self, stop: threading.Event, *, poll_s: float = FOLLOW_POLL_S) -> None:
        """Follows the log until `stop` is set; `wake` shortens the wait after a local save."""
        name = f"follower {self.projection.name}"
        follow(self.pull, stop=stop, wake=self.wake, poll_s=poll_s, name=name)


class _Overtaken(Exception):
    """The tracked position moved under this follower."""


def _advance(conn: Connection, projection: str, expected: int, new: int) -> None:
    require(new > expected, "the tracked position only moves forward")
    result = conn.execute(
        update(tracking)
        .where(tracking.c.projection == projection, tracking.c.notification_id == expected)
        .values(notification_id=new)
    )
    if result.rowcount != 1:
        raise _Overtaken
