"""The enforcement index on Redis, shared by every serving process and the followers.

Writes come from threads (a use case's save, the index follower) on a blocking client; reads
come from the event loop, one round trip (MGET of the marker and the entry) on the loop's one
pipelined connection (`parking.adapters.redis_pipeline`). The version compare and the cursor's
compare-and-set are Lua scripts, so each is atomic against every other client. Redis must
keep every key until it times out (`maxmemory-policy noeviction`, the default): an entry
evicted while the marker stays would read as "unpaid".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from uuid import UUID

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from parking.adapters.redis_pipeline import RedisPipeline, RedisPipelineError
from parking.domain.enforcement_index import (
    INDEX_ENTRY_TTL_MS,
    IndexCursor,
    IndexEntry,
    IndexRead,
    IndexUnavailable,
)
from ticketing.shared.domain.invariants import InvariantViolated, require

INDEX_PREFIX_DEFAULT = "tapledger:enforcement:"
# A check waits for Redis at most this long before it reads the event store instead.
INDEX_SOCKET_TIMEOUT_S = 0.5
INDEX_CONNECT_TIMEOUT_S = 1.0
# Connections of the blocking client, per process (the loop's reads share one of their own).
INDEX_CONNECTIONS_MAX = 64
INDEX_POOL_WAIT_S = 1.0
INDEX_RETRIES_MAX = 1
MGET_KEYS = 2  # the marker and the entry

# KEYS: the entries; ARGV: the TTL, then each entry's version and value. An entry is written
# unless the stored one's version (the digits before its first "|") is higher.
_PUT_LUA = """
local written = 0
for i, key in ipairs(KEYS) do
  local version = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', key)
  local newer = false
  if stored then
    local kept = tonumber(string.match(stored, '^(%d+)'))
    newer = kept ~= nil and kept > version
  end
  if not newer then
    redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
    written = written + 1
  end
end
return written
"""
# KEYS: the cursor, the marker; ARGV: the cursor expected ('' for none), the new one, the
# cursor's TTL, the marker's TTL (0: no marker written).
_MOVE_CURSOR_LUA = """
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
end
return 1
"""


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as error:
        raise IndexUnavailable(f"the enforcement index's Redis failed: {error}") from error


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise InvariantViolated("the Redis client must answer bytes: decode_responses is off")
    return value


class RedisEnforcementIndex:
    def __init__(self, url: str, *, prefix: str = INDEX_PREFIX_DEFAULT) -> None:
        self._url = url
        self._prefix = prefix
        self._marker = prefix + "complete"
        self._cursor = prefix + "cursor"
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=INDEX_CONNECTIONS_MAX,
            timeout=INDEX_POOL_WAIT_S,
            socket_timeout=INDEX_SOCKET_TIMEOUT_S,
            socket_connect_timeout=INDEX_CONNECT_TIMEOUT_S,
            retry=Retry(NoBackoff(), INDEX_RETRIES_MAX, (RedisConnectionError,)),
        )
        self._client = redis.Redis(connection_pool=pool)
        self._put = self._client.register_script(_PUT_LUA)
        self._move = self._client.register_script(_MOVE_CURSOR_LUA)
        # Reads share one connection of the loop they run on: a worker has one loop for its
        # life, a test may run several one after the other.
        self._pipeline: RedisPipeline | None = None

    def put(self, entries: Iterable[IndexEntry]) -> None:
        keys: list[str] = []
        args: list[bytes | int] = [INDEX_ENTRY_TTL_MS]
        for entry in entries:
            keys.append(self._prefix + entry.plate_id.hex)
            args += [entry.version, entry.encoded()]
        if keys:
            with _translated_errors():
                self._put(keys=keys, args=args)

    async def read(self, plate_id: UUID) -> IndexRead:
        try:
            reply = await self._pipeline_of_loop().execute(
                b"MGET", self._marker, self._prefix + plate_id.hex
            )
        except RedisPipelineError as error:
            raise IndexUnavailable(f"the enforcement index's Redis failed: {error}") from error
        if not (isinstance(reply, list) and len(reply) == MGET_KEYS):
            raise IndexUnavailable(f"MGET answered {reply!r}")
        marker, value = reply
        if value is None:
            return IndexRead(marker is not None, None)
        return IndexRead(marker is not None, IndexEntry.decoded(plate_id, _bytes(value)))

    def cursor(self) -> IndexCursor | None:
        with _translated_errors():
            value = self._client.get(self._cursor)
        if value is None:
            return None
        return IndexCursor.decoded(_bytes(value))

    def move_cursor(
        self, expected: IndexCursor | None, new: IndexCursor, *, marker_ttl_ms: int
    ) -> bool:
        require(marker_ttl_ms >= 0, "a marker lives zero or more milliseconds")
        was = b"" if expected is None else expected.encoded()
        args: list[bytes | int] = [was, new.encoded(), INDEX_ENTRY_TTL_MS, marker_ttl_ms]
        with _translated_errors():
            return bool(self._move(keys=[self._cursor, self._marker], args=args))

    def forget(self) -> None:
        with _translated_errors():
            self._client.delete(self._marker, self._cursor)

    def close(self) -> None:
        self._client.close()
        self._client.connection_pool.disconnect()
        if self._pipeline is not None and not self._pipeline.loop.is_closed():
            self._pipeline.close()
        self._pipeline = None

    def _pipeline_of_loop(self) -> RedisPipeline:
        loop = asyncio.get_running_loop()
        if self._pipeline is None or self._pipeline.loop is not loop:
            self._pipeline = RedisPipeline(
                self._url,
                timeout_s=INDEX_SOCKET_TIMEOUT_S,
                connect_timeout_s=INDEX_CONNECT_TIMEOUT_S,
            )
        return self._pipeline
