"""The ledger's read models: balances, statements and holds as SQLAlchemy 2 tables.

Every row is a projection of account events (see `ledger_follower.py`): dropped and rebuilt, the
tables come back identical, because every value in them comes from an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    and_,
    or_,
    select,
)

from ticketing.accounts.domain import limits

# Where the journey follower's transfers begin (`journey_charges`): debits and holds, then the
# refunds it makes as top-ups.
JOURNEY_PREFIXES = ("journey:", "top-up:journey-", "top-up:purse-refund:")

# Page sizes of statement and listing queries.
PAGE_SIZE_MAX = 200
PAGE_SIZE_DEFAULT = 50

metadata = MetaData()

balances = Table(
    "ledger_balances",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("rider_category", SmallInteger, nullable=False),
    Column("display_name", String(limits.DISPLAY_NAME_MAX_CHARS), nullable=False),
    Column("status", String(16), nullable=False),
    Column("posted_vnd", BigInteger, nullable=False),
    Column("pending_vnd", BigInteger, nullable=False),
    Column("available_vnd", BigInteger, nullable=False),
    Column("overdraft_vnd", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

statement_lines = Table(
    "ledger_statement_lines",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    # The account event's version: a gap-free, ordered position in the account's history.
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("reference", String(limits.TRANSFER_ID_MAX_CHARS), nullable=False),
    Column("description", String(limits.DESCRIPTION_MAX_CHARS), nullable=False),
    Column("posted_delta_vnd", BigInteger, nullable=False),
    Column("pending_delta_vnd", BigInteger, nullable=False),
    Column("posted_after_vnd", BigInteger, nullable=False),
    Column("pending_after_vnd", BigInteger, nullable=False),
    Column("available_after_vnd", BigInteger, nullable=False),
)

holds = Table(
    "ledger_holds",
    metadata,
    Column("hold_id", String(limits.TRANSFER_ID_MAX_CHARS), primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("amount_vnd", BigInteger, nullable=False),
    Column("posted_vnd", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", String(limits.DESCRIPTION_MAX_CHARS), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Index("ix_ledger_holds_due", "status", "expires_at"),
)

VIEW_TABLES = (balances, statement_lines, holds)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in these tables is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LedgerLine:
    """One line of an account's statement (`LedgerReadModel.journey_lines`)."""

    account_id: UUID
    kind: str
    reference: str
    posted_delta_vnd: int
    pending_delta_vnd: int


@dataclass(frozen=True)
class StatementPage:
    lines: list[dict[str, Any]]
    next_before_seq: int | None


class LedgerReadModel:
    """Queries over the projected tables. Reads may trail the event store by a moment."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def balance(self, account_id: UUID) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(balances).where(balances.c.account_id == account_id)).first()
        return None if row is None else _clean(row._asdict())

    def list_balances(self, *, after: UUID | None, limit: int) -> list[dict[str, Any]]:
        limit = min(limit, PAGE_SIZE_MAX)
        query = select(balances).order_by(balances.c.account_id).limit(limit)
        if after is not None:
            query = query.where(balances.c.account_id > after)
        with self.engine.connect() as conn:
            return [_clean(r._asdict()) for r in conn.execute(query)]

    def statement(self, account_id: UUID, *, before_seq: int | None, limit: int) -> StatementPage:
        """Newest lines first; pass `next_before_seq` back to read the page after."""
        limit = min(limit, PAGE_SIZE_MAX)
        query = (
            select(statement_lines)
            .where(statement_lines.c.account_id == account_id)
            .order_by(statement_lines.c.seq.desc())
            .limit(limit + 1)
        )
        if before_seq is not None:
            query = query.where(statement_lines.c.seq < before_seq)
        with self.engine.connect() as conn:
            rows = [_clean(r._asdict()) for r in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return StatementPage(lines=rows, next_before_seq=rows[-1]["seq"] if more else None)

    def due_holds(self, *, now: datetime, limit: int) -> list[tuple[UUID, str]]:
        """Pending holds past their expiry, for the sweeper: (account id, hold id)."""
        query = (
            select(holds.c.account_id, holds.c.hold_id)
            .where(and_(holds.c.status == "pending", holds.c.expires_at <= now))
            .order_by(holds.c.expires_at)
            .limit(min(limit, PAGE_SIZE_MAX))
        )
        with self.engine.connect() as conn:
            return [(r.account_id, r.hold_id) for r in conn.execute(query)]

    def journey_lines(self, account_id: UUID | None = None) -> list[LedgerLine]:
        """Statement lines under the transfer ids the journey follower derives from journeys
        (`journey_reconciliation`), of one account or of all."""
        query = select(
            statement_lines.c.account_id,
            statement_lines.c.kind,
            statement_lines.c.reference,
            statement_lines.c.posted_delta_vnd,
            statement_lines.c.pending_delta_vnd,
        ).where(or_(*(statement_lines.c.reference.startswith(p) for p in JOURNEY_PREFIXES)))
        if account_id is not None:
            query = query.where(statement_lines.c.account_id == account_id)
        with self.engine.connect() as conn:
            return [LedgerLine(*row) for row in conn.execute(query.order_by("account_id", "seq"))]

    def pending_holds_placed_before(
        self, prefix: str, placed_before: datetime, *, limit: int
    ) -> list[tuple[UUID, str]]:
        """Holds still pending under ids that begin with `prefix`, placed before a time,
        oldest first: (account id, hold id)."""
        placed_before = placed_before.astimezone(UTC)  # stored in UTC; SQLite compares text
        query = (
            select(holds.c.account_id, holds.c.hold_id)
            .where(
                holds.c.status == "pending",
                holds.c.hold_id.startswith(prefix),
                holds.c.placed_at < placed_before,
            )
            .order_by(holds.c.placed_at)
            .limit(min(limit, PAGE_SIZE_MAX))
        )
        with self.engine.connect() as conn:
            return [(row.account_id, row.hold_id) for row in conn.execute(query)]

    def pending_journey_holds(self, account_id: UUID | None = None) -> list[tuple[UUID, str]]:
        """Holds still pending under a journey's transfer id: (account id, hold id)."""
        query = select(holds.c.account_id, holds.c.hold_id).where(
            and_(holds.c.status == "pending", holds.c.hold_id.startswith("journey:"))
        )
        if account_id is not None:
            query = query.where(holds.c.account_id == account_id)
        with self.engine.connect() as conn:
            return [(row.account_id, row.hold_id) for row in conn.execute(query)]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every view table in a stable order, to compare two builds."""
        with self.engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in VIEW_TABLES
            }


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.items()}
