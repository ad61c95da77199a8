"""The enforcement index in process memory: for the embedded default (one serving process) and
tests. The same rules as the Redis adapter: versions compared under one lock, every key timed
out, and the marker and the cursor lost together with the entries (`flush`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from uuid import UUID

from parking.domain.enforcement_index import (
    INDEX_ENTRIES_MAX,
    INDEX_ENTRY_TTL_MS,
    IndexCursor,
    IndexEntry,
    IndexRead,
    IndexUnavailable,
)
from ticketing.shared.domain.invariants import require

NS_PER_MS = 1_000_000


def monotonic_ms() -> int:
    return time.monotonic_ns() // NS_PER_MS


@dataclass(slots=True)
class _Timed:
    entry: IndexEntry
    expires_at_ms: int


class MemoryEnforcementIndex:
    def __init__(
        self, *, now_ms: Callable[[], int] = monotonic_ms, entries_max: int = INDEX_ENTRIES_MAX
    ) -> None:
        require(entries_max >= 1, "an index holds at least one entry")
        self._now_ms = now_ms
        self._entries_max = entries_max
        self._entries: dict[UUID, _Timed] = {}
        self._cursor: tuple[IndexCursor, int] | None = None
        self._marker_expires_at_ms: int | None = None
        self._lock = threading.Lock()

    def put(self, entries: Iterable[IndexEntry]) -> None:
        with self._lock:
            now_ms = self._now_ms()
            for entry in entries:
                stored = self._entries.get(entry.plate_id)
                if stored is not None and stored.expires_at_ms > now_ms:
                    if stored.entry.version > entry.version:
                        continue
                elif len(self._entries) >= self._entries_max:
                    self._make_room(now_ms)
                self._entries[entry.plate_id] = _Timed(entry, now_ms + INDEX_ENTRY_TTL_MS)

    async def read(self, plate_id: UUID) -> IndexRead:
        return self.read_now(plate_id)

    def read_now(self, plate_id: UUID) -> IndexRead:
        with self._lock:
            now_ms = self._now_ms()
            complete = self._marker_expires_at_ms is not None and (
                self._marker_expires_at_ms > now_ms
            )
            stored = self._entries.get(plate_id)
            live = stored is not None and stored.expires_at_ms > now_ms
            return IndexRead(complete, stored.entry if live and stored is not None else None)

    def cursor(self) -> IndexCursor | None:
        with self._lock:
            return self._live_cursor(self._now_ms())

    def move_cursor(
        self, expected: IndexCursor | None, new: IndexCursor, *, marker_ttl_ms: int
    ) -> bool:
        require(marker_ttl_ms >= 0, "a marker lives zero or more milliseconds")
        with self._lock:
            now_ms = self._now_ms()
            if self._live_cursor(now_ms) != expected:
                return False
            self._cursor = (new, now_ms + INDEX_ENTRY_TTL_MS)
            if marker_ttl_ms:
                self._marker_expires_at_ms = now_ms + marker_ttl_ms
            return True

    def forget(self) -> None:
        with self._lock:
            self._forget()

    def flush(self) -> None:
        """Everything lost at once, as a restarted Redis without persistence loses it."""
        with self._lock:
            self._entries.clear()
            self._forget()

    def close(self) -> None:
        self.flush()

    def _forget(self) -> None:
        self._cursor = None
        self._marker_expires_at_ms = None

    def _live_cursor(self, now_ms: int) -> IndexCursor | None:
        if self._cursor is None or self._cursor[1] <= now_ms:
            return None
        return self._cursor[0]

    def _make_room(self, now_ms: int) -> None:
        expired = [key for key, timed in self._entries.items() if timed.expires_at_ms <= now_ms]
        for key in expired:
            del self._entries[key]
        if len(self._entries) >= self._entries_max:
            # Dropping a live entry would make a paid plate read as unpaid: refuse, and the
            # writer forgets the marker so checks read the event store instead.
            raise IndexUnavailable(f"the in-process index holds {self._entries_max} entries")
