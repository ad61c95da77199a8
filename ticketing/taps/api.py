"""HTTP routes of the tap path: registering validators, uploading taps, the sequence report.

The event-store library is synchronous, so routes are `def`s (run in the thread pool), but for
the two tap routes, which read their own request: the batch upload records in the thread pool,
and the online check verifies in the event loop and awaits its group's commit.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ticketing.fares.engine import FareEngine
from ticketing.shared.access import (
    DeviceTokenIssuer,
    check_can_read_validator,
    check_can_upload_taps,
)
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.http_cache import conditional
from ticketing.shared.principals import CurrentAdmin, CurrentPrincipal, CurrentStaff, principal_of
from ticketing.taps.adapters.tap_views import (
    DISAGREEMENTS_PAGE_MAX,
    TapViews,
)
from ticketing.taps.application.ingestion import (
    DEVICE_CLOCK_SKEW_S_MAX,
    TAP_BATCH_BYTES_MAX,
    TapIngestion,
    TapUpload,
)
from ticketing.taps.application.validator_config import MediumFare, validator_fares
from ticketing.taps.application.validator_places import check_place
from ticketing.taps.domain import tap, validator, validator_health
from ticketing.taps.domain.tap import TapBatchBodyTooLarge
from ticketing.taps.domain.validator import (
    VALIDATOR_ID_MAX,
    Validator,
    ValidatorAlreadyRegistered,
)
from ticketing.taps.refusals_recorded import refusals_recorded
from ticketing.taps.schemas import (
    JSON_MEDIA_TYPE,
    DeviceToken,
    SeqConflictPublic,
    SeqConflictsPage,
    SequenceReportPublic,
    TapBatchCreate,
    TapBatchResults,
    TapCreate,
    TapDisagreementPublic,
    TapResultPublic,
    ValidatorCreate,
    ValidatorEnrolled,
    ValidatorPublic,
    ValidatorRegistered,
    ValidatorStatus,
)


async def _taps(request: Request) -> TapIngestion:
    taps: TapIngestion = request.app.state.taps
    return taps


async def _views(request: Request) -> TapViews:
    views: TapViews = request.app.state.tap_views
    return views


async def _fares(request: Request) -> FareEngine:
    fares: FareEngine = request.app.state.fares
    return fares


async def _token_issuer(request: Request) -> DeviceTokenIssuer:
    issuer: DeviceTokenIssuer = request.app.state.authenticator
    return issuer


TapsDep = Annotated[TapIngestion, Depends(_taps)]
TapViewsDep = Annotated[TapViews, Depends(_views)]
TokenIssuerDep = Annotated[DeviceTokenIssuer, Depends(_token_issuer)]
FaresDep = Annotated[FareEngine, Depends(_fares)]
ValidatorIdPath = Annotated[int, Path(ge=1, le=VALIDATOR_ID_MAX)]


# The statuses of the taps' and validators' errors (see `ticketing.shared.error_status`).
ERROR_STATUS: ErrorStatus = {
    validator.ValidatorNotFound: 404,
    validator.ValidatorAlreadyRegistered: 409,
    validator.EpochNotEnrolled: 409,
    validator.TooManyEnrolments: 409,
    validator.ValidatorRevoked: 403,
    validator.DeviceTokenRevoked: 401,
    # `ValidatorBusy` is a `Contended`: 503 from the shared table.
    tap.TapBatchTooLarge: 413,
    validator_health.InvalidHealthReport: 422,
}


router = APIRouter(tags=["taps"])

B = TypeVar("B", bound=BaseModel)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its body itself."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {JSON_MEDIA_TYPE: schema}}}


async def _parsed(request: Request, model: type[B]) -> B:
    """The body, parsed and validated in one step from its bytes (the tap path's routes)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None


def _same_registration(validator: Validator, body: ValidatorCreate) -> bool:
    return (
        validator.kind_code,
        validator.network_id,
        validator.location,
        validator.stop_id,
        validator.route_id,
        validator.direction_code,
    ) == (
        body.kind.value,
        body.network_id,
        body.location,
        body.stop_id,
        body.route_id,
        body.direction,
    )


@router.post(
    "/validators",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "the same registration again: a fresh token for it"}},
)
def register_validator(
    body: ValidatorCreate,
    taps: TapsDep,
    tokens: TokenIssuerDep,
    fares: FaresDep,
    _: CurrentAdmin,
    response: Response,
) -> ValidatorRegistered:
    """Registers a validator and returns its device token, once; the same registration again
    answers 200 with a fresh token, another one for the same id 409. A bus validator's or a
    metro gate's stop and route must be the fare feed's, and a gate's direction said: a place
    the feed cannot price is refused (422 `validator_place_unpriced`, naming the field).

    The registration (an event) and its token (a row of the token store) cannot be written in one
    transaction, so a registration whose token was never issued (the process died, the token
    store failed) is completed by its retry instead of being refused as a conflict."""
    check_place(
        fares.feed,
        kind=body.kind.value,
        stop_id=body.stop_id,
        route_id=body.route_id,
        direction=body.direction,
    )
    try:
        validator = taps.register_validator(
            validator_id=body.validator_id,
            kind=body.kind.value,
            network_id=body.network_id,
            location=body.location,
            stop_id=body.stop_id,
            route_id=body.route_id,
            direction=body.direction,
        )
    except ValidatorAlreadyRegistered:
        validator = taps.get_validator(body.validator_id, fresh=True)
        if not _same_registration(validator, body):
            raise
        response.status_code = status.HTTP_200_OK
        validator.check_not_revoked()  # a revoked device is let back only by an enrolment
    token = tokens.issue_device_token(
        validator.validator_id, label=body.label or f"validator {validator.validator_id}"
    )
    return ValidatorRegistered(**ValidatorPublic.of(validator).model_dump(), token=token)


@router.post("/validators/{validator_id}/tokens", status_code=status.HTTP_201_CREATED)
def issue_validator_token(
    validator_id: ValidatorIdPath, taps: TapsDep, tokens: TokenIssuerDep, _: CurrentAdmin
) -> DeviceToken:
    """Another token for a registered validator (a replaced device, a token lost in transit);
    refused (403 `validator_revoked`) for a revoked one, which only an enrolment lets back."""
    validator = taps.check_may_hold_token(validator_id)
    token = tokens.issue_device_token(validator_id, label=f"validator {validator_id}")
    return DeviceToken(validator_id=validator.validator_id, token=token)


@router.post("/validators/{validator_id}/enrolments", status_code=status.HTTP_201_CREATED)
def enrol_validator(
    validator_id: ValidatorIdPath, taps: TapsDep, tokens: TokenIssuerDep, _: CurrentAdmin
) -> ValidatorEnrolled:
    """Enrols a validator again, in a new epoch, with a new token: for a device whose state was
    wiped (or a device replaced), so that its taps numbered from 1 again meet no older tap. A
    revoked validator enrolled again may upload again."""
    validator = taps.enrol_validator(validator_id)
    token = tokens.issue_device_token(validator_id, label=f"validator {validator_id}")
    return ValidatorEnrolled(validator_id=validator_id, epoch=validator.epoch, token=token)


@router.get("/validators/{validator_id}")
def get_validator(
    validator_id: ValidatorIdPath, taps: TapsDep, views: TapViewsDep, _: CurrentStaff
) -> ValidatorStatus:
    """The validator and its sequence as received: the highest seq and the missing ones."""
    validator = taps.get_validator(validator_id, fresh=True)
    report = views.sequence_report(validator_id)
    return ValidatorStatus(
        **ValidatorPublic.of(validator).model_dump(),
        sequence=SequenceReportPublic(
            epoch=report.epoch,
            highest_seq=report.highest_seq,
            taps_recorded=report.taps_recorded,
            missing_count=report.missing_count,
            missing_seqs=report.missing_seqs,
            as_of=report.as_of,
        ),
    )


@router.get("/taps/disagreements")
def list_tap_disagreements(
    views: TapViewsDep,
    _: CurrentStaff,
    validator_id: Annotated[int | None, Query(ge=1, le=VALIDATOR_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=DISAGREEMENTS_PAGE_MAX)] = DISAGREEMENTS_PAGE_MAX,
) -> list[TapDisagreementPublic]:
    """Taps on which the device and the backend decided differently, newest first, for staff
    to review: every validator's, or one's. Neither kind is charged."""
    rows = views.disagreements(validator_id=validator_id, limit=limit)
    return [TapDisagreementPublic.of(row) for row in rows]


@router.get("/validators/{validator_id}/seq-conflicts")
def list_seq_conflicts(
    validator_id: ValidatorIdPath, taps: TapsDep, views: TapViewsDep, _: CurrentStaff
) -> SeqConflictsPage:
    """Taps kept for review because another tap held their number (a device wiped and not yet
    enrolled again); each is answered `seq_conflict` to the device. May trail by a moment."""
    taps.get_validator(validator_id)  # an unknown validator is a 404, not an empty list
    items = [
        SeqConflictPublic.model_validate(vars(row)) for row in views.seq_conflicts(validator_id)
    ]
    return SeqConflictsPage(items=items)


@router.post(
    "/taps/batch", response_model=TapBatchResults, openapi_extra=_body_schema(TapBatchCreate)
)
async def upload_taps(request: Request) -> Response:
    """Records a device's taps once each; re-sending a batch reports `duplicate` for each.

    Read by hand like the online check (`check_tap`); the recording runs in the thread pool."""
    principal = await principal_of(request)
    raw = await request.body()
    if len(raw) > TAP_BATCH_BYTES_MAX:
        raise TapBatchBodyTooLarge(len(raw), TAP_BATCH_BYTES_MAX)
    body = await _parsed(request, TapBatchCreate)
    taps: TapIngestion = request.app.state.taps
    seqs = [tap.seq for tap in body.taps]
    async with refusals_recorded(taps, principal, body.validator_id, body.epoch, seqs):
        check_can_upload_taps(principal, body.validator_id)
        uploads: list[TapUpload] = [tap.to_tap() for tap in body.taps]
        results = await run_in_threadpool(
            partial(taps.ingest_batch, epoch=body.epoch), body.validator_id, uploads
        )
    answer = TapBatchResults(results=[TapResultPublic.of(r) for r in results])
    return Response(answer.model_dump_json(), media_type=JSON_MEDIA_TYPE)


ONLINE_CHECK_DESCRIPTION = (
    "The online check of one tap: recorded, and answered with the backend's decision. The tap "
    "is judged at the server's clock, not the device's: a `tapped_at` more than "
    f"{DEVICE_CLOCK_SKEW_S_MAX} s from it is refused `device_clock_skewed`, and still recorded. "
    "A batch upload judges each tap at its own time, but refuses one stamped more than "
    f"{DEVICE_CLOCK_SKEW_S_MAX} s after the upload the same way."
)


@router.post(
    "/taps",
    response_model=TapResultPublic,
    openapi_extra=_body_schema(TapCreate),
    description=ONLINE_CHECK_DESCRIPTION,
)
async def check_tap(request: Request) -> Response:
    """The online check of one tap (`ONLINE_CHECK_DESCRIPTION`)."""
    return await online_check(request)


async def online_check(request: Request) -> Response:
    """`POST /v1/taps`, the hottest route of all, done by hand: the body is parsed and validated
    in one step from its bytes and the answer written without a second validation. The server
    also calls it ahead of FastAPI's router (`tapledger.http.online_check`)."""
    principal = await principal_of(request)
    body = await _parsed(request, TapCreate)
    taps: TapIngestion = request.app.state.taps
    async with refusals_recorded(taps, principal, body.validator_id, body.epoch, [body.tap.seq]):
        check_can_upload_taps(principal, body.validator_id)
        tap_ = body.tap.to_tap()
        result = await taps.ingest_one_async(body.validator_id, tap_, epoch=body.epoch)
    return Response(TapResultPublic.of(result).model_dump_json(), media_type=JSON_MEDIA_TYPE)


# Validator configuration


class MediumFarePublic(BaseModel):
    medium: str = Field(description="how the validator reads it: qr or card")
    fare_media_id: str = Field(description="the fare feed's id for the medium")
    max_fare_vnd: int | None = Field(
        description="the most a full-fare ride from here (to here, at an exit gate) costs; "
        "what a metro entry holds, a bus charges, and a card purse must cover"
    )
    refusal_code: str | None = Field(description="why the feed prices no ride here")

    @classmethod
    def of(cls, fare: MediumFare) -> MediumFarePublic:
        return cls(
            medium=fare.medium,
            fare_media_id=fare.fare_media_id,
            max_fare_vnd=fare.max_fare_vnd,
            refusal_code=fare.refusal_code,
        )


class ValidatorConfigPublic(BaseModel):
    validator: ValidatorPublic
    fare_network_id: str = Field(description="the fare feed's network of the validator's route")
    media: list[MediumFarePublic] = Field(description="the fare media accepted at a tap")


config_router = APIRouter(tags=["taps"])


@config_router.get(
    "/validators/{validator_id}/config",
    response_model=ValidatorConfigPublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def get_validator_config(
    validator_id: ValidatorIdPath,
    taps: TapsDep,
    fares: FaresDep,
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
) -> ValidatorConfigPublic | Response:
    """The validator's registration and the fares it needs to decide a tap offline."""
    check_can_read_validator(principal, validator_id)
    # As stored, not as this process remembers it: the device learns a new epoch here.
    validator = taps.get_validator(validator_id, fresh=True)
    computed = validator_fares(validator, fares, taps.now())
    body = ValidatorConfigPublic(
        validator=ValidatorPublic.of(validator),
        fare_network_id=computed.fare_network_id,
        media=[MediumFarePublic.of(fare) for fare in computed.media],
    )
    return conditional(request, response, body)
