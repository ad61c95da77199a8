"""The hot-state contract on the in-process store, with time moved by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tapledger.http.hotstate import HotState, HotStateFull, HotStateUnavailable, HotStateUsageError
from tapledger.http.hotstate_memory import MemoryHotState
from tests.doubles import MillisClock
from tests.hotstate_contract import LONG_TTL_MS, SHORT_TTL_MS, HotStateContract

SMALL_STORE_KEYS_MAX = 3


class TestMemoryHotState(HotStateContract):
    @pytest.fixture
    def store(self) -> Iterator[HotState]:
        self.clock = MillisClock()
        store = MemoryHotState(now_ms=self.clock)
        yield store
        store.close()

    def let_time_pass(self, ms: int) -> None:
        self.clock.advance(ms)


def test_expiry_is_exact_to_the_millisecond() -> None:
    clock = MillisClock()
    store = MemoryHotState(now_ms=clock)
    store.put("key", b"value", ttl_ms=SHORT_TTL_MS)
    clock.advance(SHORT_TTL_MS - 1)
    assert store.remaining_ttl_ms("key") == 1
    clock.advance(1)
    assert store.get("key") is None


def test_full_store_of_live_keys_refuses_a_new_key() -> None:
    store = MemoryHotState(now_ms=MillisClock(), keys_max=SMALL_STORE_KEYS_MAX)
    for index in range(SMALL_STORE_KEYS_MAX):
        store.put(f"key:{index}", b"live", ttl_ms=LONG_TTL_MS)
    with pytest.raises(HotStateFull):
        store.put_if_absent("key:new", b"value", ttl_ms=LONG_TTL_MS)
    with pytest.raises(HotStateFull):
        store.hit("rate", window_ms=LONG_TTL_MS)
    # No live key was dropped to make room.
    assert all(store.get(f"key:{index}") == b"live" for index in range(SMALL_STORE_KEYS_MAX))


def test_full_store_still_overwrites_an_existing_key() -> None:
    store = MemoryHotState(now_ms=MillisClock(), keys_max=1)
    store.put("key", b"old", ttl_ms=LONG_TTL_MS)
    store.put("key", b"new", ttl_ms=LONG_TTL_MS)
    assert store.get("key") == b"new"


def test_full_store_accepts_a_new_key_once_old_ones_expired() -> None:
    clock = MillisClock()
    store = MemoryHotState(now_ms=clock, keys_max=SMALL_STORE_KEYS_MAX)
    for index in range(SMALL_STORE_KEYS_MAX):
        store.put(f"key:{index}", b"short", ttl_ms=SHORT_TTL_MS)
    clock.advance(SHORT_TTL_MS)
    assert store.put_if_absent("key:new", b"value", ttl_ms=LONG_TTL_MS) is True
    assert store.get("key:new") == b"value"


def test_full_store_is_a_kind_of_unavailability() -> None:
    # Callers that fail safe on an unreachable store fail safe on a full one too.
    assert issubclass(HotStateFull, HotStateUnavailable)


def test_store_without_room_for_a_key_is_a_usage_error() -> None:
    with pytest.raises(HotStateUsageError):
        MemoryHotState(keys_max=0)
