"""The hot-state port: a small key/value store where every key expires.

Hot state is what a tap or an HTTP request must consult in well under a millisecond and may lose
after its time-to-live: idempotency keys, rate-limit counters, and later deny lists, anti-passback
marks and QR replay windows. Nothing here is a source of truth; the event store is.

Both adapters (in-process and Redis) validate their arguments through the `check_*` functions
below, so a call that one adapter refuses is refused by the other in the same way.
"""

from __future__ import annotations

from typing import Protocol

HOT_STATE_KEY_MAX_CHARS = 256
HOT_STATE_VALUE_MAX_BYTES = 256 * 1024
# A month and a day: long enough for any pass or deny-list entry we keep hot, short enough that a
# forgotten key cannot outlive the data it shadows by much.
HOT_STATE_TTL_MAX_MS = 31 * 24 * 60 * 60 * 1000


class HotStateUsageError(ValueError):
    """A bug in the caller: a key, value or TTL that no correct program would pass."""


class HotStateUnavailable(Exception):
    """The backing store cannot be reached or did not answer in time: an operating condition."""


class HotStateFull(HotStateUnavailable):
    """The store has no room for another live key.

    It is a kind of unavailability, so callers that already handle `HotStateUnavailable` stay
    safe; a full store refuses new keys rather than dropping live ones.
    """


class HotState(Protocol):
    """A key/value store for hot state; every key has a time-to-live.

    Expired keys behave exactly as absent ones. Methods raise `HotStateUsageError` for invalid
    arguments and `HotStateUnavailable` (or `HotStateFull`) when the store cannot serve the call.
    """

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        """Atomically store `value` only if `key` has no live value; True if it was stored."""
        ...

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        """Store `value` under `key`, replacing any live value and its TTL."""
        ...

    def get(self, key: str) -> bytes | None:
        """The live value of `key`, or None."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; deleting an absent key is not an error."""
        ...

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        """Count `hits` hits in a fixed window and return the count so far in that window.

        The first hit of a window returns `hits` and starts a window that ends `window_ms`
        later; the next hit after that starts a new window. Increments are atomic across
        clients.
        """
        ...

    def remaining_ttl_ms(self, key: str) -> int | None:
        """Milliseconds until `key` expires, or None if it is absent."""
        ...

    def ping(self) -> bool:
        """True if the store answers; never raises for an unreachable store."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...


def check_key(key: str) -> None:
    """Refuse keys that are not strings of 1 to `HOT_STATE_KEY_MAX_CHARS` characters."""
    if not isinstance(key, str):
        raise HotStateUsageError(f"hot-state key must be a str, not {type(key).__name__}")
    if not 1 <= len(key) <= HOT_STATE_KEY_MAX_CHARS:
        raise HotStateUsageError(
            f"hot-state key must have 1 to {HOT_STATE_KEY_MAX_CHARS} characters, not {len(key)}"
        )


def check_value(value: bytes) -> None:
    """Refuse values that are not bytes of at most `HOT_STATE_VALUE_MAX_BYTES`."""
    if not isinstance(value, bytes):
        raise HotStateUsageError(f"hot-state value must be bytes, not {type(value).__name__}")
    if len(value) > HOT_STATE_VALUE_MAX_BYTES:
        raise HotStateUsageError(
            f"hot-state value must have at most {HOT_STATE_VALUE_MAX_BYTES} bytes, not {len(value)}"
        )


# Hits counted by one call: a worker may tell a batch of hits at once.
HITS_PER_CALL_MAX = 1_000_000


def check_hits(hits: int) -> None:
    if not isinstance(hits, int) or isinstance(hits, bool) or not 1 <= hits <= HITS_PER_CALL_MAX:
        raise HotStateUsageError(f"hits must be an int of 1 to {HITS_PER_CALL_MAX}, not {hits!r}")


def check_ttl(ttl_ms: int) -> None:
    """Refuse TTLs and windows outside 1 ms to `HOT_STATE_TTL_MAX_MS`."""
    # bool is an int subclass; `ttl_ms=True` is always a slip, never a one-millisecond TTL.
    if not isinstance(ttl_ms, int) or isinstance(ttl_ms, bool):
        raise HotStateUsageError(f"hot-state TTL must be an int, not {type(ttl_ms).__name__}")
    if not 1 <= ttl_ms <= HOT_STATE_TTL_MAX_MS:
        raise HotStateUsageError(
            f"hot-state TTL must be 1 to {HOT_STATE_TTL_MAX_MS} ms, not {ttl_ms}"
        )
