"""The services the benchmark runs on: a PostgreSQL database of its own and a Redis database
it flushes before and after."""

from __future__ import annotations

import os
import time

import psycopg
import redis

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
# The benchmarks flush this Redis database; two benchmarks run at once on one box each need
# their own (`LOADTESTS_REDIS_DB`).
REDIS_DB = int(os.environ.get("LOADTESTS_REDIS_DB", "14"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
# A shared box's PostgreSQL may have every connection taken for a moment (test suites, other
# servers): a benchmark's own connections wait for one rather than fail the whole run.
CONNECT_DEADLINE_S = 120.0
CONNECT_RETRY_S = 0.5


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to `url`, waiting up to `CONNECT_DEADLINE_S` while all are taken."""
    deadline = time.monotonic() + CONNECT_DEADLINE_S
    while True:
        try:
            return psycopg.connect(url, autocommit=autocommit)
        except psycopg.OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(CONNECT_RETRY_S)


def create_database(name: str) -> None:
    with connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle_database(database_url: str) -> None:
    """What the last run left for PostgreSQL to do in the background (vacuuming the rows it
    inserted, writing back dirty pages), done now, so each run starts from the same state and
    is not charged for the one before it; pgbench vacuums before each run for the same reason."""
    with connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def redis_has_key(pattern: str) -> bool:
    """Whether a key matching `pattern` is in the benchmark's Redis database."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return next(client.scan_iter(match=pattern), None) is not None
    finally:
        client.close()


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def journeys_position(database_url: str) -> tuple[int, int]:
    """(the journeys follower's position in the Taps log, the log's head)."""
    with psycopg.connect(database_url) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taps_events")
        tracked = conn.execute(
            "SELECT coalesce(max(notification_id), 0) FROM journeys_tracking "
            "WHERE application_name = 'Taps'"
        )
        return int(tracked.fetchone()[0]), int(head.fetchone()[0])  # type: ignore[index]
