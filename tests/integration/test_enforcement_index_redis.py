"""The enforcement index contract on a real Redis, with real time passing."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from parking.adapters.enforcement_index_redis import RedisEnforcementIndex
from parking.domain.enforcement_index import (
    INDEX_ENTRY_TTL_MS,
    EnforcementIndex,
    IndexCursor,
    IndexUnavailable,
)
from tests.enforcement_index_contract import EnforcementIndexContract, opened, read
from tests.services import UNREACHABLE_REDIS_URL, delete_redis_keys_under, redis_url

pytestmark = pytest.mark.redis

EXPIRY_SLACK_MS = 25
MS_PER_S = 1000


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test:enforcement:{secrets.token_hex(8)}:"
    yield prefix
    delete_redis_keys_under(prefix)


class TestRedisEnforcementIndex(EnforcementIndexContract):
    @pytest.fixture
    def index(self, prefix: str) -> Iterator[EnforcementIndex]:
        index = RedisEnforcementIndex(redis_url(), prefix=prefix)
        yield index
        index.close()

    def let_time_pass(self, ms: int) -> None:
        time.sleep((ms + EXPIRY_SLACK_MS) / MS_PER_S)


def test_an_entry_is_written_to_live_an_entry_lifetime(prefix: str) -> None:
    index = RedisEnforcementIndex(redis_url(), prefix=prefix)
    client = redis.Redis.from_url(redis_url())
    plate_id = uuid.uuid4()
    try:
        index.put([opened(plate_id, 2)])
        ttl_ms = int(client.pttl(prefix + plate_id.hex))
    finally:
        client.close()
        index.close()

    assert INDEX_ENTRY_TTL_MS - 60_000 < ttl_ms <= INDEX_ENTRY_TTL_MS


def test_a_flushed_redis_has_lost_the_marker_with_the_entries(prefix: str) -> None:
    index = RedisEnforcementIndex(redis_url(), prefix=prefix)
    plate_id = uuid.uuid4()
    client = redis.Redis.from_url(redis_url())
    try:
        index.put([opened(plate_id, 2)])
        assert index.move_cursor(None, IndexCursor(1, 0), marker_ttl_ms=60_000)
        # What FLUSHDB does to this index, without flushing a database other tests share.
        client.delete(*client.keys(prefix + "*"))

        assert (read(index, plate_id).complete, read(index, plate_id).entry) == (False, None)
        assert index.cursor() is None
    finally:
        client.close()
        index.close()


def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    index = RedisEnforcementIndex(UNREACHABLE_REDIS_URL, prefix="test:")
    try:
        with pytest.raises(IndexUnavailable):
            read(index, uuid.uuid4())
        with pytest.raises(IndexUnavailable):
            index.put([opened(uuid.uuid4(), 2)])
    finally:
        index.close()
