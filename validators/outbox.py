"""The device's durable outbox: every tap, numbered and written before the gate opens.

A tap gets the next `seq` of this device and is committed to a SQLite file (WAL, synchronous
FULL) together with its offline decision before anyone is let through, so a crash or a power cut
loses no tap a rider saw decided. The last seq handed out is kept in its own row, written in the
same transaction: pruning acknowledged taps never lets a number come back, across restarts too.

Taps leave only by `acknowledge`, once the backend answered for them (accepted, refused or
duplicate). A `seq_conflict` answer is not one of those: another tap holds that number upstream
(this device's state was wiped and it numbers from 1 again), and the backend only kept this one
for review. Such a tap is *held*: never pruned, no longer sent (re-sending cannot change the
answer), until the device is enrolled again (`enrol`, from the epoch its config names). Then
it goes again, numbered in the new epoch, where the number is free, and is recorded as a tap.
Taps carry the epoch they were numbered in; an upload names it.

The QR codes accepted lately are kept in the same file and transaction, so the replay
window (spec/QR.md, step 12) survives a restart: a code shown, then shown again after a reboot,
is still refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketing.shared.domain.invariants import require
from ticketing.tl1.replay import ReplayKey
from validators.durable_file import connect_durable, transaction

# Taps waiting for the backend: two days of a busy gate (about one tap a second) with no link.
OUTBOX_TAPS_MAX = 200_000
# Acknowledged taps kept for the operator to inspect on the device; older ones are pruned.
OUTBOX_ACKED_KEPT_MAX = 10_000
# The backend's range of sequence numbers (ticketing.taps.domain.tap.SEQ_FIRST..SEQ_MAX).
SEQ_FIRST = 1
SEQ_MAX = 2**48 - 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sequence (
        id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)""",
    "INSERT OR IGNORE INTO sequence (id, last_seq) VALUES (1, 0)",
    """CREATE TABLE IF NOT EXISTS taps (
        seq INTEGER PRIMARY KEY, medium TEXT NOT NULL, tapped_at INTEGER NOT NULL,
        decision TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL,
        acked_at INTEGER, backend_status TEXT, backend_reason TEXT)""",
    """CREATE TABLE IF NOT EXISTS enrolment (
        id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL)""",
    "INSERT OR IGNORE INTO enrolment (id, epoch) VALUES (1, 0)",
    "CREATE INDEX IF NOT EXISTS taps_pending ON taps (seq) WHERE acked_at IS NULL",
    """CREATE TABLE IF NOT EXISTS qr_seen (
        card_id TEXT NOT NULL, generated_at INTEGER NOT NULL, counter INTEGER NOT NULL,
        PRIMARY KEY (card_id, generated_at, counter))""",
)
# Columns added since the first outboxes were written; a device's file gains them on opening.
_ADDED_TAP_COLUMNS = {
    "epoch": "ALTER TABLE taps ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
    "held": "ALTER TABLE taps ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
}
SEQ_CONFLICT = "seq_conflict"
_COLUMNS = (
    "seq, medium, tapped_at, decision, reason, payload, backend_status, backend_reason, epoch"
)


@dataclass(frozen=True)
class StoredTap:
    """A tap as the outbox holds it; `upload_fields` are the medium's own (code, serial, proof)."""

    seq: int
    medium: str
    tapped_at: int
    decision: str
    reason: str
    upload_fields: dict[str, Any]
    backend_status: str | None = None
    backend_reason: str | None = None
    epoch: int = 0  # the enrolment this tap was numbered in; the upload names it

    def upload_body(self) -> dict[str, Any]:
        """The tap as `POST /v1/taps/batch` takes it."""
        return {
            "medium": self.medium,
            "seq": self.seq,
            "tapped_at": self.tapped_at,
            "device_decision": self.decision,
            "device_reason": self.reason,
            **self.upload_fields,
        }


@dataclass(frozen=True)
class Acknowledgement:
    seq: int
    status: str  # accepted | refused | duplicate | seq_conflict
    reason: str | None


class Outbox:
    """One SQLite file of taps; safe to share between the device's threads."""

    def __init__(self, path: Path, *, taps_max: int = OUTBOX_TAPS_MAX) -> None:
        require(1 <= taps_max <= OUTBOX_TAPS_MAX, "outbox size out of bounds")
        self.path = path
        self.taps_max = taps_max
        self._lock = threading.Lock()
        # WAL, synchronous FULL: a commit is on disk before the gate opens.
        self._db = connect_durable(path)
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(taps)")}
            for column, statement in _ADDED_TAP_COLUMNS.items():
                if column not in columns:
                    db.execute(statement)
            highest = db.execute("SELECT max(seq) FROM taps").fetchone()[0] or 0
            last = db.execute("SELECT last_seq FROM sequence").fetchone()[0]
            require(last >= highest, "the outbox's sequence is behind its taps")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self,
        *,
        medium: str,
        tapped_at: int,
        decision: str,
        reason: str,
        upload_fields: dict[str, Any],
        seen: ReplayKey | None = None,
        forget_seen_before: int | None = None,
    ) -> int:
        """Commits a tap (and the code it accepted, if any) and returns its seq."""
        payload = json.dumps(upload_fields, separators=(",", ":"), sort_keys=True)
        with self._transaction() as db:
            pending = db.execute("SELECT count(*) FROM taps WHERE acked_at IS NULL").fetchone()[0]
            if pending >= self.taps_max:
                raise OutboxFull(self.taps_max)
            seq: int = db.execute("SELECT last_seq FROM sequence").fetchone()[0] + 1
            require(SEQ_FIRST <= seq <= SEQ_MAX, "the device's sequence is exhausted")
            db.execute("UPDATE sequence SET last_seq = ?", (seq,))
            db.execute(
                "INSERT INTO taps (seq, medium, tapped_at, decision, reason, payload, epoch)"
                " VALUES (?, ?, ?, ?, ?, ?, (SELECT epoch FROM enrolment))",
                (seq, medium, tapped_at, decision, reason, payload),
            )
            if seen is not None:
                card_id, generated_at, counter = seen
                db.execute(
                    "INSERT OR IGNORE INTO qr_seen VALUES (?, ?, ?)",
                    (str(card_id), generated_at, counter),
                )
            if forget_seen_before is not None:
                db.execute("DELETE FROM qr_seen WHERE generated_at < ?", (forget_seen_before,))
        return seq

    def pending(self, limit: int) -> list[StoredTap]:
        """The oldest taps to send (unacknowledged and not held), in seq order."""
        require(limit >= 1, "a batch holds at least one tap")
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM taps"  # noqa: S608
                " WHERE acked_at IS NULL AND held = 0 ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [_stored(row) for row in rows]

    def held(self) -> list[StoredTap]:
        """The taps answered `seq_conflict`, kept until the device is enrolled again."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM taps WHERE acked_at IS NULL AND held = 1"  # noqa: S608
                " ORDER BY seq"
            ).fetchall()
        return [_stored(row) for row in rows]

    def epoch(self) -> int:
        with self._lock:
            epoch: int = self._db.execute("SELECT epoch FROM enrolment").fetchone()[0]
        return epoch

    def enrol(self, epoch: int) -> int:
        """Takes the epoch of a new enrolment; returns how many held taps go again in it.

        Only held taps change epoch: the backend kept them for review and recorded no tap under
        their number, so numbering them in the new epoch records each once. A tap merely
        unanswered keeps its epoch, since it may be recorded already under it."""
        with self._transaction() as db:
            if epoch <= db.execute("SELECT epoch FROM enrolment").fetchone()[0]:
                return 0
            db.execute("UPDATE enrolment SET epoch = ?", (epoch,))
            released: int = db.execute(
                "UPDATE taps SET epoch = ?, held = 0 WHERE acked_at IS NULL AND held = 1",
                (epoch,),
            ).rowcount
        return released

    def acknowledge(self, acknowledgements: Sequence[Acknowledgement], *, at: int) -> int:
        """Marks taps answered by the backend; returns how many were still pending.

        A `seq_conflict` is held instead, and not counted: it is not acknowledged. One of an
        epoch older than the device's is not held but goes again at once, in the device's."""
        with self._transaction() as db:
            changed = 0
            epoch = db.execute("SELECT epoch FROM enrolment").fetchone()[0]
            for ack in acknowledgements:
                if ack.status == SEQ_CONFLICT:
                    db.execute(
                        "UPDATE taps SET held = (epoch >= ?), epoch = ?, backend_status = ?,"
                        " backend_reason = ? WHERE seq = ? AND acked_at IS NULL AND held = 0",
                        (epoch, epoch, ack.status, ack.reason, ack.seq),
                    )
                    continue
                cursor = db.execute(
                    "UPDATE taps SET acked_at = ?, backend_status = ?, backend_reason = ?"
                    " WHERE seq = ? AND acked_at IS NULL",
                    (at, ack.status, ack.reason, ack.seq),
                )
                changed += cursor.rowcount
            db.execute(
                "DELETE FROM taps WHERE acked_at IS NOT NULL AND seq < (SELECT seq FROM taps"
                " WHERE acked_at IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (OUTBOX_ACKED_KEPT_MAX - 1,),
            )
        return changed

    def get(self, seq: int) -> StoredTap | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM taps WHERE seq = ?",  # noqa: S608
                (seq,),
            ).fetchone()
        return None if row is None else _stored(row)

    def pending_count(self) -> int:
        """Taps waiting to be sent; held ones are not (they wait for an enrolment)."""
        with self._lock:
            count: int = self._db.execute(
                "SELECT count(*) FROM taps WHERE acked_at IS NULL AND held = 0"
            ).fetchone()[0]
        return count

    def backlog(self) -> tuple[int, int | None]:
        """Taps not yet delivered (held ones too) and when the oldest was tapped (None: none),
        as the device's health report gives them."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT count(*), min(tapped_at) FROM taps WHERE acked_at IS NULL"
            ).fetchone()
        return int(count), None if oldest is None else int(oldest)

    def last_seq(self) -> int:
        with self._lock:
            last: int = self._db.execute("SELECT last_seq FROM sequence").fetchone()[0]
        return last

    def seen_since(self, generated_at_min: int) -> list[ReplayKey]:
        """The accepted codes generated at or after `generated_at_min`, to refill a window."""
        with self._lock:
            rows = self._db.execute(
                "SELECT card_id, generated_at, counter FROM qr_seen WHERE generated_at >= ?",
                (generated_at_min,),
            ).fetchall()
        return [(UUID(card_id), generated_at, counter) for card_id, generated_at, counter in rows]

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._lock, self._db)


def _stored(row: tuple[Any, ...]) -> StoredTap:
    seq, medium, tapped_at, decision, reason, payload, status, backend_reason, epoch = row
    return StoredTap(
        seq, medium, tapped_at, decision, reason, json.loads(payload), status, backend_reason, epoch
    )


class OutboxFull(Exception):
    """The outbox holds as many unacknowledged taps as it may: the gate stays closed."""

    code = "outbox_full"

    def __init__(self, taps_max: int) -> None:
        super().__init__(f"{taps_max:,} taps are waiting for the backend; no more can be kept")
