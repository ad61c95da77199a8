"""The behaviour every `HotState` adapter promises, written once and run against each adapter.

A test module subclasses `HotStateContract` as `Test...`, overrides the `store` fixture and
`let_time_pass`; pytest then runs every test below against that adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tapledger.http.hotstate import (
    HITS_PER_CALL_MAX,
    HOT_STATE_KEY_MAX_CHARS,
    HOT_STATE_TTL_MAX_MS,
    HOT_STATE_VALUE_MAX_BYTES,
    HotState,
    HotStateUnavailable,
    HotStateUsageError,
)
from tapledger.http.hotstate_memory import MemoryHotState

# Short enough to keep the Redis run quick, long enough that a slow CI machine does not see a key
# expire between two calls that should both find it live.
SHORT_TTL_MS = 150
LONG_TTL_MS = 60_000
HIT_THREADS = 8
HITS_PER_THREAD = 50


class SwitchableHotState:
    """A `HotState` over another whose backing store a test can take down and bring back."""

    def __init__(self, inner: HotState) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise HotStateUnavailable("the test took the hot state down")

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        self._check()
        return self.inner.put_if_absent(key, value, ttl_ms=ttl_ms)

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        self._check()
        self.inner.put(key, value, ttl_ms=ttl_ms)

    def get(self, key: str) -> bytes | None:
        self._check()
        return self.inner.get(key)

    def delete(self, key: str) -> None:
        self._check()
        self.inner.delete(key)

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        self._check()
        return self.inner.hit(key, window_ms=window_ms, hits=hits)

    def remaining_ttl_ms(self, key: str) -> int | None:
        self._check()
        return self.inner.remaining_ttl_ms(key)

    def ping(self) -> bool:
        return not self.down and self.inner.ping()

    def close(self) -> None:
        self.inner.close()


class RecordingHotState(SwitchableHotState):
    """Remembers every key written, to show what a request left behind; `empty` comes back
    with nothing, as a restarted Redis does."""

    def __init__(self, inner: HotState | None = None) -> None:
        super().__init__(inner if inner is not None else MemoryHotState())
        self.written: list[str] = []

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        self.written.append(key)
        return super().put_if_absent(key, value, ttl_ms=ttl_ms)

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        self.written.append(key)
        super().put(key, value, ttl_ms=ttl_ms)

    def empty(self) -> None:
        self.inner = MemoryHotState()


class HotStateContract:
    """Behaviour tests for a `HotState`; not collected itself, as its name lacks `Test`."""

    @pytest.fixture
    def store(self) -> Iterator[HotState]:
        raise NotImplementedError("each adapter's test class provides a fresh store")

    def let_time_pass(self, ms: int) -> None:
        """Move the store's time forward by at least `ms` milliseconds."""
        raise NotImplementedError

    def test_put_then_get_returns_the_value(self, store: HotState) -> None:
        store.put("card:1", b"\x00blocked\xff", ttl_ms=LONG_TTL_MS)
        assert store.get("card:1") == b"\x00blocked\xff"

    def test_get_of_an_absent_key_is_none(self, store: HotState) -> None:
        assert store.get("never-written") is None

    def test_put_if_absent_stores_a_new_key(self, store: HotState) -> None:
        assert store.put_if_absent("claim", b"first", ttl_ms=LONG_TTL_MS) is True
        assert store.get("claim") == b"first"

    def test_put_if_absent_refuses_a_live_key(self, store: HotState) -> None:
        store.put_if_absent("claim", b"first", ttl_ms=LONG_TTL_MS)
        assert store.put_if_absent("claim", b"second", ttl_ms=LONG_TTL_MS) is False
        assert store.get("claim") == b"first"

    def test_put_if_absent_stores_again_after_expiry(self, store: HotState) -> None:
        store.put_if_absent("claim", b"first", ttl_ms=SHORT_TTL_MS)
        self.let_time_pass(SHORT_TTL_MS)
        assert store.put_if_absent("claim", b"second", ttl_ms=LONG_TTL_MS) is True
        assert store.get("claim") == b"second"

    def test_put_if_absent_stores_again_after_delete(self, store: HotState) -> None:
        store.put_if_absent("claim", b"first", ttl_ms=LONG_TTL_MS)
        store.delete("claim")
        assert store.put_if_absent("claim", b"second", ttl_ms=LONG_TTL_MS) is True

    def test_put_overwrites_a_live_value(self, store: HotState) -> None:
        store.put("key", b"old", ttl_ms=LONG_TTL_MS)
        store.put("key", b"new", ttl_ms=LONG_TTL_MS)
        assert store.get("key") == b"new"

    def test_put_replaces_the_ttl(self, store: HotState) -> None:
        store.put("key", b"old", ttl_ms=SHORT_TTL_MS)
        store.put("key", b"new", ttl_ms=LONG_TTL_MS)
        self.let_time_pass(SHORT_TTL_MS)
        assert store.get("key") == b"new"

    def test_delete_makes_a_key_absent(self, store: HotState) -> None:
        store.put("key", b"value", ttl_ms=LONG_TTL_MS)
        store.delete("key")
        assert store.get("key") is None
        assert store.remaining_ttl_ms("key") is None

    def test_delete_of_an_absent_key_is_quiet(self, store: HotState) -> None:
        store.delete("never-written")
        assert store.get("never-written") is None

    def test_expired_key_is_absent(self, store: HotState) -> None:
        store.put("key", b"value", ttl_ms=SHORT_TTL_MS)
        self.let_time_pass(SHORT_TTL_MS)
        assert store.get("key") is None
        assert store.remaining_ttl_ms("key") is None

    def test_hit_counts_up_within_a_window(self, store: HotState) -> None:
        counts = [store.hit("rate", window_ms=LONG_TTL_MS) for _ in range(3)]
        assert counts == [1, 2, 3]

    def test_hit_counts_a_batch_of_hits_at_once(self, store: HotState) -> None:
        assert store.hit("rate", window_ms=LONG_TTL_MS, hits=12) == 12
        assert store.hit("rate", window_ms=LONG_TTL_MS) == 13
        assert store.hit("rate", window_ms=LONG_TTL_MS, hits=7) == 20

    @pytest.mark.parametrize("hits", [0, -1, True, 1.5, HITS_PER_CALL_MAX + 1])
    def test_hit_refuses_a_count_that_is_not_a_positive_int(
        self, store: HotState, hits: object
    ) -> None:
        with pytest.raises(HotStateUsageError):
            store.hit("rate", window_ms=LONG_TTL_MS, hits=hits)  # type: ignore[arg-type]

    def test_hit_restarts_at_one_after_the_window(self, store: HotState) -> None:
        store.hit("rate", window_ms=SHORT_TTL_MS)
        store.hit("rate", window_ms=SHORT_TTL_MS)
        self.let_time_pass(SHORT_TTL_MS)
        assert store.hit("rate", window_ms=SHORT_TTL_MS) == 1

    def test_hit_does_not_extend_the_window(self, store: HotState) -> None:
        store.hit("rate", window_ms=LONG_TTL_MS)
        before_ms = store.remaining_ttl_ms("rate")
        store.hit("rate", window_ms=LONG_TTL_MS)
        after_ms = store.remaining_ttl_ms("rate")
        assert before_ms is not None
        assert after_ms is not None
        assert after_ms <= before_ms

    def test_hit_counts_every_concurrent_hit_once(self, store: HotState) -> None:
        counts: list[int] = []
        counts_lock = threading.Lock()

        def hit_many() -> None:
            mine = [store.hit("rate", window_ms=LONG_TTL_MS) for _ in range(HITS_PER_THREAD)]
            with counts_lock:
                counts.extend(mine)

        threads = [threading.Thread(target=hit_many) for _ in range(HIT_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Atomic increments hand out every count exactly once.
        assert sorted(counts) == list(range(1, HIT_THREADS * HITS_PER_THREAD + 1))

    def test_hit_on_a_stored_value_is_a_usage_error(self, store: HotState) -> None:
        store.put("key", b"not a number", ttl_ms=LONG_TTL_MS)
        with pytest.raises(HotStateUsageError):
            store.hit("key", window_ms=LONG_TTL_MS)

    def test_remaining_ttl_is_within_the_ttl(self, store: HotState) -> None:
        store.put("key", b"value", ttl_ms=LONG_TTL_MS)
        remaining_ms = store.remaining_ttl_ms("key")
        assert remaining_ms is not None
        assert 0 < remaining_ms <= LONG_TTL_MS

    def test_remaining_ttl_of_an_absent_key_is_none(self, store: HotState) -> None:
        assert store.remaining_ttl_ms("never-written") is None

    def test_key_of_the_maximum_length_is_accepted(self, store: HotState) -> None:
        key = "k" * HOT_STATE_KEY_MAX_CHARS
        store.put(key, b"value", ttl_ms=LONG_TTL_MS)
        assert store.get(key) == b"value"

    @pytest.mark.parametrize("key", ["", "k" * (HOT_STATE_KEY_MAX_CHARS + 1)])
    def test_key_outside_the_length_limits_is_a_usage_error(
        self, store: HotState, key: str
    ) -> None:
        with pytest.raises(HotStateUsageError):
            store.put(key, b"value", ttl_ms=LONG_TTL_MS)
        with pytest.raises(HotStateUsageError):
            store.get(key)
        with pytest.raises(HotStateUsageError):
            store.hit(key, window_ms=LONG_TTL_MS)

    def test_value_of_the_maximum_size_is_accepted(self, store: HotState) -> None:
        value = b"v" * HOT_STATE_VALUE_MAX_BYTES
        store.put("key", value, ttl_ms=LONG_TTL_MS)
        assert store.get("key") == value

    def test_value_over_the_maximum_size_is_a_usage_error(self, store: HotState) -> None:
        value = b"v" * (HOT_STATE_VALUE_MAX_BYTES + 1)
        with pytest.raises(HotStateUsageError):
            store.put("key", value, ttl_ms=LONG_TTL_MS)
        with pytest.raises(HotStateUsageError):
            store.put_if_absent("key", value, ttl_ms=LONG_TTL_MS)
        assert store.get("key") is None

    @pytest.mark.parametrize("ttl_ms", [0, -1, HOT_STATE_TTL_MAX_MS + 1, True])
    def test_ttl_outside_the_limits_is_a_usage_error(self, store: HotState, ttl_ms: int) -> None:
        with pytest.raises(HotStateUsageError):
            store.put("key", b"value", ttl_ms=ttl_ms)
        with pytest.raises(HotStateUsageError):
            store.put_if_absent("key", b"value", ttl_ms=ttl_ms)
        with pytest.raises(HotStateUsageError):
            store.hit("key", window_ms=ttl_ms)
        assert store.get("key") is None

    def test_ping_answers_true(self, store: HotState) -> None:
        assert store.ping() is True
