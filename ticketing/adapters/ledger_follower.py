"""Follows the ledger's notification log into the read-model tables, each event exactly once.

The position in the log is a tracking row written in the same transaction as the rows an event
produced, so a crash mid-section leaves both untouched and the section is simply read again.
The library's own projection runners need `recorder.subscribe()`, which its SQLite recorder
lacks; this follower pulls sections instead, and so runs the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Tracking, TrackingRecorder
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ticketing.adapters.read_model import (
    VIEW_TABLES,
    balances,
    holds,
    metadata,
    statement_lines,
    tracking,
)
from ticketing.domain.account import TransportAccount as Account
from ticketing.domain.invariants import require

PROJECTION_NAME = "ledger"
# Notifications applied in one transaction.
FOLLOW_SECTION_MAX = 500
# When idle, how often to look for events written by other processes.
FOLLOW_POLL_S = 0.25

ACCOUNT_EVENTS: tuple[type[Account.Event], ...] = (
    Account.Opened,
    Account.ToppedUp,
    Account.Debited,
    Account.HoldPlaced,
    Account.HoldPosted,
    Account.HoldVoided,
    Account.HoldExpired,
    Account.Blocked,
    Account.Unblocked,
    Account.Closed,
)
ACCOUNT_TOPICS = tuple(cls.TOPIC for cls in ACCOUNT_EVENTS)

log = logging.getLogger(__name__)


class SqlTrackingRecorder(TrackingRecorder):
    """The follower's position in the log, one row per projection."""

    def __init__(self, engine: Engine, projection: str = PROJECTION_NAME) -> None:
        self.engine = engine
        self.projection = projection

    def insert_tracking(self, tracking_: Tracking) -> None:
        with self.engine.begin() as conn:
            _advance(conn, self.projection, self._position(conn), tracking_.notification_id)

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tracking.c.notification_id, tracking.c.application_name).where(
                    tracking.c.projection == self.projection
                )
            ).first()
        if row is None or row.application_name != application_name or row.notification_id == 0:
            return None
        return int(row.notification_id)

    def _position(self, conn: Connection) -> int:
        value = conn.execute(
            select(tracking.c.notification_id).where(tracking.c.projection == self.projection)
        ).scalar_one()
        return int(value)


class LedgerFollower:
    """Builds balances, statements and holds from the ledger's account events."""

    def __init__(
        self, ledger: Application[UUID], engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX
    ) -> None:
        require(0 < section_size <= FOLLOW_SECTION_MAX, "sections are bounded")
        self.ledger = ledger
        self.engine = engine
        self.section_size = section_size
        self.tracking = SqlTrackingRecorder(engine)
        self.wake = threading.Event()

    def create_tables(self) -> None:
        metadata.create_all(self.engine)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(tracking).values(
                        projection=PROJECTION_NAME,
                        application_name=self.ledger.name,
                        notification_id=0,
                    )
                )
        except IntegrityError:
            pass  # Another process, or an earlier start, created the row.

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.ledger.name) or 0

    def lag(self) -> int:
        """Notifications in the log that the follower has not reached yet."""
        head = self.ledger.recorder.max_notification_id() or 0
        return max(0, head - self.position())

    def pull(self) -> int:
        """Applies one section of new account events; returns how many were applied."""
        start = self.position()
        # Read the head first: every id up to a committed head is itself committed (the
        # stores serialise inserts), so a short section means nothing relevant lies between
        # its last event and the head, and the position may move up to the head.
        head = self.ledger.recorder.max_notification_id() or 0
        if head <= start:
            return 0
        notifications = self.ledger.notification_log.select(
            start=start + 1, limit=self.section_size, stop=head, topics=ACCOUNT_TOPICS
        )
        end = notifications[-1].id if len(notifications) == self.section_size else head
        events = [self.ledger.mapper.to_domain_event(n) for n in notifications]
        try:
            with self.engine.begin() as conn:
                # Claim the section first: a second follower on the same tables waits here,
                # then finds the position moved and backs off without applying anything twice.
                _advance(conn, PROJECTION_NAME, start, end)
                section = _Section(conn)
                for domain_event in events:
                    section.apply(domain_event)
                section.flush()
        except _Overtaken:
            log.info("another follower applied notifications after %s first", start)
            return 0
        return len(notifications)

    def catch_up(self) -> int:
        """Applies every account event in the log; returns how many."""
        applied = 0
        while count := self.pull():
            applied += count
        return applied

    def rebuild(self) -> int:
        """Drops the view tables and the position, then builds everything again from the log."""
        with self.engine.begin() as conn:
            for table in reversed(VIEW_TABLES):
                table.drop(conn, checkfirst=True)
            conn.execute(tracking.delete().where(tracking.c.projection == PROJECTION_NAME))
        self.create_tables()
        return self.catch_up()

    def run(self, stop: threading.Event, *, poll_s: float = FOLLOW_POLL_S) -> None:
        """Follows the log until `stop` is set; `wake` shortens the wait after a local save."""
        while not stop.is_set():
            try:
                applied = self.catch_up()
            except Exception:
                # The follower must outlive a passing database fault; it resumes from its
                # tracked position, so nothing is lost or applied twice.
                log.exception("ledger follower failed; retrying")
                applied = 0
            if not applied:
                self.wake.wait(poll_s)
                self.wake.clear()


class _Overtaken(Exception):
    """The tracked position moved under this follower."""


def _advance(conn: Connection, projection: str, expected: int, new: int) -> None:
    require(new > expected, "the tracked position only moves forward")
    result = conn.execute(
        update(tracking)
        .where(tracking.c.projection == projection, tracking.c.notification_id == expected)
        .values(notification_id=new)
    )
    if result.rowcount != 1:
        raise _Overtaken


@dataclass
class _Section:
    """Rows touched while applying one section, written at its end in few statements."""

    conn: Connection
    accounts: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    new_accounts: set[UUID] = field(default_factory=set)
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_holds: set[str] = field(default_factory=set)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, e: Any) -> None:
        account_id: UUID = e.originator_id
        if isinstance(e, Account.Opened):
            self.new_accounts.add(account_id)
            self.accounts[account_id] = {
                "account_id": account_id,
                "rider_category": e.rider_category,
                "display_name": e.display_name,
                "status": "open",
                "posted_vnd": 0,
                "pending_vnd": 0,
                "available_vnd": 0,
                "overdraft_vnd": e.overdraft_vnd,
                "opened_at": _utc(e.at),
            }
            self._line(e, "opened", "", "", 0, 0)
        elif isinstance(e, Account.ToppedUp):
            self._line(e, "top_up", e.transfer_id, e.payment_reference, e.amount_vnd, 0)
        elif isinstance(e, Account.Debited):
            self._line(e, "debit", e.transfer_id, e.description, -e.amount_vnd, 0)
        elif isinstance(e, Account.HoldPlaced):
            self._place_hold(e)
            self._line(e, "hold_placed", e.hold_id, e.description, 0, e.amount_vnd)
        elif isinstance(e, Account.HoldPosted):
            self._resolve_hold(e, "posted", e.amount_vnd)
            self._line(e, "hold_posted", e.hold_id, "", -e.amount_vnd, -e.held_vnd)
        elif isinstance(e, Account.HoldVoided | Account.HoldExpired):
            status = "voided" if isinstance(e, Account.HoldVoided) else "expired"
            self._resolve_hold(e, status, 0)
            self._line(e, f"hold_{status}", e.hold_id, "", 0, -e.held_vnd)
        elif isinstance(e, Account.Blocked):
            self._account(account_id)["status"] = "blocked"
            self._line(e, "blocked", "", e.reason, 0, 0)
        elif isinstance(e, Account.Unblocked):
            self._account(account_id)["status"] = "open"
            self._line(e, "unblocked", "", "", 0, 0)
        elif isinstance(e, Account.Closed):
            self._account(account_id)["status"] = "closed"
            self._line(e, "closed", "", "refund owed to the rider", -e.refund_vnd, 0)
        else:
            require(False, f"unhandled account event {type(e).__name__}")

    def _account(self, account_id: UUID) -> dict[str, Any]:
        if account_id not in self.accounts:
            row = self.conn.execute(
                select(balances).where(balances.c.account_id == account_id)
            ).one()
            self.accounts[account_id] = row._asdict()
        return self.accounts[account_id]

    def _line(
        self, e: Any, kind: str, reference: str, description: str, posted: int, pending: int
    ) -> None:
        account = self._account(e.originator_id)
        account["posted_vnd"] += posted
        account["pending_vnd"] += pending
        account["available_vnd"] = account["posted_vnd"] - account["pending_vnd"]
        account["version"] = e.originator_version
        account["updated_at"] = _utc(e.at)
        self.lines.append(
            {
                "account_id": e.originator_id,
                "seq": e.originator_version,
                "at": _utc(e.at),
                "kind": kind,
                "reference": reference,
                "description": description,
                "posted_delta_vnd": posted,
                "pending_delta_vnd": pending,
                "posted_after_vnd": account["posted_vnd"],
                "pending_after_vnd": account["pending_vnd"],
                "available_after_vnd": account["available_vnd"],
            }
        )

    def _place_hold(self, e: Account.HoldPlaced) -> None:
        self.new_holds.add(e.hold_id)
        self.holds[e.hold_id] = {
            "hold_id": e.hold_id,
            "account_id": e.originator_id,
            "amount_vnd": e.amount_vnd,
            "posted_vnd": 0,
            "status": "pending",
            "description": e.description,
            "placed_at": _utc(e.at),
            "expires_at": _utc(e.expires_at),
            "resolved_at": None,
        }

    def _resolve_hold(self, e: Any, status: str, posted_vnd: int) -> None:
        if e.hold_id not in self.holds:
            row = self.conn.execute(select(holds).where(holds.c.hold_id == e.hold_id)).one()
            self.holds[e.hold_id] = row._asdict()
        self.holds[e.hold_id].update(status=status, posted_vnd=posted_vnd, resolved_at=_utc(e.at))

    def flush(self) -> None:
        _write(self.conn, balances, self.accounts, self.new_accounts, balances.c.account_id)
        _write(self.conn, holds, self.holds, self.new_holds, holds.c.hold_id)
        if self.lines:
            self.conn.execute(insert(statement_lines), self.lines)


def _write(
    conn: Connection, table: Any, rows: dict[Any, dict[str, Any]], new: set[Any], key: Any
) -> None:
    inserts = [row for k, row in rows.items() if k in new]
    if inserts:
        conn.execute(insert(table), inserts)
    for k, row in rows.items():
        if k not in new:
            conn.execute(update(table).where(key == k).values(**row))


def _utc(value: datetime) -> datetime:
    # SQLite keeps no offset, so every time is written as UTC and read back as UTC.
    return value.astimezone(UTC)
