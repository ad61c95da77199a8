"""The enforcement index: what an officer's check needs of every plate in every lot, kept in hot
state so a check is answered without the event store.

One entry per plate aggregate (`PlateAtLot`), written from its events: the open session and
its paid end, or none, with the aggregate's version. The event store stays the truth; the index
is a copy that may be lost at any time. So:

* every write carries the aggregate's version, and a write older than the stored one is
  dropped (stores compare atomically), so a late writer never puts an older answer over a newer;
* a missing entry means "never recorded" only while the index is known complete: a marker,
  kept in the same store as the entries (a flush removes both), written by the index follower
  once it has written every plate event of the log from the start. Without the marker a check
  reads the event store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from parking.domain.occupancy import PlateAtLot
from ticketing.shared.domain.invariants import require

MS_PER_DAY = 24 * 60 * 60 * 1000
# How long an entry lives after its last write: a month, the longest hot state keeps anything.
# An open session's answer matters until it is closed, within the longest stay (a week) unless
# the sweeper is stopped; the marker never outlives an entry it vouches for (below).
INDEX_ENTRY_TTL_MS = 31 * MS_PER_DAY
# The follower writes every plate again from the start of the log this often, so every entry
# is rewritten (a full lifetime again) long before the marker of the last pass expires.
INDEX_RENEW_AFTER_MS = 7 * MS_PER_DAY
# Between the clocks of the processes that start a pass and the store that times keys out.
INDEX_CLOCK_MARGIN_MS = 60 * 60 * 1000
# Entries one in-process index holds; a full one stops vouching for itself (see the adapter).
INDEX_ENTRIES_MAX = 2_000_000
_FIELD_SEPARATOR = "|"


class IndexUnavailable(Exception):
    """The index's store cannot be reached or refused a write: an operating condition."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A plate in a lot after its aggregate's event of `version`: the open session, or none."""

    plate_id: UUID
    version: int
    session_id: UUID | None
    paid_until: datetime | None

    def __post_init__(self) -> None:
        require(self.version >= 1, "aggregate versions start at 1")
        require(
            (self.session_id is None) == (self.paid_until is None),
            "an open session always has a paid end",
        )

    def encoded(self) -> bytes:
        """`version|session|paid_until`, ASCII; the version first, where a store's atomic
        compare reads it."""
        session = "" if self.session_id is None else self.session_id.hex
        paid = "" if self.paid_until is None else self.paid_until.isoformat()
        return _FIELD_SEPARATOR.join((str(self.version), session, paid)).encode("ascii")

    @classmethod
    def decoded(cls, plate_id: UUID, value: bytes) -> IndexEntry:
        version, session, paid = value.decode("ascii").split(_FIELD_SEPARATOR)
        return cls(
            plate_id,
            int(version),
            UUID(hex=session) if session else None,
            datetime.fromisoformat(paid) if paid else None,
        )


@dataclass(frozen=True, slots=True)
class IndexRead:
    """One look at the index: whether it is known complete, and the plate's entry if any."""

    complete: bool
    entry: IndexEntry | None


@dataclass(frozen=True, slots=True)
class IndexCursor:
    """Where the index follower is in the parking log, and when (wall clock, ms since the
    epoch) its current pass started from the beginning of the log."""

    position: int
    pass_started_ms: int

    def encoded(self) -> bytes:
        return f"{self.position}{_FIELD_SEPARATOR}{self.pass_started_ms}".encode("ascii")

    @classmethod
    def decoded(cls, value: bytes) -> IndexCursor:
        position, started = value.decode("ascii").split(_FIELD_SEPARATOR)
        return cls(int(position), int(started))


def marker_ttl_ms(cursor: IndexCursor, now_ms: int) -> int:
    """How long a marker written now may live: every entry was written (or rewritten) since
    the pass started, so each lives at least until the pass's start plus an entry's lifetime;
    the marker must be gone by then. 0 when that time has passed (no marker)."""
    ends_ms = cursor.pass_started_ms + INDEX_ENTRY_TTL_MS - INDEX_CLOCK_MARGIN_MS
    return max(0, min(ends_ms - now_ms, INDEX_ENTRY_TTL_MS))


def entries_of(events: Iterable[object]) -> list[IndexEntry]:
    """The entries the plate events among `events` leave, in order; other events are skipped.
    Each plate event fixes the whole answer (the session and its paid end, or none)."""
    entries = []
    for e in events:
        if isinstance(e, PlateAtLot.Seen | PlateAtLot.Opened | PlateAtLot.PaidUntil):
            session_id, paid_until = e.session_id, e.paid_until
        elif isinstance(e, PlateAtLot.Closed):
            session_id, paid_until = None, None
        else:
            continue
        entries.append(IndexEntry(e.originator_id, e.originator_version, session_id, paid_until))
    return entries


PLATE_EVENT_TOPICS = tuple(
    cls.TOPIC
    for cls in (PlateAtLot.Seen, PlateAtLot.Opened, PlateAtLot.PaidUntil, PlateAtLot.Closed)
)


class EnforcementIndex(Protocol):
    """The enforcement index's store. Every method raises `IndexUnavailable` when the store
    cannot serve it."""

    def put(self, entries: Iterable[IndexEntry]) -> None:
        """Writes each entry unless the stored one has a higher version (an equal version is
        written again, and lives a full lifetime again); each compare is atomic."""
        ...

    async def read(self, plate_id: UUID) -> IndexRead:
        """The marker and the plate's entry, read together (for the event loop)."""
        ...

    def cursor(self) -> IndexCursor | None:
        """The index follower's cursor, or None when there is none (never built, or lost)."""
        ...

    def move_cursor(
        self, expected: IndexCursor | None, new: IndexCursor, *, marker_ttl_ms: int
    ) -> bool:
        """Atomically: if the cursor is still `expected`, sets it to `new` and, with a
        positive `marker_ttl_ms`, writes the marker to live that long; False otherwise."""
        ...

    def forget(self) -> None:
        """Removes the marker and the cursor: the index is cold until a pass rebuilds it."""
        ...

    def close(self) -> None: ...
