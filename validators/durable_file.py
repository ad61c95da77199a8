"""The storage every outbox of a device is kept in: one SQLite file, committed to disk.

The tap validators' outbox (`validators.outbox`) and the parking handheld's
(`validators.handheld_outbox`) both promise that what they hand out a number for survives a crash
or a power cut the moment after; they open their file here so both keep that promise the same way.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SQLITE_LOCK_TIMEOUT_S = 10.0


def connect_durable(path: Path) -> sqlite3.Connection:
    """Opens `path` in WAL mode with synchronous FULL, shareable between the device's threads
    (the caller serialises its use with a lock); statements run in explicit transactions."""
    db = sqlite3.connect(
        path, timeout=SQLITE_LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    db.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the device acts on it, even if the power goes a moment later.
    db.execute("PRAGMA synchronous=FULL")
    return db


@contextmanager
def transaction(lock: threading.Lock, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (`BEGIN IMMEDIATE`), rolled back on any error."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
