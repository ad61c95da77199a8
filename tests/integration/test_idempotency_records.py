"""Idempotency records in SQL, on the embedded SQLite file and on PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tapledger.bootstrap import make_engine
from tapledger.http.hotstate import HOT_STATE_KEY_MAX_CHARS, HotStateUsageError
from tapledger.http.idempotency_records import (
    PURGE_EVERY_CLAIMS,
    SqlIdempotencyRecords,
    idempotency_records,
)
from tests.doubles import MillisClock

TTL_MS = 24 * 60 * 60 * 1000
CLAIM_TTL_MS = 60_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def records(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SqlIdempotencyRecords, MillisClock]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.db'}"
    else:
        plain = request.getfixturevalue("postgres_database_url")
        url = make_url(plain).set(drivername="postgresql+psycopg").render_as_string(False)
    engine = make_engine(url)
    clock = MillisClock()
    store = SqlIdempotencyRecords(engine, now_ms=clock)
    store.create_tables()
    yield store, clock
    engine.dispose()


Records = tuple[SqlIdempotencyRecords, MillisClock]


def test_first_claim_wins_and_a_second_is_refused(records: Records) -> None:
    store, _ = records
    assert store.put_if_absent("idempotency:k", b"in-progress:a", ttl_ms=CLAIM_TTL_MS)
    assert not store.put_if_absent("idempotency:k", b"in-progress:b", ttl_ms=CLAIM_TTL_MS)
    assert store.get("idempotency:k") == b"in-progress:a"


def test_settled_record_replaces_the_claim_and_lives_its_own_ttl(records: Records) -> None:
    store, clock = records
    store.put_if_absent("idempotency:k", b"in-progress:a", ttl_ms=CLAIM_TTL_MS)
    store.put("idempotency:k", b'{"status":201}', ttl_ms=TTL_MS)
    clock.advance(CLAIM_TTL_MS)
    assert store.get("idempotency:k") == b'{"status":201}'
    clock.advance(TTL_MS - CLAIM_TTL_MS)
    assert store.get("idempotency:k") is None


def test_expired_record_is_absent_and_can_be_claimed_again(records: Records) -> None:
    store, clock = records
    store.put_if_absent("idempotency:k", b"in-progress:a", ttl_ms=CLAIM_TTL_MS)
    clock.advance(CLAIM_TTL_MS)
    assert store.get("idempotency:k") is None
    assert store.put_if_absent("idempotency:k", b"in-progress:b", ttl_ms=CLAIM_TTL_MS)
    assert store.get("idempotency:k") == b"in-progress:b"


def test_deleted_claim_can_be_claimed_again(records: Records) -> None:
    store, _ = records
    store.put_if_absent("idempotency:k", b"in-progress:a", ttl_ms=CLAIM_TTL_MS)
    store.delete("idempotency:k")
    store.delete("idempotency:absent")  # deleting nothing is quiet
    assert store.put_if_absent("idempotency:k", b"in-progress:b", ttl_ms=CLAIM_TTL_MS)


def test_expired_rows_are_swept_so_the_table_stays_bounded(records: Records) -> None:
    store, clock = records
    for n in range(PURGE_EVERY_CLAIMS - 1):
        store.put_if_absent(f"idempotency:{n}", b"x", ttl_ms=CLAIM_TTL_MS)
    clock.advance(CLAIM_TTL_MS)
    store.put_if_absent("idempotency:last", b"x", ttl_ms=CLAIM_TTL_MS)  # the sweeping claim
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(idempotency_records)).scalar_one()
    assert rows == 1


@pytest.mark.parametrize(
    ("key", "value", "ttl_ms"),
    [
        ("", b"x", TTL_MS),
        ("k" * (HOT_STATE_KEY_MAX_CHARS + 1), b"x", TTL_MS),
        ("idempotency:k", b"x", 0),
    ],
    ids=["empty-key", "long-key", "no-ttl"],
)
def test_arguments_hot_state_refuses_are_refused_here_too(
    records: Records, key: str, value: bytes, ttl_ms: int
) -> None:
    store, _ = records
    with pytest.raises(HotStateUsageError):
        store.put_if_absent(key, value, ttl_ms=ttl_ms)


def test_key_of_the_longest_hot_state_length_is_stored(records: Records) -> None:
    store, _ = records
    key = "k" * HOT_STATE_KEY_MAX_CHARS
    assert store.put_if_absent(key, b"x", ttl_ms=TTL_MS)
    assert store.get(key) == b"x"
