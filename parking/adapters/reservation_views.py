"""Reservations as staff, riders and the sweeper read them, written by the parking follower
(`parking_views.ParkingProjection`). Reads may trail writes by a moment: the sweeper re-reads
each reservation it is given before it closes one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
    update,
)

from parking.domain.limits import NO_SHOW_GRACE
from parking.domain.reservation import Reservation, ReservationState
from ticketing.accounts.adapters.read_model import aware

RESERVATION_EVENTS = (
    Reservation.Booked,
    Reservation.Fulfilled,
    Reservation.Cancelled,
    Reservation.NoShow,
    Reservation.Settled,
)

metadata = MetaData()

parking_reservations = Table(
    "parking_reservations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("reservation_id", String(48), nullable=False),
    Column("lot_id", String(64), nullable=False, index=True),
    Column("vehicle_class", String(16), nullable=False),
    Column("plate_display", String(20), nullable=False),
    Column("account_id", Uuid, nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("window_from", DateTime(timezone=True), nullable=False, index=True),
    Column("window_to", DateTime(timezone=True), nullable=False),
    Column("held_vnd", Integer, nullable=False),
    Column("fee_vnd", Integer, nullable=True),
    Column("session_id", Uuid, nullable=True),
    Column("settled", Boolean, nullable=False, index=True),
)


@dataclass(frozen=True)
class ReservationRow:
    id: UUID
    reservation_id: str
    lot_id: str
    vehicle_class: str
    plate_display: str
    account_id: UUID
    state: str
    window_from: datetime
    window_to: datetime
    held_vnd: int
    fee_vnd: int | None
    session_id: UUID | None
    settled: bool


def apply_reservation_event(conn: Connection, e: Any) -> None:
    """Writes the row change of one reservation event."""
    if isinstance(e, Reservation.Booked):
        conn.execute(
            insert(parking_reservations).values(
                id=e.originator_id,
                reservation_id=e.reservation_id,
                lot_id=e.lot_id,
                vehicle_class=e.vehicle_class,
                plate_display=e.plate_display,
                account_id=e.account_id,
                state=ReservationState.BOOKED.value,
                window_from=e.window_from.astimezone(UTC),
                window_to=e.window_to.astimezone(UTC),
                held_vnd=e.held_vnd,
                settled=False,
            )
        )
    elif isinstance(e, Reservation.Fulfilled):
        _update(e.originator_id, conn, state=ReservationState.FULFILLED, session_id=e.session_id)
    elif isinstance(e, Reservation.Cancelled):
        _update(e.originator_id, conn, state=ReservationState.CANCELLED, fee_vnd=e.fee_vnd)
    elif isinstance(e, Reservation.NoShow):
        _update(e.originator_id, conn, state=ReservationState.NO_SHOW, fee_vnd=e.fee_vnd)
    elif isinstance(e, Reservation.Settled):
        _update(e.originator_id, conn, settled=True)


def _update(aggregate_id: UUID, conn: Connection, **values: Any) -> None:
    if "state" in values:
        values["state"] = str(values["state"])
    conn.execute(
        update(parking_reservations)
        .where(parking_reservations.c.id == aggregate_id)
        .values(**values)
    )


def _row(row: Any) -> ReservationRow:
    values = dict(row._mapping)
    for name in ("window_from", "window_to"):
        values[name] = aware(values[name])
    return ReservationRow(**values)


class ReservationViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def due_no_shows(self, now: datetime, *, limit: int) -> list[UUID]:
        """Booked reservations whose grace after the start has run out, oldest first."""
        query = (
            select(parking_reservations.c.id)
            .where(
                parking_reservations.c.state == ReservationState.BOOKED.value,
                parking_reservations.c.window_from <= now - NO_SHOW_GRACE,
            )
            .order_by(parking_reservations.c.window_from)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def unsettled(self, *, limit: int) -> list[UUID]:
        """Closed reservations whose money an interrupted process left unmoved."""
        query = (
            select(parking_reservations.c.id)
            .where(
                parking_reservations.c.state != ReservationState.BOOKED.value,
                parking_reservations.c.settled.is_(False),
            )
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def reservations(
        self,
        *,
        account_id: UUID | None = None,
        lot_id: str | None = None,
        state: str | None = None,
        limit: int,
    ) -> list[ReservationRow]:
        """Reservations, the latest window first."""
        query = select(parking_reservations)
        if account_id is not None:
            query = query.where(parking_reservations.c.account_id == account_id)
        if lot_id is not None:
            query = query.where(parking_reservations.c.lot_id == lot_id)
        if state is not None:
            query = query.where(parking_reservations.c.state == state)
        query = query.order_by(parking_reservations.c.window_from.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query)]
