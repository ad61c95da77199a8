"""HTTP schemas of parking (docs/parking-api.md), named by role; every field is bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from parking.adapters.parking_views import LotRow, SessionRow
from parking.adapters.reservation_views import ReservationRow
from parking.application.enforcement import Verdict
from parking.domain import limits
from parking.domain.catalogue import Lot, ParkingOperator
from parking.domain.enforcement import EnforcementStatus
from parking.domain.quotes import ParkingQuote
from parking.domain.record import ParkingDetailRecord
from parking.domain.reservation import Reservation, ReservationState
from parking.domain.session import ParkingSession
from parking.domain.tariff import VehicleClass
from ticketing.shared.schemas import PrintableText

CATALOGUE_ID_REGEX = r"^[a-z0-9][a-z0-9-]*$"
REQUEST_ID_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
TIME_OF_DAY_REGEX = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# A TL1 text is 298 characters; room for a longer format, no more.
CODE_TEXT_MAX_CHARS = 400

CatalogueId = Annotated[
    str, Field(min_length=1, max_length=limits.CATALOGUE_ID_MAX_CHARS, pattern=CATALOGUE_ID_REGEX)
]
RequestId = Annotated[
    str, Field(min_length=1, max_length=limits.REQUEST_ID_MAX_CHARS, pattern=REQUEST_ID_REGEX)
]
PlateText = Annotated[PrintableText, Field(min_length=1, max_length=limits.PLATE_TEXT_MAX_CHARS)]
Places = Annotated[StrictInt, Field(ge=0, le=limits.CAPACITY_MAX)]
Amount = Annotated[StrictInt, Field(ge=1, le=limits.TARIFF_AMOUNT_MAX_VND)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Requests


class OperatorCreate(_Request):
    operator_id: CatalogueId
    name: Annotated[PrintableText, Field(min_length=1, max_length=limits.NAME_MAX_CHARS)]


class OpeningHoursBody(_Request):
    opens: Annotated[str, Field(pattern=TIME_OF_DAY_REGEX)]
    closes: Annotated[str, Field(pattern=TIME_OF_DAY_REGEX)]


class CapacityBody(_Request):
    motorbike: Places = 0
    car: Places = 0
    large: Places = 0


class LotCreate(_Request):
    lot_id: CatalogueId
    operator_id: CatalogueId
    name: Annotated[PrintableText, Field(min_length=1, max_length=limits.NAME_MAX_CHARS)]
    address: Annotated[PrintableText, Field(min_length=1, max_length=limits.ADDRESS_MAX_CHARS)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    opening_hours: OpeningHoursBody | None = None
    capacity: CapacityBody
    table_id: CatalogueId


class QuoteCreate(_Request):
    lot_id: CatalogueId
    vehicle_class: VehicleClass
    start: AwareDatetime | None = None
    end: AwareDatetime


class SessionCreate(_Request):
    start_id: RequestId
    lot_id: CatalogueId
    plate: PlateText
    vehicle_class: VehicleClass
    paid_until: AwareDatetime | None = None
    quote_id: UUID | None = None
    account_id: UUID | None = None
    code: Annotated[str, Field(min_length=1, max_length=CODE_TEXT_MAX_CHARS)] | None = None
    # Staff only: when a handheld queued the start while offline.
    started_at: AwareDatetime | None = None


class ExtensionCreate(_Request):
    extension_id: RequestId
    paid_until: AwareDatetime | None = None
    quote_id: UUID | None = None


class EndCreate(_Request):
    end_id: RequestId
    # Staff only: when a handheld queued the end while offline.
    ended_at: AwareDatetime | None = None


class CreditCreate(_Request):
    credit_id: RequestId
    amount_vnd: Amount
    reason: Annotated[PrintableText, Field(min_length=1, max_length=limits.CREDIT_REASON_MAX_CHARS)]


class ReservationCreate(_Request):
    reservation_id: RequestId
    lot_id: CatalogueId
    vehicle_class: VehicleClass
    plate: PlateText
    window_from: Annotated[AwareDatetime, Field(alias="from")]
    window_to: Annotated[AwareDatetime, Field(alias="to")]
    account_id: UUID | None = None


class CancelCreate(_Request):
    cancel_id: RequestId


class ArrivalCreate(_Request):
    start_id: RequestId


# Answers


class OperatorPublic(BaseModel):
    operator_id: str
    name: str

    @classmethod
    def of(cls, operator: ParkingOperator) -> OperatorPublic:
        return cls(operator_id=operator.operator_id, name=operator.name)


class OperatorsPage(BaseModel):
    items: list[OperatorPublic]


def _hh_mm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


class LotPublic(BaseModel):
    lot_id: str
    operator_id: str
    name: str
    address: str
    lat: float
    lon: float
    opening_hours: dict[str, str] | None
    capacity: dict[str, int]
    table_id: str
    free: dict[str, int] | None = None
    distance_m: float | None = None

    @classmethod
    def of(cls, lot: Lot, free: dict[str, int] | None = None) -> LotPublic:
        hours = lot.opening_hours
        return cls(
            lot_id=lot.lot_id,
            operator_id=lot.operator_id,
            name=lot.name,
            address=lot.address,
            lat=lot.lat,
            lon=lot.lon,
            opening_hours=None
            if hours is None
            else {"opens": _hh_mm(hours.opens_minute), "closes": _hh_mm(hours.closes_minute)},
            capacity=lot.capacity,
            table_id=lot.table_id,
            free=free,
        )

    @classmethod
    def of_row(cls, row: LotRow) -> LotPublic:
        return cls(
            lot_id=row.lot_id,
            operator_id=row.operator_id,
            name=row.name,
            address=row.address,
            lat=row.lat,
            lon=row.lon,
            opening_hours=None,
            capacity=row.capacity,
            table_id=row.table_id,
            free=row.free,
            distance_m=row.distance_m,
        )


class LotsPage(BaseModel):
    items: list[LotPublic]


class SegmentPublic(BaseModel):
    start: datetime
    end: datetime
    version: int
    period: str
    rule: str
    blocks: int
    amount_vnd: int


def _segments(segments: list[dict[str, Any]]) -> list[SegmentPublic]:
    return [
        SegmentPublic(**{k: v for k, v in segment.items() if k != "before_cap_vnd"})
        for segment in segments
    ]


class QuotePublic(BaseModel):
    quote_id: UUID
    lot_id: str
    table_id: str
    vehicle_class: str
    start: datetime
    end: datetime
    amount_vnd: int
    segments: list[SegmentPublic]
    max_stay_minutes: int
    expires_at: datetime

    @classmethod
    def of(cls, made: ParkingQuote) -> QuotePublic:
        return cls(
            quote_id=made.id,
            lot_id=made.lot_id,
            table_id=made.table_id,
            vehicle_class=made.vehicle_class,
            start=made.start,
            end=made.end,
            amount_vnd=made.amount_vnd,
            segments=_segments(made.segments),
            max_stay_minutes=made.max_stay_minutes,
            expires_at=made.expires_at,
        )


class SessionPublic(BaseModel):
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
    held_vnd: int
    ended_at: datetime | None
    fee_vnd: int | None
    unpaid_vnd: int | None

    @classmethod
    def of(cls, session: ParkingSession) -> SessionPublic:
        ended = session.ended_at is not None
        return cls(
            session_id=session.id,
            lot_id=session.lot_id,
            operator_id=session.operator_id,
            plate=session.plate,
            plate_display=session.plate_display,
            vehicle_class=session.vehicle_class,
            account_id=session.account_id,
            state=session.state.value,
            started_by=session.started_by,
            started_at=session.started_at,
            paid_until=session.paid_until,
            held_vnd=session.held_vnd,
            ended_at=session.ended_at,
            fee_vnd=session.fee_vnd if ended else None,
            unpaid_vnd=session.unpaid_vnd if ended else None,
        )

    @classmethod
    def of_row(cls, row: SessionRow) -> SessionPublic:
        return cls(**{k: v for k, v in row.__dict__.items() if k != "ends_by"})


class SessionsPage(BaseModel):
    items: list[SessionPublic]


class CreditPublic(BaseModel):
    credit_id: str
    number: int
    amount_vnd: int
    reason: str


class RecordPublic(BaseModel):
    record_id: UUID
    session_id: UUID
    lot_id: str
    operator_id: str
    table_id: str
    versions: list[int]
    plate: str
    vehicle_class: str
    account_id: UUID
    started_at: datetime
    started_by: str
    ended_at: datetime
    ended_by: str
    segments: list[SegmentPublic]
    fee_vnd: int
    held_vnd: int
    posted_vnd: int
    debited_vnd: int
    unpaid_vnd: int
    credits: list[CreditPublic]
    net_vnd: int

    @classmethod
    def of(cls, record: ParkingDetailRecord) -> RecordPublic:
        return cls(
            record_id=record.id,
            session_id=record.session_id,
            lot_id=record.lot_id,
            operator_id=record.operator_id,
            table_id=record.table_id,
            versions=record.versions,
            plate=record.plate,
            vehicle_class=record.vehicle_class,
            account_id=record.account_id,
            started_at=record.started_at,
            started_by=record.started_by,
            ended_at=record.ended_at,
            ended_by=record.ended_by,
            segments=_segments(record.segments),
            fee_vnd=record.fee_vnd,
            held_vnd=record.held_vnd,
            posted_vnd=record.posted_vnd,
            debited_vnd=record.debited_vnd,
            unpaid_vnd=record.unpaid_vnd,
            credits=[
                CreditPublic(credit_id=credit_id, **credit)
                for credit_id, credit in sorted(
                    record.credits.items(), key=lambda item: int(item[1]["number"])
                )
            ],
            net_vnd=record.net_vnd,
        )


class Ended(BaseModel):
    session: SessionPublic
    record: RecordPublic


class EnforcementQuery(BaseModel):
    """An officer's question, read from the query string (`parking.api.enforcement`)."""

    lot_id: str = Field(min_length=1, max_length=limits.CATALOGUE_ID_MAX_CHARS)
    plate: str = Field(min_length=1, max_length=limits.PLATE_TEXT_MAX_CHARS)


class VerdictPublic(BaseModel):
    lot_id: str
    plate: str
    status: EnforcementStatus
    paid_until: datetime | None
    session_id: UUID | None

    @classmethod
    def of(cls, verdict: Verdict) -> VerdictPublic:
        return cls(
            lot_id=verdict.lot_id,
            plate=verdict.plate,
            status=verdict.status,
            paid_until=verdict.paid_until,
            session_id=verdict.session_id,
        )


class ReservationPublic(BaseModel):
    reservation_id: str
    lot_id: str
    operator_id: str
    plate: str
    plate_display: str
    vehicle_class: str
    account_id: UUID
    state: str
    window_from: datetime = Field(serialization_alias="from")
    window_to: datetime = Field(serialization_alias="to")
    held_vnd: int
    free_cancel_until: datetime
    late_cancel_vnd: int
    no_show_vnd: int
    fee_vnd: int | None
    session_id: UUID | None
    booked_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, reservation: Reservation) -> ReservationPublic:
        charged = reservation.state in (ReservationState.CANCELLED, ReservationState.NO_SHOW)
        return cls(
            reservation_id=reservation.reservation_id,
            lot_id=reservation.lot_id,
            operator_id=reservation.operator_id,
            plate=reservation.plate,
            plate_display=reservation.plate_display,
            vehicle_class=reservation.vehicle_class,
            account_id=reservation.account_id,
            state=reservation.state.value,
            window_from=reservation.window_from,
            window_to=reservation.window_to,
            held_vnd=reservation.held_vnd,
            free_cancel_until=reservation.free_cancel_until,
            late_cancel_vnd=reservation.late_cancel_vnd,
            no_show_vnd=reservation.no_show_vnd,
            fee_vnd=reservation.fee_vnd if charged else None,
            session_id=reservation.session_id,
            booked_at=reservation.booked_at,
            closed_at=reservation.closed_at,
        )


class ReservationSummary(BaseModel):
    """A reservation as a listing shows it (from the views)."""

    reservation_id: str
    lot_id: str
    vehicle_class: str
    plate_display: str
    account_id: UUID
    state: str
    window_from: datetime = Field(serialization_alias="from")
    window_to: datetime = Field(serialization_alias="to")
    held_vnd: int
    fee_vnd: int | None
    session_id: UUID | None

    @classmethod
    def of_row(cls, row: ReservationRow) -> ReservationSummary:
        return cls(**{k: v for k, v in row.__dict__.items() if k not in ("id", "settled")})


class ReservationsPage(BaseModel):
    items: list[ReservationSummary]
