"""Idempotency records in SQL, for the requests whose repeat would create a second thing.

Hot state may come back empty (Redis restarted, evicted, failed over); a retried account or token
creation would then run again. These records live in the read-model database (PostgreSQL in
production, SQLite embedded), with the same time-to-live as in hot state: a row past its
`expires_at_ms` is absent, and expired rows are purged every `PURGE_EVERY_CLAIMS` claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Delete,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from tapledger.http.hotstate import HOT_STATE_KEY_MAX_CHARS, check_key, check_ttl, check_value
from tapledger.http.idempotency import IdempotencyRecordsUnavailable

# Claims between two sweeps of expired rows; the sweep is indexed, and rare enough to cost nothing.
PURGE_EVERY_CLAIMS = 100
MS_PER_S = 1000

metadata = MetaData()

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("record_key", String(HOT_STATE_KEY_MAX_CHARS), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False, index=True),
)


def _wall_clock_ms() -> int:
    # Wall time, not monotonic: every process, and a restarted one, must agree on expiry.
    return int(time.time() * MS_PER_S)


class SqlIdempotencyRecords:
    """A `tapledger.http.idempotency.RecordStore` in a SQL table; the same checks as hot state."""

    def __init__(self, engine: Engine, *, now_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self.engine = engine
        self._now_ms = now_ms
        self._claims = 0

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    def put_if_absent(self, key: str, value: bytes, *, ttl_ms: int) -> bool:
        _check(key, value, ttl_ms)
        now_ms = self._now_ms()
        self._claims += 1
        try:
            with self.engine.begin() as conn:
                if self._claims % PURGE_EVERY_CLAIMS == 0:
                    conn.execute(
                        delete(idempotency_records).where(
                            idempotency_records.c.expires_at_ms <= now_ms
                        )
                    )
                conn.execute(_delete_expired(key, now_ms))
                conn.execute(
                    insert(idempotency_records).values(
                        record_key=key, value=value, expires_at_ms=now_ms + ttl_ms
                    )
                )
        except IntegrityError:
            return False  # a live record, or a claim that won the race
        except OperationalError as error:
            raise IdempotencyRecordsUnavailable(str(error)) from error
        return True

    def put(self, key: str, value: bytes, *, ttl_ms: int) -> None:
        _check(key, value, ttl_ms)
        now_ms = self._now_ms()
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(idempotency_records).where(_is(key)))
                conn.execute(
                    insert(idempotency_records).values(
                        record_key=key, value=value, expires_at_ms=now_ms + ttl_ms
                    )
                )
        except OperationalError as error:
            raise IdempotencyRecordsUnavailable(str(error)) from error

    def get(self, key: str) -> bytes | None:
        check_key(key)
        query = select(idempotency_records.c.value).where(
            _is(key), idempotency_records.c.expires_at_ms > self._now_ms()
        )
        try:
            with self.engine.connect() as conn:
                value: bytes | None = conn.execute(query).scalar_one_or_none()
        except OperationalError as error:
            raise IdempotencyRecordsUnavailable(str(error)) from error
        return value

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(idempotency_records).where(_is(key)))
        except OperationalError as error:
            raise IdempotencyRecordsUnavailable(str(error)) from error


def _is(key: str) -> ColumnElement[bool]:
    return idempotency_records.c.record_key == key


def _delete_expired(key: str, now_ms: int) -> Delete:
    return delete(idempotency_records).where(
        _is(key), idempotency_records.c.expires_at_ms <= now_ms
    )


def _check(key: str, value: bytes, ttl_ms: int) -> None:
    check_key(key)
    check_value(value)
    check_ttl(ttl_ms)
