"""Parking's HTTP routes (docs/parking-api.md): thin, mapping requests to use cases."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from parking import batch_schemas, schemas
from parking.application.batch_actions import (
    Answer,
)
from parking.application.reservations import BookRequest
from parking.application.service import Parking
from parking.application.sessions import Payer, Payment, StartRequest
from parking.domain import errors, limits
from parking.domain.action_time import acted_at
from parking.domain.catalogue import LotSpec, OpeningHours
from parking.domain.reservation import Reservation
from parking.domain.session import EndedBy, ParkingSession, StartedBy
from parking.domain.tariff import VehicleClass
from ticketing.accounts.api import ERROR_STATUS as LEDGER_ERROR_STATUS
from ticketing.shared.access import Principal, Role, require_role
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.error_status import SHARED_ERROR_STATUS, ErrorStatus, merged, status_for
from ticketing.shared.hand_read import (
    BEARER_SECURITY,
    JSON_MEDIA_TYPE,
    query_parameters,
    read_query,
)
from ticketing.shared.principals import CurrentPrincipal, CurrentStaff, principal_of

ERROR_STATUS: ErrorStatus = {
    errors.OperatorNotFound: 404,
    errors.LotNotFound: 404,
    errors.QuoteNotFound: 404,
    errors.SessionNotFound: 404,
    errors.RecordNotFound: 404,
    errors.CatalogueConflict: 409,
    errors.SessionAlreadyOpen: 409,
    errors.SessionEnded: 409,
    errors.ExtensionNotLater: 409,
    errors.CodeAlreadyUsed: 409,
    errors.RequestIdReused: 409,
    errors.CreditExceedsFee: 409,
    errors.LotClosed: 409,
    errors.NoPlaceFree: 409,
    errors.QuoteExpired: 409,
    errors.ReservationNotFound: 404,
    errors.ReservationClosed: 409,
    errors.ArrivalOutsideWindow: 409,
    # The rest of parking's errors are about the request's content: 422.
}
# An action of a batch is refused by parking or by the ledger, with the status either gives alone.
ACTION_ERROR_STATUS = merged(SHARED_ERROR_STATUS, LEDGER_ERROR_STATUS, ERROR_STATUS)
MINUTES = timedelta(minutes=1)
ReservationId = Annotated[
    str,
    Path(min_length=1, max_length=limits.REQUEST_ID_MAX_CHARS, pattern=schemas.REQUEST_ID_REGEX),
]


async def _parking(request: Request) -> Parking:
    parking: Parking = request.app.state.parking
    return parking


ParkingDep = Annotated[Parking, Depends(_parking)]
router = APIRouter(prefix="/parking", tags=["parking"])


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _person(principal: Principal) -> None:
    """Staff and riders use parking; a validator's token does not."""
    require_role(principal, Role.ADMIN, Role.OPERATOR, Role.RIDER)


def _check_owner(principal: Principal, session: ParkingSession) -> None:
    """Staff act on any session; a rider only on its own, and others look absent to it."""
    _person(principal)
    if principal.role is Role.RIDER and principal.account_id != session.account_id:
        raise errors.SessionNotFound(session.id)


def _created(response: Response, replayed: bool) -> None:
    response.status_code = status.HTTP_200_OK if replayed else status.HTTP_201_CREATED


# Operators and lots


@router.post("/operators", status_code=status.HTTP_201_CREATED)
def create_operator(
    body: schemas.OperatorCreate, parking: ParkingDep, _: CurrentStaff, response: Response
) -> schemas.OperatorPublic:
    """Registers a parking operator; the same operator again answers 200."""
    operator, new = parking.catalogue.register_operator(body.operator_id, body.name)
    _created(response, not new)
    return schemas.OperatorPublic.of(operator)


@router.get("/operators")
def list_operators(parking: ParkingDep, _: CurrentStaff) -> schemas.OperatorsPage:
    items = [schemas.OperatorPublic(operator_id=i, name=n) for i, n in parking.views.operators()]
    return schemas.OperatorsPage(items=items)


@router.post("/lots", status_code=status.HTTP_201_CREATED)
def create_lot(
    body: schemas.LotCreate, parking: ParkingDep, _: CurrentStaff, response: Response
) -> schemas.LotPublic:
    """Registers a lot of an operator, with its capacity and rate table."""
    hours = body.opening_hours
    spec = LotSpec(
        lot_id=body.lot_id,
        operator_id=body.operator_id,
        name=body.name,
        address=body.address,
        lat=body.lat,
        lon=body.lon,
        opening_hours=None
        if hours is None
        else OpeningHours(_minute(hours.opens), _minute(hours.closes)),
        capacity={VehicleClass(k): v for k, v in body.capacity.model_dump().items()},
        table_id=body.table_id,
    )
    lot, new = parking.catalogue.register_lot(spec)
    _created(response, not new)
    response.headers["Location"] = f"/v1/parking/lots/{lot.lot_id}"
    return schemas.LotPublic.of(lot)


@router.get("/lots/{lot_id}")
def get_lot(lot_id: str, parking: ParkingDep, principal: CurrentPrincipal) -> schemas.LotPublic:
    """The lot, with its free places per class (from the views: may trail by a moment)."""
    _person(principal)
    lot = parking.catalogue.lot(lot_id)
    row = parking.views.lot(lot_id)
    return schemas.LotPublic.of(lot, None if row is None else row.free)


@router.get("/lots")
def near_lots(
    parking: ParkingDep,
    principal: CurrentPrincipal,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    radius_m: Annotated[int, Query(ge=1, le=limits.NEAR_RADIUS_M_MAX)] = (
        limits.NEAR_RADIUS_M_DEFAULT
    ),
    vehicle_class: VehicleClass | None = None,
) -> schemas.LotsPage:
    """Lots near a point, nearest first; with a class, only those with a place of it free."""
    _person(principal)
    rows = parking.views.near(lat, lon, radius_m, vehicle_class)
    return schemas.LotsPage(items=[schemas.LotPublic.of_row(row) for row in rows])


# Quotes


@router.post("/quotes", status_code=status.HTTP_201_CREATED)
def create_quote(
    body: schemas.QuoteCreate, parking: ParkingDep, principal: CurrentPrincipal
) -> schemas.QuotePublic:
    """Prices a planned stay; a session may start from the quote while it is valid."""
    _person(principal)
    made = parking.sessions.make_quote(
        body.lot_id, body.vehicle_class, body.end, start=body.start, account_id=principal.account_id
    )
    return schemas.QuotePublic.of(made)


# Sessions


def _payer(body: schemas.SessionCreate, principal: Principal) -> tuple[Payer, StartedBy]:
    if principal.role is Role.RIDER:
        if body.account_id is not None or body.code is not None:
            raise errors.PayerMissing("a rider pays from its own account: no account_id or code")
        if body.started_at is not None:
            raise errors.ActionTimeOutOfRange("only a handheld sends started_at")
        return Payer(account_id=principal.account_id), StartedBy.APP
    require_role(principal, Role.ADMIN, Role.OPERATOR)
    return Payer(account_id=body.account_id, code=body.code), StartedBy.ATTENDANT


@router.post("/sessions", status_code=status.HTTP_201_CREATED)
def start_session(
    body: schemas.SessionCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
    response: Response,
) -> schemas.SessionPublic:
    """Starts a session: holds the quoted amount on the payer's transport account."""
    payer, started_by = _payer(body, principal)
    started = parking.sessions.start(
        StartRequest(
            start_id=body.start_id,
            lot_id=body.lot_id,
            plate=body.plate,
            vehicle_class=body.vehicle_class,
            payment=Payment(body.paid_until, body.quote_id),
            payer=payer,
            started_by=started_by,
            started_at=body.started_at,
        )
    )
    _created(response, started.replayed)
    response.headers["Location"] = f"/v1/parking/sessions/{started.session.id}"
    return schemas.SessionPublic.of(started.session)


@router.get("/sessions")
def list_sessions(
    parking: ParkingDep,
    principal: CurrentPrincipal,
    lot_id: Annotated[str | None, Query(max_length=limits.CATALOGUE_ID_MAX_CHARS)] = None,
    state: Annotated[str | None, Query(pattern="^(open|ended|settled)$")] = None,
    ending_within_minutes: Annotated[
        int | None, Query(ge=1, le=limits.REMINDER_WINDOW_MINUTES_MAX)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=limits.SESSIONS_PAGE_MAX)] = 100,
) -> schemas.SessionsPage:
    """A lot's sessions (staff), a rider's own, or the open sessions whose paid time ends
    within N minutes, soonest first (for reminders)."""
    _person(principal)
    account_id = principal.account_id if principal.role is Role.RIDER else None
    if ending_within_minutes is not None:
        now = parking.sessions.clock()
        rows = parking.views.ending_within(
            now, ending_within_minutes * MINUTES, account_id=account_id, limit=limit
        )
    else:
        rows = parking.views.sessions(
            lot_id=lot_id, account_id=account_id, state=state, limit=limit
        )
    return schemas.SessionsPage(items=[schemas.SessionPublic.of_row(row) for row in rows])


@router.get("/sessions/{session_id}")
def get_session(
    session_id: UUID, parking: ParkingDep, principal: CurrentPrincipal
) -> schemas.SessionPublic:
    session = parking.sessions.get(session_id)
    _check_owner(principal, session)
    return schemas.SessionPublic.of(session)


@router.post("/sessions/{session_id}/extensions", status_code=status.HTTP_201_CREATED)
def extend_session(
    session_id: UUID,
    body: schemas.ExtensionCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
    response: Response,
) -> schemas.SessionPublic:
    """Pays until later: the hold is raised by the difference; the same extension again
    answers 200."""
    before = parking.sessions.get(session_id)
    _check_owner(principal, before)
    session = parking.sessions.extend(
        session_id, body.extension_id, Payment(body.paid_until, body.quote_id)
    )
    _created(response, body.extension_id in before.extensions)
    return schemas.SessionPublic.of(session)


@router.post("/sessions/{session_id}/end")
def end_session(
    session_id: UUID,
    body: schemas.EndCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
) -> schemas.Ended:
    """Ends the stay now: its fee is posted from the holds, the rest released, and the
    session's detail record sealed."""
    _check_owner(principal, parking.sessions.get(session_id))
    ended_by = EndedBy.APP if principal.role is Role.RIDER else EndedBy.ATTENDANT
    if body.ended_at is not None and principal.role is Role.RIDER:
        raise errors.ActionTimeOutOfRange("only a handheld sends ended_at")
    at = acted_at(body.ended_at, parking.ending.clock())
    ended = parking.ending.end(session_id, body.end_id, ended_by, at=at)
    return schemas.Ended(
        session=schemas.SessionPublic.of(ended.session),
        record=schemas.RecordPublic.of(ended.record),
    )


@router.post("/actions")
def apply_actions(
    body: batch_schemas.ActionsCreate, parking: ParkingDep, _: CurrentStaff
) -> batch_schemas.ActionsAnswer:
    """A handheld's queued starts, extensions and ends, applied in order with group commit:
    each answered as the one-by-one route would answer it (its status, its session and record,
    or its problem), and each safe to send again under its own id."""
    answers = parking.batches.apply(body.to_actions())
    return batch_schemas.ActionsAnswer(
        items=[
            batch_schemas.ActionAnswer.of(answer, refused_status=_refused_status(answer))
            for answer in answers
        ]
    )


def _refused_status(answer: Answer) -> int:
    if isinstance(answer, DomainError):
        return status_for(answer, ACTION_ERROR_STATUS)
    return status.HTTP_200_OK


# Reservations


def _reservation_payer(body: schemas.ReservationCreate, principal: Principal) -> UUID:
    if principal.role is Role.RIDER:
        if body.account_id is not None:
            raise errors.PayerMissing("a rider pays from its own account: no account_id")
        assert principal.account_id is not None
        return principal.account_id
    require_role(principal, Role.ADMIN, Role.OPERATOR)
    if body.account_id is None:
        raise errors.PayerMissing("staff name the account that pays: account_id")
    return body.account_id


def _own_reservation(parking: Parking, principal: Principal, reservation_id: str) -> Reservation:
    """Staff see any reservation; a rider only its own, and others look absent to it."""
    _person(principal)
    reservation = parking.reservations.get(reservation_id)
    if principal.role is Role.RIDER and principal.account_id != reservation.account_id:
        raise errors.ReservationNotFound(reservation_id)
    return reservation


@router.post("/reservations", status_code=status.HTTP_201_CREATED)
def book_reservation(
    body: schemas.ReservationCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
    response: Response,
) -> schemas.ReservationPublic:
    """Books a place of a class in a lot for a window, holding the window's price."""
    booked = parking.reservations.book(
        BookRequest(
            reservation_id=body.reservation_id,
            lot_id=body.lot_id,
            vehicle_class=body.vehicle_class,
            plate=body.plate,
            window_from=body.window_from,
            window_to=body.window_to,
            account_id=_reservation_payer(body, principal),
        )
    )
    _created(response, booked.replayed)
    response.headers["Location"] = f"/v1/parking/reservations/{body.reservation_id}"
    return schemas.ReservationPublic.of(booked.reservation)


@router.get("/reservations")
def list_reservations(
    parking: ParkingDep,
    principal: CurrentPrincipal,
    lot_id: Annotated[str | None, Query(max_length=limits.CATALOGUE_ID_MAX_CHARS)] = None,
    state: Annotated[str | None, Query(pattern="^(booked|fulfilled|cancelled|no_show)$")] = None,
    limit: Annotated[int, Query(ge=1, le=limits.RESERVATIONS_PAGE_MAX)] = 100,
) -> schemas.ReservationsPage:
    """A rider's own reservations, or (staff) any lot's, the latest window first."""
    _person(principal)
    account_id = principal.account_id if principal.role is Role.RIDER else None
    rows = parking.reservation_views.reservations(
        account_id=account_id, lot_id=lot_id, state=state, limit=limit
    )
    return schemas.ReservationsPage(items=[schemas.ReservationSummary.of_row(r) for r in rows])


@router.get("/reservations/{reservation_id}")
def get_reservation(
    reservation_id: ReservationId, parking: ParkingDep, principal: CurrentPrincipal
) -> schemas.ReservationPublic:
    return schemas.ReservationPublic.of(_own_reservation(parking, principal, reservation_id))


@router.post("/reservations/{reservation_id}/cancel")
def cancel_reservation(
    reservation_id: ReservationId,
    body: schemas.CancelCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
) -> schemas.ReservationPublic:
    """Cancels a booked reservation: free until the table's free-cancel time before the
    window, then the late-cancel fee is taken from the hold."""
    _own_reservation(parking, principal, reservation_id)
    cancelled = parking.reservations.cancel(reservation_id, body.cancel_id)
    return schemas.ReservationPublic.of(cancelled)


@router.post("/reservations/{reservation_id}/arrive", status_code=status.HTTP_201_CREATED)
def arrive(
    reservation_id: ReservationId,
    body: schemas.ArrivalCreate,
    parking: ParkingDep,
    principal: CurrentPrincipal,
    response: Response,
) -> schemas.SessionPublic:
    """Takes a reservation up: starts its session, paid until the window's end."""
    _own_reservation(parking, principal, reservation_id)
    started = parking.reservations.arrive(reservation_id, body.start_id)
    _created(response, started.replayed)
    response.headers["Location"] = f"/v1/parking/sessions/{started.session.id}"
    return schemas.SessionPublic.of(started.session)


# Records and enforcement


@router.get("/records/{session_id}")
def get_record(
    session_id: UUID, parking: ParkingDep, principal: CurrentPrincipal
) -> schemas.RecordPublic:
    record = parking.records.get(session_id)
    _person(principal)
    if principal.role is Role.RIDER and principal.account_id != record.account_id:
        raise errors.RecordNotFound(session_id)
    return schemas.RecordPublic.of(record)


@router.post("/records/{session_id}/credits", status_code=status.HTTP_201_CREATED)
def credit_record(
    session_id: UUID, body: schemas.CreditCreate, parking: ParkingDep, _: CurrentStaff
) -> schemas.RecordPublic:
    """Refunds part of a fee to the account; a record's credits never pass its fee."""
    record = parking.records.credit(session_id, body.credit_id, body.amount_vnd, body.reason)
    return schemas.RecordPublic.of(record)


# Enforcement: an officer's check, the parking route asked most often, done by hand like the tap
# path's (`ticketing.taps.api.online_check`): the query validated in one step, no dependency
# solving, and the verdict written once, without FastAPI validating it again. The server answers
# it ahead of FastAPI's router (`tapledger.http.online_check`); this router, mounted ahead of the
# others (`tapledger.http.app.API_ROUTERS`), documents it and serves an app without that.
enforcement_router = APIRouter(prefix="/parking", tags=["parking"])


@enforcement_router.get(
    "/enforcement",
    response_model=schemas.VerdictPublic,
    openapi_extra={
        "parameters": query_parameters(schemas.EnforcementQuery),
        "security": BEARER_SECURITY,
    },
)
async def enforcement(request: Request) -> Response:
    """Paid, expired or unpaid: a plate in a lot, in one lookup."""
    principal = await principal_of(request)
    query = read_query(request, schemas.EnforcementQuery)
    require_role(principal, Role.ADMIN, Role.OPERATOR)
    parking: Parking = request.app.state.parking
    # The enforcement index first, in the event loop (one Redis round trip, no thread); the
    # event store when the index cannot vouch for its answer. That check waits for a query, in
    # the thread pool: the event loop must not (measured: run in the loop, the workers answered
    # 115-141 checks/s instead of 2,000 on a busy box).
    verdict = await parking.enforcement.check_indexed(query.lot_id, query.plate)
    if verdict is None:
        verdict = await run_in_threadpool(parking.enforcement.check, query.lot_id, query.plate)
    answer = schemas.VerdictPublic.of(verdict).model_dump_json()
    return Response(answer, media_type=JSON_MEDIA_TYPE)
