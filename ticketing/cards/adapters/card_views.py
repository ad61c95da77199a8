"""Virtual cards as validators and staff read them: a card list and the versioned deny list.

The deny list's version is a position in the event log, so a validator asks for what changed
since the version it holds and never misses an entry. An entry matters only until the card's
last certificate expires; after that its codes are refused anyway, so it is no longer served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
    update,
)

from ticketing.accounts.adapters.read_model import aware
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.cards.domain.virtual_card import VirtualCard
from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower, tracking
from ticketing.shared.domain.invariants import require

PROJECTION_NAME = "cards"
# Entries per deny-list answer; at least one follower section, so a page always moves on.
DENY_LIST_PAGE_MAX = 5_000
# A physical card has no certificate to expire; its deny entry is served this long.
SMART_CARD_DENY_S = 10 * 365 * 24 * 3600
CARD_EVENTS = (
    SmartCard.Issued,
    VirtualCard.Issued,
    VirtualCard.Renewed,
    VirtualCard.Blocked,
    VirtualCard.Retired,
    SmartCard.Blocked,
    SmartCard.Replaced,
)

metadata = MetaData()

virtual_cards = Table(
    "virtual_cards",
    metadata,
    Column("card_id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("issuer_key_id", Integer, nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

smart_cards = Table(
    "smart_cards",
    metadata,
    Column("card_id", Uuid, primary_key=True),
    Column("serial", String(16), nullable=False, unique=True),
    Column("account_id", Uuid, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

deny_list = Table(
    "deny_list",
    metadata,
    Column("card_id", Uuid, primary_key=True),
    Column("serial", String(16), nullable=True),  # physical cards: validators match the serial
    Column("reason", String(16), nullable=False),  # blocked | retired | replaced
    Column("listed_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True), nullable=False),
    Column("version", BigInteger, nullable=False, index=True),
)


def _unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class CardProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = tuple(cls.TOPIC for cls in CARD_EVENTS)
    tables: tuple[Table, ...] = (virtual_cards, smart_cards, deny_list)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            card_id: UUID = e.originator_id
            at = e.at.astimezone(UTC)
            if isinstance(e, VirtualCard.Issued):
                conn.execute(
                    insert(virtual_cards).values(
                        card_id=card_id,
                        account_id=e.account_id,
                        status="active",
                        issuer_key_id=e.issuer_key_id,
                        not_after=_unix(e.not_after),
                        issued_at=at,
                        updated_at=at,
                    )
                )
            elif isinstance(e, VirtualCard.Renewed):
                self._update(
                    conn,
                    card_id,
                    issuer_key_id=e.issuer_key_id,
                    updated_at=at,
                    not_after=_unix(e.not_after),
                )
            elif isinstance(e, VirtualCard.Blocked | VirtualCard.Retired):
                reason = "blocked" if isinstance(e, VirtualCard.Blocked) else "retired"
                self._update(conn, card_id, status=reason, updated_at=at)
                until = conn.execute(
                    select(virtual_cards.c.not_after).where(virtual_cards.c.card_id == card_id)
                ).scalar_one()
                conn.execute(
                    insert(deny_list).values(
                        card_id=card_id, reason=reason, listed_at=at, until=until, version=position
                    )
                )
            elif isinstance(e, SmartCard.Issued):
                conn.execute(
                    insert(smart_cards).values(
                        card_id=card_id,
                        serial=e.serial,
                        account_id=e.account_id,
                        status="active",
                        issued_at=at,
                        updated_at=at,
                    )
                )
            elif isinstance(e, SmartCard.Blocked | SmartCard.Replaced):
                reason = "blocked" if isinstance(e, SmartCard.Blocked) else "replaced"
                conn.execute(
                    update(smart_cards)
                    .where(smart_cards.c.card_id == card_id)
                    .values(status=reason, updated_at=at)
                )
                # The serial is what a validator reads from the card.
                serial = conn.execute(
                    select(smart_cards.c.serial).where(smart_cards.c.card_id == card_id)
                ).scalar_one()
                conn.execute(
                    insert(deny_list).values(
                        card_id=card_id,
                        serial=serial,
                        reason=reason,
                        listed_at=at,
                        until=at + timedelta(seconds=SMART_CARD_DENY_S),
                        version=position,
                    )
                )
            else:
                require(False, f"unhandled card event {type(e).__name__}")

    @staticmethod
    def _update(conn: Connection, card_id: UUID, **values: Any) -> None:
        conn.execute(
            update(virtual_cards).where(virtual_cards.c.card_id == card_id).values(**values)
        )


class CardFollower(Follower):
    def __init__(self, app: Any, engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX) -> None:
        super().__init__(app, engine, CardProjection(), section_size=section_size)


@dataclass(frozen=True)
class DenyListDelta:
    version: int  # pass back as `since` next time
    entries: list[dict[str, Any]]
    more: bool  # another page follows at once


class CardViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def position(self) -> int:
        """How far into the log these views are built: the deny list's current version."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(tracking.c.notification_id).where(tracking.c.projection == PROJECTION_NAME)
            ).scalar()
        return int(value or 0)

    def deny_list_head(self) -> int:
        """The version of the newest deny-list entry (0 when none): what a device lacks when
        its version is below it. The view's position moves with every event; this does not."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(deny_list.c.version))).scalar()
        return int(value or 0)

    def deny_list_since(self, since: int, *, now: datetime) -> DenyListDelta:
        """Entries listed after version `since` whose certificates have not yet expired."""
        position = self.position()
        query = (
            select(deny_list)
            .where(deny_list.c.version > since, deny_list.c.until > now)
            .order_by(deny_list.c.version, deny_list.c.card_id)
            .limit(DENY_LIST_PAGE_MAX + 1)
        )
        with self.engine.connect() as conn:
            rows = [r._asdict() for r in conn.execute(query)]
        if len(rows) <= DENY_LIST_PAGE_MAX:
            return DenyListDelta(version=max(position, since), entries=_clean(rows), more=False)
        # Cut before the last version present, so no version is served in part.
        last = rows[-1]["version"]
        rows = [r for r in rows if r["version"] != last]
        return DenyListDelta(version=rows[-1]["version"], entries=_clean(rows), more=True)

    def cards_of(self, account_id: UUID) -> list[dict[str, Any]]:
        query = (
            select(virtual_cards)
            .where(virtual_cards.c.account_id == account_id)
            .order_by(virtual_cards.c.issued_at.desc())
            .limit(50)
        )
        with self.engine.connect() as conn:
            return _clean([r._asdict() for r in conn.execute(query)])


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: aware(v) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows]
