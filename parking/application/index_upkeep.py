"""Keeping the enforcement index (`parking.domain.enforcement_index`) up with the event store.

Two writers, with the same version rule:

* `IndexWriter`, called after every commit of the parking store, in the committing thread: the
  plate events just saved reach the index before the use case returns, so before the request
  that caused them is answered, and a check in any process sees them from then on.
* `IndexFollower`, a follower of the parking log like the view followers: it repairs what a
  writer missed (a process that died between its commit and its index write) and builds the
  index from the start of the log whenever it has no cursor (never built, or lost with the
  store), then writes the marker that lets checks trust a missing entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.application import Application

from parking.domain.enforcement_index import (
    INDEX_RENEW_AFTER_MS,
    PLATE_EVENT_TOPICS,
    EnforcementIndex,
    IndexCursor,
    IndexUnavailable,
    entries_of,
    marker_ttl_ms,
)
from ticketing.shared.domain.invariants import require
from ticketing.shared.following import FOLLOW_POLL_S, catch_up, follow, next_section

# Notifications read and written to the index in one step.
INDEX_SECTION_MAX = 500
MS_PER_S = 1000

log = logging.getLogger(__name__)


def wall_ms() -> int:
    return int(time.time() * MS_PER_S)


class IndexWriter:
    """An `after_events` hook of the parking store."""

    def __init__(self, index: EnforcementIndex) -> None:
        self.index = index

    def __call__(self, events: Sequence[object]) -> None:
        entries = entries_of(events)
        if not entries:
            return
        try:
            self.index.put(entries)
        except IndexUnavailable:
            # The commit stands; the index must not vouch for an answer it may now get wrong,
            # so it goes cold (checks read the event store) until the follower rebuilds it.
            log.warning("enforcement index not written; forgetting it", exc_info=True)
            try:
                self.index.forget()
            except IndexUnavailable:
                log.warning("enforcement index unreachable; its follower repairs it")


class IndexFollower:
    """Writes the parking log's plate events into the index, with its cursor in the index's own
    store: so a store that lost its keys has lost the cursor too, and the next pull starts a
    pass from the beginning of the log."""

    def __init__(
        self,
        store: Application[UUID],
        index: EnforcementIndex,
        *,
        now_ms: Callable[[], int] = wall_ms,
        section_size: int = INDEX_SECTION_MAX,
    ) -> None:
        require(0 < section_size <= store.log_section_size, "sections the log can serve")
        self.store = store
        self.index = index
        self.now_ms = now_ms
        self.section_size = section_size
        self.wake = threading.Event()

    def pull(self) -> int:
        """Writes one section of plate events; returns how many (0 at the head)."""
        cursor = self.index.cursor()
        now_ms = self.now_ms()
        if cursor is None or now_ms - cursor.pass_started_ms >= INDEX_RENEW_AFTER_MS:
            # A new pass from the start. A marker of the last pass stays until it expires:
            # every entry it vouches for outlives it.
            fresh = IndexCursor(0, now_ms)
            if not self.index.move_cursor(cursor, fresh, marker_ttl_ms=0):
                return 0  # another follower moved it; the next pull reads it again
            cursor = fresh
        section = next_section(
            self.store, cursor.position, limit=self.section_size, topics=PLATE_EVENT_TOPICS
        )
        if section is None:
            # At the head: a pass over an empty log is complete too. Written again each time,
            # as cheap as asking whether it is there.
            self.index.move_cursor(cursor, cursor, marker_ttl_ms=marker_ttl_ms(cursor, now_ms))
            return 0
        events = [self.store.mapper.to_domain_event(n) for n in section.notifications]
        self.index.put(entries_of(events))
        at_head = len(section.notifications) < self.section_size
        moved = self.index.move_cursor(
            cursor,
            IndexCursor(section.end, cursor.pass_started_ms),
            marker_ttl_ms=marker_ttl_ms(cursor, self.now_ms()) if at_head else 0,
        )
        return len(section.notifications) if moved else 0

    def catch_up(self) -> int:
        return catch_up(self.pull)

    def run(self, stop: threading.Event, *, poll_s: float = FOLLOW_POLL_S) -> None:
        """Follows the log until `stop` is set; `wake` shortens the wait after a local save."""
        follow(self.pull, stop=stop, wake=self.wake, poll_s=poll_s, name="enforcement index")
