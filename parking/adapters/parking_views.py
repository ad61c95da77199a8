"""Parking as staff, attendants and riders read it: lots, sessions, free places.

Written by a follower of the parking store's log. Free places are a projection: a lot's capacity
per class less its open sessions of that class. Reads may trail writes by a moment; decisions
that must be exact (one session per plate, the enforcement answer) read the aggregates instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    func,
    insert,
    select,
    update,
)

from parking.adapters.reservation_views import (
    RESERVATION_EVENTS,
    apply_reservation_event,
    parking_reservations,
)
from parking.domain.catalogue import Lot, ParkingOperator
from parking.domain.limits import NEAR_RESULTS_MAX
from parking.domain.session import ParkingSession, SessionState
from parking.domain.tariff import VehicleClass
from ticketing.accounts.adapters.read_model import aware
from ticketing.shared.adapters.follower import Follower

PROJECTION_NAME = "parking"
LOTS_LISTED_MAX = 1_000
EARTH_RADIUS_M = 6_371_000.0
METRES_PER_DEGREE_LAT = 111_320.0
PARKING_EVENTS = (
    ParkingOperator.Registered,
    Lot.Registered,
    ParkingSession.Started,
    ParkingSession.Extended,
    ParkingSession.Ended,
    ParkingSession.Settled,
    *RESERVATION_EVENTS,
)

metadata = MetaData()

parking_operators = Table(
    "parking_operators",
    metadata,
    Column("operator_id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
)

parking_lots = Table(
    "parking_lots",
    metadata,
    Column("lot_id", String(64), primary_key=True),
    Column("operator_id", String(64), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("address", String(200), nullable=False),
    Column("lat", Float, nullable=False, index=True),
    Column("lon", Float, nullable=False),
    Column("table_id", String(64), nullable=False),
    Column("capacity_motorbike", Integer, nullable=False),
    Column("capacity_car", Integer, nullable=False),
    Column("capacity_large", Integer, nullable=False),
)

parking_sessions = Table(
    "parking_sessions",
    metadata,
    Column("session_id", Uuid, primary_key=True),
    Column("lot_id", String(64), nullable=False, index=True),
    Column("operator_id", String(64), nullable=False),
    Column("plate", String(16), nullable=False),
    Column("plate_display", String(20), nullable=False),
    Column("vehicle_class", String(16), nullable=False),
    Column("account_id", Uuid, nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("started_by", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("paid_until", DateTime(timezone=True), nullable=False, index=True),
    Column("ends_by", DateTime(timezone=True), nullable=False),
    Column("held_vnd", Integer, nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("fee_vnd", Integer, nullable=True),
    Column("unpaid_vnd", Integer, nullable=True),
)


@dataclass(frozen=True)
class SessionRow:
    session_id: UUID
    lot_id: str
    operator_id: str
    plate: str
    plate_display: str
    vehicle_class: str
    account_id: UUID
    state: str
    started_by: str
    started_at: datetime
    paid_until: datetime
    ends_by: datetime
    held_vnd: int
    ended_at: datetime | None
    fee_vnd: int | None
    unpaid_vnd: int | None


@dataclass(frozen=True)
class LotRow:
    lot_id: str
    operator_id: str
    name: str
    address: str
    lat: float
    lon: float
    table_id: str
    capacity: dict[str, int]
    free: dict[str, int]
    distance_m: float | None = None


class ParkingProjection:
    name: str = PROJECTION_NAME
    topics: tuple[str, ...] = tuple(cls.TOPIC for cls in PARKING_EVENTS)
    tables: tuple[Table, ...] = (
        parking_operators,
        parking_lots,
        parking_sessions,
        parking_reservations,
    )

    def apply(self, conn: Connection, events: Sequence[Any], position: int) -> None:  # noqa: ARG002
        for e in events:
            if isinstance(e, ParkingOperator.Registered):
                conn.execute(
                    insert(parking_operators).values(operator_id=e.operator_id, name=e.name)
                )
            elif isinstance(e, Lot.Registered):
                conn.execute(insert(parking_lots).values(**_lot_values(e)))
            elif isinstance(e, ParkingSession.Started):
                conn.execute(insert(parking_sessions).values(**_session_values(e)))
            elif isinstance(e, ParkingSession.Extended):
                self._update(conn, e.originator_id, paid_until=e.paid_until.astimezone(UTC))
                conn.execute(
                    update(parking_sessions)
                    .where(parking_sessions.c.session_id == e.originator_id)
                    .values(held_vnd=parking_sessions.c.held_vnd + e.held_vnd)
                )
            elif isinstance(e, ParkingSession.Ended):
                self._update(
                    conn,
                    e.originator_id,
                    state=SessionState.ENDED.value,
                    ended_at=e.ended_at.astimezone(UTC),
                    fee_vnd=e.fee_vnd,
                )
            elif isinstance(e, ParkingSession.Settled):
                self._update(
                    conn, e.originator_id, state=SessionState.SETTLED.value, unpaid_vnd=e.unpaid_vnd
                )
            elif isinstance(e, RESERVATION_EVENTS):
                apply_reservation_event(conn, e)

    @staticmethod
    def _update(conn: Connection, session_id: UUID, **values: Any) -> None:
        conn.execute(
            update(parking_sessions)
            .where(parking_sessions.c.session_id == session_id)
            .values(**values)
        )


def _lot_values(e: Any) -> dict[str, Any]:
    return {
        "lot_id": e.lot_id,
        "operator_id": e.operator_id,
        "name": e.name,
        "address": e.address,
        "lat": e.lat,
        "lon": e.lon,
        "table_id": e.table_id,
        **{f"capacity_{cls}": int(e.capacity.get(cls, 0)) for cls in VehicleClass},
    }


def _session_values(e: Any) -> dict[str, Any]:
    return {
        "session_id": e.originator_id,
        "lot_id": e.lot_id,
        "operator_id": e.operator_id,
        "plate": e.plate,
        "plate_display": e.plate_display,
        "vehicle_class": e.vehicle_class,
        "account_id": e.account_id,
        "state": SessionState.OPEN.value,
        "started_by": e.started_by,
        "started_at": e.started_at.astimezone(UTC),
        "paid_until": e.paid_until.astimezone(UTC),
        "ends_by": e.ends_by.astimezone(UTC),
        "held_vnd": e.held_vnd,
    }


def _session_row(row: Any) -> SessionRow:
    values = dict(row._mapping)
    for name in ("started_at", "paid_until", "ends_by", "ended_at"):
        if values[name] is not None:
            values[name] = aware(values[name])
    return SessionRow(**values)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class ParkingViews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def operators(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(parking_operators).order_by(parking_operators.c.operator_id))
            return [(row.operator_id, row.name) for row in rows]

    def sessions(
        self,
        *,
        lot_id: str | None = None,
        account_id: UUID | None = None,
        state: str | None = None,
        limit: int,
    ) -> list[SessionRow]:
        query = select(parking_sessions)
        if lot_id is not None:
            query = query.where(parking_sessions.c.lot_id == lot_id)
        if account_id is not None:
            query = query.where(parking_sessions.c.account_id == account_id)
        if state is not None:
            query = query.where(parking_sessions.c.state == state)
        query = query.order_by(parking_sessions.c.started_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_session_row(row) for row in conn.execute(query)]

    def ending_within(
        self, now: datetime, window: timedelta, *, account_id: UUID | None, limit: int
    ) -> list[SessionRow]:
        """Open sessions whose paid time ends in [now, now + window), soonest first."""
        query = select(parking_sessions).where(
            parking_sessions.c.state == SessionState.OPEN.value,
            parking_sessions.c.paid_until >= now,
            parking_sessions.c.paid_until < now + window,
        )
        if account_id is not None:
            query = query.where(parking_sessions.c.account_id == account_id)
        query = query.order_by(parking_sessions.c.paid_until).limit(limit)
        with self.engine.connect() as conn:
            return [_session_row(row) for row in conn.execute(query)]

    def to_sweep(self, now: datetime, *, limit: int) -> tuple[list[UUID], list[UUID]]:
        """Open sessions past their longest stay, and ended sessions not yet settled."""
        overstayed = select(parking_sessions.c.session_id).where(
            parking_sessions.c.state == SessionState.OPEN.value,
            parking_sessions.c.ends_by <= now,
        )
        unsettled = select(parking_sessions.c.session_id).where(
            parking_sessions.c.state == SessionState.ENDED.value
        )
        with self.engine.connect() as conn:
            return (
                list(conn.execute(overstayed.limit(limit)).scalars()),
                list(conn.execute(unsettled.limit(limit)).scalars()),
            )

    def lot(self, lot_id: str) -> LotRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(parking_lots).where(parking_lots.c.lot_id == lot_id)).first()
            if row is None:
                return None
            return self._lot_rows(conn, [row])[0]

    def lots(self, limit: int = LOTS_LISTED_MAX) -> list[LotRow]:
        """Every lot, in id order, with its free places."""
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(select(parking_lots).order_by(parking_lots.c.lot_id).limit(limit))
            )
            return self._lot_rows(conn, rows)

    def near(
        self, lat: float, lon: float, radius_m: float, vehicle_class: VehicleClass | None
    ) -> list[LotRow]:
        """Lots within `radius_m` of a point, nearest first; with a class, only those with a
        free place of it."""
        dlat = radius_m / METRES_PER_DEGREE_LAT
        dlon = radius_m / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(lat)), 0.01))
        box = and_(
            parking_lots.c.lat.between(lat - dlat, lat + dlat),
            parking_lots.c.lon.between(lon - dlon, lon + dlon),
        )
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(parking_lots).where(box)))
            lots = self._lot_rows(conn, rows)
        found = []
        for lot in lots:
            distance = distance_m(lat, lon, lot.lat, lot.lon)
            if distance > radius_m:
                continue
            if vehicle_class is not None and lot.free.get(str(vehicle_class), 0) <= 0:
                continue
            found.append(_with_distance(lot, distance))
        found.sort(key=lambda lot: (lot.distance_m, lot.lot_id))
        return found[:NEAR_RESULTS_MAX]

    def _lot_rows(self, conn: Connection, rows: Sequence[Any]) -> list[LotRow]:
        ids = [row.lot_id for row in rows]
        occupied: dict[tuple[str, str], int] = {}
        if ids:
            counts = conn.execute(
                select(
                    parking_sessions.c.lot_id,
                    parking_sessions.c.vehicle_class,
                    func.count(),
                )
                .where(
                    parking_sessions.c.lot_id.in_(ids),
                    parking_sessions.c.state == SessionState.OPEN.value,
                )
                .group_by(parking_sessions.c.lot_id, parking_sessions.c.vehicle_class)
            )
            occupied = {(lot_id, cls): int(count) for lot_id, cls, count in counts}
        lots = []
        for row in rows:
            capacity = {str(cls): int(getattr(row, f"capacity_{cls}")) for cls in VehicleClass}
            free = {
                cls: max(0, places - occupied.get((row.lot_id, cls), 0))
                for cls, places in capacity.items()
            }
            lots.append(
                LotRow(
                    row.lot_id,
                    row.operator_id,
                    row.name,
                    row.address,
                    row.lat,
                    row.lon,
                    row.table_id,
                    capacity,
                    free,
                )
            )
        return lots


def _with_distance(lot: LotRow, distance: float) -> LotRow:
    return LotRow(**{**lot.__dict__, "distance_m": round(distance, 1)})


class ParkingFollower(Follower):
    def __init__(self, store: Application[UUID], engine: Engine) -> None:
        super().__init__(store, engine, ParkingProjection())
