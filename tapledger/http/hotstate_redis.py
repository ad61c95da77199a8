"""The Redis hot-state store, shared by every API process and validator gateway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from tapledger.http.hotstate import (
    HotStateUnavailable,
    HotStateUsageError,
    check_hits,
    check_key,
    check_ttl,
    check_value,
)
from ticketing.shared.domain.invariants import InvariantViolated, require

REDIS_PREFIX_DEFAULT = "tapledger:"
REDIS_PREFIX_MAX_CHARS = 64
# A tap is answered within a few hundred milliseconds: a slower Redis is as good as a missing one.
REDIS_SOCKET_TIMEOUT_S = 0.5
REDIS_CONNECT_TIMEOUT_S = 1.0
REDIS_CONNECTIONS_MAX = 64
# How long a caller waits for a free pooled connection before the store counts as unavailable.
REDIS_POOL_WAIT_S = 1.0
# One immediate retry replaces a pooled connection the server has closed. Only connection errors
# are retried: after a timeout the command may have run, and re-sending INCR would count twice.
REDIS_RETRIES_MAX = 1
# PTTL's answers for a missing key and for a key without expiry.
_PTTL_ABSENT = -2
_PTTL_NO_EXPIRY = -1


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise HotStateUnavailable(f"Redis is unreachable: {error}") from error
    except ResponseError as error:
        # Our arguments are validated before they reach Redis, so a refusal is the server's state:
        # out of memory, a read-only replica during failover, a failed snapshot stopping writes.
        raise HotStateUnavailable(f"Redis refused the command: {error}") from error


def _is_not_a_counter(error: ResponseError) -> bool:
    # INCR on a key holding text answers "ERR value is not an integer or out of range"; on another
    # type, "WRONGTYPE ...". redis-py has no exception class for either, only the message.
    message = str(error)
    return "not an integer" in message or message.startswith("WRONGTYPE")


class RedisHotState:
    """`HotState` on Redis 7; every key is stored under `prefix`."""

    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX_DEFAULT) -> None:
        if not 1 <= len(prefix) <= REDIS_PREFIX_MAX_CHARS:
            raise HotStateUsageError(
                f"prefix must have 1 to {REDIS_PREFIX_MAX_CHARS} characters, not {len(prefix)}"
            )
        self._prefix = prefix
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS_MAX,
            timeout=REDIS_POOL_WAIT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            retry=Retry(NoBackoff(), REDIS_RETRIES_MAX, (RedisConnectionError,)),
        )
        self._client = redis.Redis(connection_pool=pool)

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        check_key(key)
        check_value(value)
        check_ttl(ttl_ms)
        with _translated_errors():
            return bool(self._client.set(self._prefix + key, value, px=ttl_ms, nx=True))

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        check_key(key)
        check_value(value)
        check_ttl(ttl_ms)
        with _translated_errors():
            self._client.set(self._prefix + key, value, px=ttl_ms)

    def get(self, key: str) -> bytes | None:
        check_key(key)
        with _translated_errors():
            value = self._client.get(self._prefix + key)
        if value is not None and not isinstance(value, bytes):
            raise InvariantViolated("the Redis client must answer bytes: decode_responses is off")
        return value

    def delete(self, key: str) -> None:
        check_key(key)
        with _translated_errors():
            self._client.delete(self._prefix + key)

    def hit(self, key: str, *, window_ms: int, hits: int = 1) -> int:
        check_key(key)
        check_ttl(window_ms)
        check_hits(hits)
        name = self._prefix + key
        # MULTI/EXEC makes the pair atomic; PEXPIRE NX sets the expiry only on the hit that
        # created the counter, so later hits in the window do not push its end back.
        with _translated_errors(), self._client.pipeline(transaction=True) as pipe:
            pipe.incrby(name, hits)
            pipe.pexpire(name, window_ms, nx=True)
            try:
                count, _ = pipe.execute()
            except ResponseError as error:
                if _is_not_a_counter(error):
                    raise HotStateUsageError(f"hot-state key {key!r} is not a counter") from error
                raise
        require(isinstance(count, int), "INCR must answer an integer")
        return int(count)

    def remaining_ttl_ms(self, key: str) -> int | None:
        check_key(key)
        with _translated_errors():
            pttl = int(self._client.pttl(self._prefix + key))
        if pttl == _PTTL_ABSENT:
            return None
        # Every key this adapter writes has a TTL; one without was written by someone else.
        require(pttl != _PTTL_NO_EXPIRY, f"hot-state key {key!r} has no expiry")
        return pttl

    def ping(self) -> bool:
        try:
            with _translated_errors():
                return bool(self._client.ping())
        except HotStateUnavailable:
            return False

    def close(self) -> None:
        self._client.close()
        self._client.connection_pool.disconnect()
