"""The parking handheld's durable outbox: every action, numbered and written before it is sent.

A sibling of the tap validators' outbox (`validators.outbox`), on the same storage
(`validators.durable_file`): one SQLite file, committed to disk, whose last number handed out is
kept in its own row so pruning never lets a number come back. It is not that outbox because its
rows are not taps: a tap is uploaded in batches and answered accepted, refused, duplicate or
seq_conflict, while an action is a parking request sent on its own, answered by a session, a
record or a problem, and an end needs a lookup first.

An action gets the device's next `seq` and its request id, `handheld-<device>-<seq>`, in the
transaction that stores it, so a retry after a restart sends the very same id (and body) and the
backend applies it once. An end remembers the session it looked up (`resolve`) before it posts,
so a retry ends the same session with the same `end_id` even though the plate no longer has an
open session then. An action leaves the queue only by `finish`, with the backend's verdict.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketing.shared.domain.invariants import require
from validators.durable_file import connect_durable, transaction

# Actions waiting for the backend: a long shift of a busy lot (an action a minute) with no link.
HANDHELD_ACTIONS_MAX = 2_000
# Finished actions kept for the attendant to look back on; older ones are pruned.
HANDHELD_FINISHED_KEPT_MAX = 5_000
SEQ_FIRST = 1
SEQ_MAX = 2**48 - 1
REQUEST_ID_PREFIX = "handheld"
START = "start"
END = "end"
ACTIONS = frozenset({START, END})

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sequence (
        id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)""",
    "INSERT OR IGNORE INTO sequence (id, last_seq) VALUES (1, 0)",
    """CREATE TABLE IF NOT EXISTS actions (
        seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, action TEXT NOT NULL,
        queued_at INTEGER NOT NULL, fields TEXT NOT NULL, session_id TEXT,
        finished_at INTEGER, verdict TEXT)""",
    "CREATE INDEX IF NOT EXISTS actions_pending ON actions (seq) WHERE finished_at IS NULL",
)
_COLUMNS = "seq, request_id, action, queued_at, fields, session_id, verdict"


@dataclass(frozen=True)
class StoredAction:
    """An action as the outbox holds it. `fields` are the request's own (lot, plate, class,
    paid-until, code); `session_id` is an end's session once looked up."""

    seq: int
    request_id: str
    action: str
    queued_at: int
    fields: dict[str, Any]
    session_id: str | None = None
    verdict: dict[str, Any] | None = None

    @property
    def plate(self) -> str:
        return str(self.fields["plate"])


def request_id(device_id: int, seq: int) -> str:
    """The id a request of this action carries, and its `Idempotency-Key`."""
    return f"{REQUEST_ID_PREFIX}-{device_id}-{seq}"


class HandheldOutbox:
    """One SQLite file of a handheld's actions; safe to share between threads."""

    def __init__(self, path: Path, *, actions_max: int = HANDHELD_ACTIONS_MAX) -> None:
        require(1 <= actions_max <= HANDHELD_ACTIONS_MAX, "outbox size out of bounds")
        self.path = path
        self.actions_max = actions_max
        self._lock = threading.Lock()
        self._db = connect_durable(path)
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            highest = db.execute("SELECT max(seq) FROM actions").fetchone()[0] or 0
            last = db.execute("SELECT last_seq FROM sequence").fetchone()[0]
            require(last >= highest, "the outbox's sequence is behind its actions")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self, action: str, fields: dict[str, Any], *, device_id: int, at: int
    ) -> StoredAction:
        """Commits an action under the device's next seq and returns it as stored."""
        require(action in ACTIONS, "an action is a start or an end")
        payload = json.dumps(fields, separators=(",", ":"), sort_keys=True)
        with self._transaction() as db:
            pending = db.execute(
                "SELECT count(*) FROM actions WHERE finished_at IS NULL"
            ).fetchone()[0]
            if pending >= self.actions_max:
                raise HandheldOutboxFull(self.actions_max)
            seq: int = db.execute("SELECT last_seq FROM sequence").fetchone()[0] + 1
            require(SEQ_FIRST <= seq <= SEQ_MAX, "the device's sequence is exhausted")
            db.execute("UPDATE sequence SET last_seq = ?", (seq,))
            rid = request_id(device_id, seq)
            db.execute(
                "INSERT INTO actions (seq, request_id, action, queued_at, fields)"
                " VALUES (?, ?, ?, ?, ?)",
                (seq, rid, action, at, payload),
            )
        return StoredAction(seq, rid, action, at, json.loads(payload))

    def pending(self, limit: int) -> list[StoredAction]:
        """The oldest actions not yet answered, in seq order."""
        require(limit >= 1, "at least one action")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM actions"  # noqa: S608
                " WHERE finished_at IS NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [_stored(row) for row in rows]

    def resolve(self, seq: int, session_id: str) -> None:
        """Remembers the session an end looked up; it is ended with the same id on every retry."""
        with self._transaction() as db:
            db.execute(
                "UPDATE actions SET session_id = ? WHERE seq = ? AND finished_at IS NULL",
                (session_id, seq),
            )

    def finish(self, seq: int, verdict: dict[str, Any], *, at: int) -> bool:
        """Stores the backend's verdict for an action; False when it was answered already."""
        payload = json.dumps(verdict, separators=(",", ":"), sort_keys=True, default=str)
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE actions SET finished_at = ?, verdict = ? WHERE seq = ?"
                " AND finished_at IS NULL",
                (at, payload, seq),
            ).rowcount
            db.execute(
                "DELETE FROM actions WHERE finished_at IS NOT NULL AND seq < (SELECT seq FROM"
                " actions WHERE finished_at IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (HANDHELD_FINISHED_KEPT_MAX - 1,),
            )
        return changed == 1

    def get(self, seq: int) -> StoredAction | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM actions WHERE seq = ?",  # noqa: S608
                (seq,),
            ).fetchone()
        return None if row is None else _stored(row)

    def pending_count(self) -> int:
        with self._lock:
            count: int = self._db.execute(
                "SELECT count(*) FROM actions WHERE finished_at IS NULL"
            ).fetchone()[0]
        return count

    def last_seq(self) -> int:
        with self._lock:
            last: int = self._db.execute("SELECT last_seq FROM sequence").fetchone()[0]
        return last

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._lock, self._db)


def _stored(row: tuple[Any, ...]) -> StoredAction:
    seq, rid, action, queued_at, fields, session_id, verdict = row
    return StoredAction(
        seq,
        rid,
        action,
        queued_at,
        json.loads(fields),
        session_id,
        None if verdict is None else json.loads(verdict),
    )


class HandheldOutboxFull(Exception):
    """The outbox holds as many unanswered actions as it may: no more are taken."""

    code = "outbox_full"

    def __init__(self, actions_max: int) -> None:
        super().__init__(
            f"{actions_max:,} actions are waiting for the backend; no more can be kept"
        )
