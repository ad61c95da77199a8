"""The ledger's read models (balances, statements, holds), kept by a tracked follower."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from sqlalchemy import Connection, Engine, Table, insert, select, update

from ticketing.accounts.adapters.read_model import VIEW_TABLES, balances, holds, statement_lines
from ticketing.accounts.domain.account import TransportAccount as Account
from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower
from ticketing.shared.domain.invariants import require

PROJECTION_NAME = "ledger"

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


class LedgerProjection:
    """Balances, statement lines and holds, from the ledger's account events."""

    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = ACCOUNT_TOPICS
    tables: tuple[Table, ...] = VIEW_TABLES

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:  # noqa: ARG002
        section = _Section(conn)
        for domain_event in events:
            section.apply(domain_event)
        section.flush()


class LedgerFollower(Follower):
    """Builds balances, statements and holds from the ledger's account events."""

    def __init__(
        self, ledger: Application[UUID], engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX
    ) -> None:
        super().__init__(ledger, engine, LedgerProjection(), section_size=section_size)


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
