"""Following an application's notification log: one way to read what is new, in sections, and
one loop that keeps a follower up with the log.

Every reader of the log (the SQL view followers, the journey follower, the caches checked
against the log) reads the head first and then sections below it. Every id up to a committed
head is itself committed (the stores serialise inserts), so a section shorter than asked means
nothing it asked for lies between its last notification and the head: a reader may move up to
the head, past notifications of topics it does not read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

# When idle, how often a follower looks for events written by other processes.
FOLLOW_POLL_S = 0.25

log = logging.getLogger(__name__)

Pull = Callable[[], int]


@dataclass(frozen=True)
class Section:
    """Notifications read in one query, and the position in the log a reader reaches with them:
    the last one's id when the section is full, otherwise the head."""

    notifications: Sequence[Notification]
    end: int


def sections(
    app: Application[UUID], start: int, *, limit: int, topics: Sequence[str] = ()
) -> Iterator[Section]:
    """The notifications after position `start`, of `topics` (all when empty), in sections of
    at most `limit`, up to the head of the log as it was when the first section was asked for.
    Nothing is read until then; a caller wanting only the next section stops after one."""
    head = app.recorder.max_notification_id() or 0
    while start < head:
        notifications = app.notification_log.select(
            start=start + 1, limit=limit, stop=head, topics=topics
        )
        end = notifications[-1].id if len(notifications) == limit else head
        yield Section(notifications, end)
        start = end


def next_section(
    app: Application[UUID], start: int, *, limit: int, topics: Sequence[str] = ()
) -> Section | None:
    """The first of `sections`, or None when the log holds nothing after `start`."""
    return next(sections(app, start, limit=limit, topics=topics), None)


def catch_up(pull: Pull, stop: threading.Event | None = None) -> int:
    """Pulls until a pull applies nothing, or `stop` is set between two pulls; returns how many
    were applied in all."""
    applied = 0
    while not (stop is not None and stop.is_set()) and (count := pull()):
        applied += count
    return applied


def follow(
    pull: Pull, *, stop: threading.Event, wake: threading.Event, poll_s: float, name: str
) -> None:
    """Catches up, then waits for `wake` (set after a local save) or `poll_s`, until `stop`.

    A follower must outlive a passing fault (a database restarting): it is logged and the
    follower carries on from its tracked position, so nothing is lost or applied twice. A stop
    is honoured after the section being applied, not after the whole backlog: whoever stops the
    follower closes the stores next, and a pull still reading from a closed SQLite connection
    crashed the process (a segfault, seen closing the app after a thousand taps)."""
    while not stop.is_set():
        try:
            applied = catch_up(pull, stop)
        except Exception:
            log.exception("%s failed; retrying", name)
            applied = 0
        if not applied:
            wake.wait(poll_s)
            wake.clear()
