"""The refusals of devices' requests, for staff, newest first: a projection of
`DeviceRefusal.Recorded` events (an enrolment code that could not enrol, an upload refused whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    or_,
    select,
)

from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower
from ticketing.taps.domain.device_refusal import REFUSAL_REASON_MAX_CHARS, DeviceRefusal

PROJECTION_NAME = "device_refusals"
# Refusals listed in one answer, newest first.
REFUSALS_PAGE_MAX = 200
REQUEST_MAX_CHARS = 16
TOKEN_ID_MAX_CHARS = 16

metadata = MetaData()

device_refusals = Table(
    "device_refusals",
    metadata,
    Column("refusal_id", Uuid, primary_key=True),
    Column("request", String(REQUEST_MAX_CHARS), nullable=False),
    Column("reason", String(REFUSAL_REASON_MAX_CHARS), nullable=False),
    Column("validator_id", BigInteger, nullable=False),
    Column("token_validator_id", BigInteger, nullable=False),
    Column("token_id", String(TOKEN_ID_MAX_CHARS), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("taps", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),
    Index("ix_device_refusals_validator", "validator_id", "position"),
    Index("ix_device_refusals_token_validator", "token_validator_id", "position"),
    Index("ix_device_refusals_position", "position"),
)


class DeviceRefusalProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = (DeviceRefusal.Recorded.TOPIC,)
    tables: tuple[Table, ...] = (device_refusals,)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        rows = [
            {
                "refusal_id": e.originator_id,
                "request": e.request,
                "reason": e.reason,
                "validator_id": e.validator_id,
                "token_validator_id": e.token_validator_id,
                "token_id": e.token_id,
                "epoch": e.epoch,
                "first_seq": e.first_seq,
                "last_seq": e.last_seq,
                "taps": e.taps,
                "at": e.at,
                "position": position,
            }
            for e in events
            if isinstance(e, DeviceRefusal.Recorded)
        ]
        if rows:
            conn.execute(insert(device_refusals), rows)


class RefusalFollower(Follower):
    def __init__(self, app: Any, engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX) -> None:
        super().__init__(app, engine, DeviceRefusalProjection(), section_size=section_size)


@dataclass(frozen=True)
class RefusalView:
    refusal_id: UUID
    request: str
    reason: str
    validator_id: int
    token_validator_id: int
    token_id: str
    epoch: int
    first_seq: int
    last_seq: int
    taps: int
    at: datetime


class RefusalViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def refusals(
        self, *, validator_id: int | None = None, limit: int = REFUSALS_PAGE_MAX
    ) -> list[RefusalView]:
        """Refusals newest first: every device's, or those naming `validator_id` (as the
        validator asked for, or as the token's owner)."""
        query = select(device_refusals)
        if validator_id is not None:
            query = query.where(
                or_(
                    device_refusals.c.validator_id == validator_id,
                    device_refusals.c.token_validator_id == validator_id,
                )
            )
        order = (device_refusals.c.position.desc(), device_refusals.c.at.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(*order).limit(max(1, min(limit, REFUSALS_PAGE_MAX)))
            ).all()
        return [
            RefusalView(**{name: getattr(row, name) for name in RefusalView.__dataclass_fields__})
            for row in rows
        ]
