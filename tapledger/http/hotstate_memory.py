"""The in-process hot-state store: for tests, one-process deployments and offline validators."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tapledger.http.hotstate import (
    HotStateFull,
    HotStateUsageError,
    check_hits,
    check_key,
    check_ttl,
    check_value,
)

MEMORY_HOT_STATE_KEYS_MAX = 1_000_000
NS_PER_MS = 1_000_000


def monotonic_ms() -> int:
    """Milliseconds on a clock that never goes backwards, unlike the wall clock."""
    return time.monotonic_ns() // NS_PER_MS


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at_ms: int


class MemoryHotState:
    """A thread-safe, bounded `HotState` held in a dict.

    Expiry is lazy: an expired entry is ignored when read and reclaimed when the store is full.
    """

    def __init__(
        self,
        *,
        now_ms: Callable[[], int] = monotonic_ms,
        keys_max: int = MEMORY_HOT_STATE_KEYS_MAX,
    ) -> None:
        if keys_max < 1:
            raise HotStateUsageError(f"keys_max must be at least 1, not {keys_max}")
        self._now_ms = now_ms
        self._keys_max = keys_max
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        check_key(key)
        check_value(value)
        check_ttl(ttl_ms)
        with self._lock:
            now_ms = self._now_ms()
            if self._live(key, now_ms) is not None:
                return False
            self._store(key, value, now_ms + ttl_ms, now_ms)
            return True

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        check_key(key)
        check_value(value)
        check_ttl(ttl_ms)
        with self._lock:
            now_ms = self._now_ms()
            self._store(key, value, now_ms + ttl_ms, now_ms)

    def get(self, key: str) -> bytes | None:
        check_key(key)
        with self._lock:
            entry = self._live(key, self._now_ms())
            return None if entry is None else entry.value

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._entries.pop(key, None)

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        check_key(key)
        check_ttl(window_ms)
        check_hits(hits)
        with self._lock:
            now_ms = self._now_ms()
            entry = self._live(key, now_ms)
            if entry is None:
                self._store(key, str(hits).encode("ascii"), now_ms + window_ms, now_ms)
                return hits
            # Counters are kept as ASCII digits, as Redis keeps them, so `get` reads the same
            # bytes from either adapter.
            if not entry.value.isdigit():
                raise HotStateUsageError(f"hot-state key {key!r} holds a value, not a counter")
            count = int(entry.value) + hits
            entry.value = str(count).encode("ascii")
            return count

    def remaining_ttl_ms(self, key: str) -> int | None:
        check_key(key)
        with self._lock:
            now_ms = self._now_ms()
            entry = self._live(key, now_ms)
            return None if entry is None else entry.expires_at_ms - now_ms

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def _live(self, key: str, now_ms: int) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.expires_at_ms <= now_ms:
            return None
        return entry

    def _store(self, key: str, value: bytes, expires_at_ms: int, now_ms: int) -> None:
        # Replacing a key, live or expired, needs no new room.
        if key not in self._entries and len(self._entries) >= self._keys_max:
            self._purge_expired(now_ms)
            if len(self._entries) >= self._keys_max:
                # Evicting a live key could forget an idempotency claim and let a payment run
                # twice, so a full store refuses instead.
                raise HotStateFull(f"in-process hot state holds {self._keys_max} live keys")
        self._entries[key] = _Entry(value, expires_at_ms)

    def _purge_expired(self, now_ms: int) -> None:
        # A full scan, but only when the store is full; between purges, reads skip expired keys.
        expired = [key for key, entry in self._entries.items() if entry.expires_at_ms <= now_ms]
        for key in expired:
            del self._entries[key]
