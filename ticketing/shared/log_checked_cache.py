"""A batch writer's memory of the aggregates it reads and writes, kept between batches so the
next batch costs no read of the store for them: the journey follower's riders' books, passes and
journeys; the ledger's accounts and holds in `Ledger.execute_all`.

The batch writer is not the only writer of its store: passes are sold and accounts topped up over
HTTP, a service day is closed from the CLI, a second follower may race this one. Every write to
the store, whoever made it, appears in the store's own notification log, so before each batch
the cache reads the log from where it last looked. An aggregate a notification shows at the
version after the one held is moved on by that event (applied to a copy where a held aggregate
may be in a reader's hands, in place where not); one it shows further ahead is forgotten, to be
read again when asked for. With several writers on one store (two workers ending sessions of the
same riders), each sees the other's changes in the log it reads anyway, and reads no aggregate
again. What the writer saved itself is at the version held, and stays. A read that is still
stale (a write landing during the batch) meets the store's optimistic check when the batch is
saved, as a read from the store always could.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import Notification, Recording

from ticketing.shared.adapters.bulk_reads import (
    BULK_READ_MAX,
    Position,
    log_positions,
    notifications_with_ids,
    read_many,
)
from ticketing.shared.aggregate_copies import fresh_copy
from ticketing.shared.following import sections
from ticketing.shared.observed import LOG_SECTION_MAX

# Aggregates kept per cache (a rider's book, passes and a few live journeys; an account and
# its pending holds; a few KiB each).
LOG_CHECKED_CACHE_MAX = 20_000
# Notifications read per query while catching up with other writers: whole ones where the
# store reads nothing less, positions alone (id, aggregate, version) on PostgreSQL.
CACHE_REFRESH_READ_MAX = LOG_SECTION_MAX
CACHE_REFRESH_POSITIONS_MAX = 5_000

Load = Callable[[UUID], Aggregate | None]


class LogCheckedCache:
    """Aggregates by id, or None for an id known to be absent; least recently used go first."""

    def __init__(
        self,
        app: Application[UUID],
        *,
        size_max: int = LOG_CHECKED_CACHE_MAX,
        shared: bool = True,
    ) -> None:
        self._app = app
        # Whether a held aggregate may be in a reader's hands when the log moves it on (then
        # the event is applied to a copy); not for an owner that hands them out only while it
        # holds its own lock, under which it also refreshes.
        self._shared = shared
        self._size_max = size_max
        self._entries: OrderedDict[UUID, Aggregate | None] = OrderedDict()
        # Every change to the store up to this notification is reflected in the entries.
        self._seen_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, aggregate_id: object) -> bool:
        return aggregate_id in self._entries

    def get(self, aggregate_id: UUID, load: Load) -> Aggregate | None:
        if aggregate_id in self._entries:
            self._entries.move_to_end(aggregate_id)
            return self._entries[aggregate_id]
        found = load(aggregate_id)
        self.put(aggregate_id, found)
        return found

    def put(self, aggregate_id: UUID, aggregate: Aggregate | None) -> None:
        self._entries[aggregate_id] = aggregate
        self._entries.move_to_end(aggregate_id)
        while len(self._entries) > self._size_max:
            self._entries.popitem(last=False)

    def prefetch(self, aggregate_ids: Iterable[UUID]) -> None:
        """Reads the aggregates among these it does not hold, many in one query where the
        store can (`read_many`); elsewhere they are read one by one when asked for."""
        missing = list(dict.fromkeys(one for one in aggregate_ids if one not in self._entries))
        for start in range(0, len(missing), BULK_READ_MAX):
            found = read_many(self._app, missing[start : start + BULK_READ_MAX])
            if found is None:
                return
            for aggregate_id, aggregate in found.items():
                self.put(aggregate_id, aggregate)

    def forget(self, aggregate_ids: Iterable[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self._entries.pop(aggregate_id, None)

    def refresh(self) -> None:
        """Moves on, or forgets, what other writers changed since the last look."""
        if not self._entries:
            self._seen_id = self._app.recorder.max_notification_id() or 0
            return
        while True:
            positions = log_positions(self._app, self._seen_id, limit=CACHE_REFRESH_POSITIONS_MAX)
            if positions is None:  # a store that reads whole notifications only
                self._refresh_by_sections()
                return
            for notification in notifications_with_ids(self._app, self._wanted(positions)):
                self._check(notification)
            if positions:
                self._seen_id = positions[-1][0]
            if len(positions) < CACHE_REFRESH_POSITIONS_MAX:
                return

    def _refresh_by_sections(self) -> None:
        for section in sections(self._app, self._seen_id, limit=CACHE_REFRESH_READ_MAX):
            for notification in section.notifications:
                self._check(notification)
            self._seen_id = section.end

    def _wanted(self, positions: list[Position]) -> list[int]:
        """The notifications that move held aggregates on; forgets those it shows further
        ahead than the next version."""
        wanted: list[int] = []
        reached: dict[UUID, int] = {}
        for notification_id, originator_id, version in positions:
            if originator_id not in self._entries:
                continue
            held = self._entries[originator_id]
            at = reached.get(originator_id, 0 if held is None else held.version)
            if version <= at:
                continue
            if version == at + 1:
                reached[originator_id] = version
                wanted.append(notification_id)
            else:
                del self._entries[originator_id]
                reached.pop(originator_id, None)
        return wanted

    def saved(self, recordings: list[Recording[UUID]]) -> None:
        """Moves past the follower's own save when nobody else wrote before it, so the next
        refresh reads nothing; otherwise the next refresh reads the gap and keeps what it saved."""
        ids = sorted(recording.notification.id for recording in recordings)
        if ids and ids[0] == self._seen_id + 1 and ids[-1] - ids[0] + 1 == len(ids):
            self._seen_id = ids[-1]

    def _check(self, notification: Notification) -> None:
        originator_id = notification.originator_id
        if not isinstance(originator_id, UUID) or originator_id not in self._entries:
            return
        held = self._entries[originator_id]
        version = notification.originator_version
        held_version = 0 if held is None else held.version
        if held_version >= version:
            return
        if held_version + 1 == version:
            event = self._app.mapper.to_domain_event(notification)
            assert isinstance(event, CanMutateAggregate), "the log holds aggregates' events"
            base = held if held is None or not self._shared else fresh_copy(held)
            moved = event.mutate(base)
            assert isinstance(moved, Aggregate), "an event moves its aggregate on"
            self._entries[originator_id] = moved
        else:
            del self._entries[originator_id]
