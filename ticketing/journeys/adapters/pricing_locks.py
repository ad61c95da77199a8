"""The pricing lock (`ticketing.journeys.application.pricing_lock`) across processes: a file
lock beside the embedded SQLite store, a PostgreSQL advisory lock for a shared database.

Both are released by the operating system or the database when their holder dies, so a killed
worker never leaves the lock taken. Each also keeps a thread lock, since a process's own threads
(the follower, a day-end close asked over HTTP) share one file descriptor or one session, which
the file lock and the advisory lock would let in together.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

import psycopg

from ticketing.shared.domain.invariants import require

# How often a waiting holder tries again; the wait itself is bounded by the caller.
LOCK_RETRY_S = 0.01
# The advisory lock's first key: the same for every lock of this product (ASCII "TL").
ADVISORY_LOCK_CLASS = 0x544C
CONNECT_TIMEOUT_S = 5

# Whether this session holds the lock (the two-key form shows as objsubid 2 in pg_locks).
HELD_QUERY = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND classid = %s::int::oid AND objid = %s::int::oid"
    " AND objsubid = 2 AND granted)"
)

log = logging.getLogger(__name__)


def _waiting(try_once: Callable[[], bool], wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while not try_once():
        if time.monotonic() >= deadline:
            return False
        time.sleep(LOCK_RETRY_S)
    return True


def _take(threads: threading.Lock, wait_s: float) -> bool:
    if wait_s > 0:
        return threads.acquire(timeout=wait_s)
    return threads.acquire(blocking=False)


class FilePricingLock:
    """An exclusive `flock` on a file: every process on the machine sharing the SQLite store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._threads = threading.Lock()

    def acquire(self, *, wait_s: float) -> bool:
        if not _take(self._threads, wait_s):
            return False
        if _waiting(self._try_flock, wait_s):
            return True
        self._threads.release()
        return False

    def release(self) -> None:
        fd = self._fd
        require(fd is not None, "a closed lock is never held")
        fcntl.flock(cast(int, fd), fcntl.LOCK_UN)
        self._threads.release()

    def still_held(self) -> bool:
        return self._threads.locked()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _try_flock(self) -> bool:
        fd = self._fd
        require(fd is not None, "a closed lock is not taken again")
        try:
            fcntl.flock(cast(int, fd), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class PostgresPricingLock:
    """A session-level advisory lock on a connection of its own. The database frees it when the
    session ends, so a lost connection means a lost lock: `still_held` asks the session."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._key = zlib.crc32(f"tapledger:pricing:{name}".encode()) & 0x7FFF_FFFF
        self._threads = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def acquire(self, *, wait_s: float) -> bool:
        if not _take(self._threads, wait_s):
            return False
        try:
            if _waiting(self._try_advisory, wait_s):
                return True
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        try:
            self._ask("SELECT pg_advisory_unlock(%s, %s)")
        except psycopg.Error:
            # The session is gone, and the lock with it.
            self._drop()
        finally:
            self._threads.release()

    def still_held(self) -> bool:
        require(self._threads.locked(), "only the holder asks")
        try:
            return bool(self._ask(HELD_QUERY))
        except psycopg.Error:
            self._drop()
            return False

    def close(self) -> None:
        self._drop()

    def _try_advisory(self) -> bool:
        try:
            return bool(self._ask("SELECT pg_try_advisory_lock(%s, %s)"))
        except psycopg.OperationalError:
            # A database restart or a dropped connection: connect again on the next try.
            log.warning("the pricing lock's connection failed; connecting again")
            self._drop()
            return False

    def _ask(self, query: str) -> object:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        row = self._conn.execute(query, (ADVISORY_LOCK_CLASS, self._key)).fetchone()
        return None if row is None else row[0]

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
