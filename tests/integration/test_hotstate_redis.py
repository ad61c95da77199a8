"""The hot-state contract on a real Redis, with real time passing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
import redis

from tapledger.http.hotstate import HotState, HotStateUnavailable
from tapledger.http.hotstate_redis import RedisHotState
from tests.hotstate_contract import LONG_TTL_MS, HotStateContract
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys_under, redis_url

pytestmark = pytest.mark.redis

# Redis expires keys to the millisecond, but a sleep can return a little early on some systems
# and the test's own calls take time; the slack keeps "after the TTL" true.
EXPIRY_SLACK_MS = 25
MS_PER_S = 1000


class TestRedisHotState(HotStateContract):
    @pytest.fixture
    def store(self) -> Iterator[HotState]:
        url = redis_url()
        # A prefix of its own keeps this test apart from parallel runs and from anything else in
        # the database, and lets the cleanup find exactly its keys.
        prefix = f"test:{secrets.token_hex(8)}:"
        store = RedisHotState(url, prefix=prefix)
        yield store
        store.close()
        delete_redis_keys_under(prefix, url)

    def let_time_pass(self, ms: int) -> None:
        time.sleep((ms + EXPIRY_SLACK_MS) / MS_PER_S)


def test_keys_are_stored_under_the_prefix() -> None:
    url = redis_url()
    prefix = f"test:{secrets.token_hex(8)}:"
    store = RedisHotState(url, prefix=prefix)
    client = redis.Redis.from_url(url)
    try:
        store.put("key", b"value", ttl_ms=LONG_TTL_MS)
        assert client.get(prefix + "key") == b"value"
    finally:
        client.close()
        store.close()
        delete_redis_keys_under(prefix, url)


def test_unreachable_redis_raises_hot_state_unavailable() -> None:
    store = RedisHotState(UNREACHABLE_REDIS_URL)
    try:
        with pytest.raises(HotStateUnavailable):
            store.put_if_absent("key", b"value", ttl_ms=LONG_TTL_MS)
        with pytest.raises(HotStateUnavailable):
            store.hit("rate", window_ms=LONG_TTL_MS)
        with pytest.raises(HotStateUnavailable):
            store.get("key")
    finally:
        store.close()


def test_unreachable_redis_pings_false() -> None:
    store = RedisHotState(UNREACHABLE_REDIS_URL)
    try:
        assert store.ping() is False
    finally:
        store.close()
