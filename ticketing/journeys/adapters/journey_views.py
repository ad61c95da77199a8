"""The journeys table: one row per journey (account, legs, fare, status, reason, what paid).

Besides what the account paid, a row says what a card's purse paid at the validators and what of
it went back to the account, and which passes covered legs and which cap limited the fare at the
last pricing. A database made before these columns existed needs `tapledger projections rebuild`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.shared.adapters.follower import FOLLOW_SECTION_MAX, Follower

PROJECTION_NAME = "journeys"
JOURNEYS_PAGE_MAX = 100

metadata = MetaData()

journeys = Table(
    "journeys",
    metadata,
    Column("journey_id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("paid_from", String(16), nullable=False),
    Column("service_day", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("legs", Text, nullable=False),  # JSON list of legs
    Column("fare_vnd", BigInteger, nullable=True),
    Column("charged_vnd", BigInteger, nullable=False),
    Column("purse_paid_vnd", BigInteger, nullable=False, default=0),
    Column("purse_refunded_vnd", BigInteger, nullable=False, default=0),
    Column("pass_product_ids", Text, nullable=False, default="[]"),  # JSON list
    Column("cap_id", String(64), nullable=True),
    Column("reason_code", String(40), nullable=True),
    Column("reason", String(300), nullable=True),
    Column("position", BigInteger, nullable=False),
    Index("ix_journeys_account", "account_id", "position"),
    Index("ix_journeys_day_status", "service_day", "status"),
)

_CHARGE_SIGN = {"hold": 0, "void": 0, "post": 1, "debit": 1, "refund": -1}


class JourneyProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = tuple(
        cls.TOPIC
        for cls in (
            Journey.Started,
            Journey.LegStarted,
            Journey.Ended,
            Journey.LegsRepaired,
            Journey.LegsJoined,
            Journey.MergedInto,
            Journey.Priced,
            Journey.Charged,
            Journey.PursePaid,
            Journey.PurseRefunded,
            Journey.Refused,
            Journey.ChargeFailed,
            Journey.ClosedAtDayEnd,
            Journey.Corrected,
        )
    )
    tables: tuple[Table, ...] = (journeys,)

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:
        for e in events:
            key = e.originator_id.hex
            if isinstance(e, Journey.Started):
                conn.execute(
                    insert(journeys).values(
                        journey_id=key,
                        account_id=e.account_id.hex,
                        paid_from=e.paid_from,
                        service_day=e.service_day,
                        status=(
                            JourneyStatus.OPEN if e.leg["entry_tap"] else JourneyStatus.EXIT_PENDING
                        ).value,
                        legs=json.dumps([e.leg]),
                        fare_vnd=None,
                        charged_vnd=0,
                        purse_paid_vnd=0,
                        purse_refunded_vnd=0,
                        pass_product_ids=json.dumps([]),
                        position=position,
                    )
                )
                continue
            row = conn.execute(select(journeys).where(journeys.c.journey_id == key)).one()
            values: dict[str, Any] = {"position": position}
            legs = json.loads(row.legs)
            match e:
                case Journey.LegStarted():
                    values |= {"legs": json.dumps([*legs, e.leg]), "status": "open"}
                case Journey.Ended():
                    legs[e.leg_index] = e.leg
                    values["legs"] = json.dumps(legs)
                case Journey.LegsRepaired():
                    legs[e.first_index :] = e.legs
                    values["legs"] = json.dumps(legs)
                    if not all(leg["entry_tap"] and leg["exit_tap"] for leg in legs):
                        values["status"] = JourneyStatus.OPEN.value
                case Journey.LegsJoined():
                    joined = [*legs, *e.legs]
                    values |= {
                        "legs": json.dumps(joined),
                        "purse_paid_vnd": row.purse_paid_vnd + e.purse_paid_vnd,
                        "purse_refunded_vnd": row.purse_refunded_vnd + e.purse_refunded_vnd,
                    }
                    if not all(leg["entry_tap"] and leg["exit_tap"] for leg in joined):
                        values["status"] = JourneyStatus.OPEN.value
                case Journey.MergedInto():
                    values |= {
                        "status": JourneyStatus.MERGED.value,
                        "fare_vnd": 0,
                        "reason_code": "merged",
                        "reason": f"a transfer: charged as part of journey {e.journey_id}",
                    }
                case Journey.Priced():
                    values |= {
                        "fare_vnd": e.fare_vnd,
                        "pass_product_ids": json.dumps(e.pass_product_ids or []),
                        "cap_id": e.cap_id,
                    }
                    if all(leg["entry_tap"] and leg["exit_tap"] for leg in legs):
                        values["status"] = JourneyStatus.ENDED.value
                case Journey.Charged():
                    sign = _CHARGE_SIGN.get(e.kind, 1)
                    values["charged_vnd"] = row.charged_vnd + sign * e.amount_vnd
                case Journey.PursePaid():
                    values["purse_paid_vnd"] = row.purse_paid_vnd + e.amount_vnd
                case Journey.PurseRefunded():
                    values["purse_refunded_vnd"] = row.purse_refunded_vnd + e.amount_vnd
                case Journey.Refused():
                    values |= {"status": "refused", "reason_code": e.code, "reason": e.reason}
                case Journey.ChargeFailed():
                    values |= {"status": "unpaid", "reason_code": e.code, "reason": e.reason}
                case Journey.ClosedAtDayEnd():
                    values |= {"status": "closed", "fare_vnd": e.fare_vnd}
                case Journey.Corrected():
                    values |= {"status": "ended", "fare_vnd": e.fare_vnd}
            conn.execute(update(journeys).where(journeys.c.journey_id == key).values(**values))


class JourneyFollower(Follower):
    def __init__(self, app: Any, engine: Engine, *, section_size: int = FOLLOW_SECTION_MAX) -> None:
        super().__init__(app, engine, JourneyProjection(), section_size=section_size)


@dataclass(frozen=True)
class JourneyRow:
    journey_id: UUID
    account_id: UUID
    paid_from: str
    service_day: date
    status: str
    legs: list[dict[str, Any]]
    fare_vnd: int | None
    charged_vnd: int  # what the account paid, net of refunds
    purse_paid_vnd: int  # what the card's purse paid at the validators
    purse_refunded_vnd: int  # what of it went back to the account
    pass_product_ids: list[str]  # passes that covered legs at the last pricing
    cap_id: str | None  # the cap that limited the fare at the last pricing
    reason_code: str | None
    reason: str | None


class JourneyViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def for_account(self, account_id: UUID, *, limit: int = JOURNEYS_PAGE_MAX) -> list[JourneyRow]:
        """The account's most recent journeys, newest first."""
        limit = max(1, min(limit, JOURNEYS_PAGE_MAX))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(journeys)
                .where(journeys.c.account_id == account_id.hex)
                .order_by(journeys.c.position.desc())
                .limit(limit)
            ).all()
        return [_row(r) for r in rows]

    def covered_by_pass(
        self, account_id: UUID, fare_product_id: str, first_day: date, last_day: date
    ) -> list[UUID]:
        """The ids of the account's journeys priced with the pass product, on service days
        from `first_day` to `last_day` included, in the order they were made."""
        # A LIKE narrows the rows (its `_` matches any character); the JSON list decides.
        pattern = "%" + json.dumps(fare_product_id) + "%"
        with self.engine.connect() as conn:
            found = conn.execute(
                select(journeys.c.journey_id, journeys.c.pass_product_ids)
                .where(
                    journeys.c.account_id == account_id.hex,
                    journeys.c.service_day >= first_day.isoformat(),
                    journeys.c.service_day <= last_day.isoformat(),
                    journeys.c.pass_product_ids.like(pattern),
                )
                .order_by(journeys.c.position)
            ).all()
        return [
            UUID(hex=journey_id)
            for journey_id, products in found
            if fare_product_id in json.loads(products)
        ]

    def with_status(
        self,
        status: JourneyStatus,
        *,
        account_id: UUID | None = None,
        limit: int = JOURNEYS_PAGE_MAX,
    ) -> list[JourneyRow]:
        """Journeys in one status (e.g. refused, for staff to resolve), newest first."""
        limit = max(1, min(limit, JOURNEYS_PAGE_MAX))
        query = select(journeys).where(journeys.c.status == status.value)
        if account_id is not None:
            query = query.where(journeys.c.account_id == account_id.hex)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(journeys.c.position.desc()).limit(limit)).all()
        return [_row(r) for r in rows]

    def open_journeys(self, day: date, limit: int) -> list[UUID]:
        """Journeys of a service day still waiting for a tap: the day-end close charges them."""
        waiting = (JourneyStatus.OPEN.value, JourneyStatus.EXIT_PENDING.value)
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(journeys.c.journey_id)
                .where(journeys.c.service_day <= day.isoformat(), journeys.c.status.in_(waiting))
                .order_by(journeys.c.position)
                .limit(limit)
            ).scalars()
            return [UUID(hex=i) for i in ids]


def _row(r: Any) -> JourneyRow:
    return JourneyRow(
        journey_id=UUID(hex=r.journey_id),
        account_id=UUID(hex=r.account_id),
        paid_from=r.paid_from,
        service_day=date.fromisoformat(r.service_day),
        status=r.status,
        legs=json.loads(r.legs),
        fare_vnd=r.fare_vnd,
        charged_vnd=r.charged_vnd,
        purse_paid_vnd=r.purse_paid_vnd,
        purse_refunded_vnd=r.purse_refunded_vnd,
        pass_product_ids=json.loads(r.pass_product_ids),
        cap_id=r.cap_id,
        reason_code=r.reason_code,
        reason=r.reason,
    )
