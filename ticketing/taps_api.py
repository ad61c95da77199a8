"""HTTP routes of the tap path: registering validators, uploading taps, the sequence report.

The event-store library is synchronous, so routes are `def`s (run in the thread pool), but for
the two tap routes, which read their own request: the batch upload records in the thread pool,
and the online check verifies in the event loop and awaits its group's commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from hardware.tlc1.constants import KeyLevel
from hardware.tlc1.terminal import SessionProof
from ticketing.access import DeviceTokenIssuer, check_can_upload_taps
from ticketing.adapters.tap_views import (
    DISAGREEMENTS_PAGE_MAX,
    DisagreementKind,
    TapDisagreement,
    TapViews,
)
from ticketing.api import CurrentAdmin, CurrentStaff, principal_of
from ticketing.domain.smart_card import SERIAL_HEX_CHARS
from ticketing.domain.tap import REASON_MAX_CHARS, SEQ_FIRST, SEQ_MAX, TapBatchBodyTooLarge
from ticketing.domain.validator import (
    EPOCH_MAX,
    FARE_ID_MAX_CHARS,
    LOCATION_MAX,
    NETWORK_ID_MAX,
    VALIDATOR_ID_MAX,
    Validator,
    ValidatorAlreadyRegistered,
    ValidatorKind,
)
from ticketing.fares.engine import FareEngine
from ticketing.ingestion import (
    DEVICE_CLOCK_SKEW_S_MAX,
    SCANNED_TEXT_MAX_CHARS,
    TAP_BATCH_BYTES_MAX,
    TAP_BATCH_MAX,
    CardTap,
    QrTap,
    TapIngestion,
    TapResult,
    TapUpload,
)
from ticketing.schemas import LabelField, PrintableText
from ticketing.validator_places import check_place

U32_MAX = 0xFFFF_FFFF
COUNTER_MAX = 0xFFFFFF  # the card's u24 transaction counter
CHALLENGE_HEX_CHARS = 16
MAC_HEX_CHARS = 16
# A validation session's transcript is a few hundred bytes (at most 6 changes of 29-byte records).
TRANSCRIPT_HEX_MAX_CHARS = 4096
HEX = "^[0-9A-Fa-f]*$"
HEX_BYTES = "^([0-9A-Fa-f]{2})*$"
REASON = "^[a-z0-9_]+$"
JSON_MEDIA_TYPE = "application/json"


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
ValidatorId = Annotated[int, Field(ge=1, le=VALIDATOR_ID_MAX)]
ValidatorIdPath = Annotated[int, Path(ge=1, le=VALIDATOR_ID_MAX)]
Hex = Annotated[str, Field(pattern=HEX)]
Epoch = Annotated[
    int,
    Field(
        ge=0,
        le=EPOCH_MAX,
        description="the enrolment the device numbered these taps in (0 until re-enrolled)",
    ),
]
SerialHex = Annotated[
    str, Field(min_length=SERIAL_HEX_CHARS, max_length=SERIAL_HEX_CHARS, pattern=HEX)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ValidatorCreate(_Body):
    validator_id: ValidatorId
    kind: ValidatorKind
    network_id: Annotated[int, Field(ge=0, le=NETWORK_ID_MAX)]
    location: Annotated[int, Field(ge=0, le=LOCATION_MAX, description="stop, station or lot id")]
    stop_id: Annotated[
        PrintableText, Field(max_length=FARE_ID_MAX_CHARS, description="fare feed stop")
    ] = ""
    route_id: Annotated[
        PrintableText, Field(max_length=FARE_ID_MAX_CHARS, description="fare feed route")
    ] = ""
    direction: Literal["", "entry", "exit"] = Field("", description="metro gates only")
    label: LabelField = ""  # the device token's label


class ValidatorPublic(BaseModel):
    validator_id: int
    kind: str
    network_id: int
    location: int
    stop_id: str
    route_id: str
    direction: str
    registered_at: datetime
    epoch: int = Field(description="the device's current enrolment; it numbers taps within it")

    @classmethod
    def of(cls, validator: Validator) -> ValidatorPublic:
        return cls(
            validator_id=validator.validator_id,
            kind=validator.kind_code,
            network_id=validator.network_id,
            location=validator.location,
            stop_id=validator.stop_id,
            route_id=validator.route_id,
            direction=validator.direction_code,
            registered_at=validator.registered_at,
            epoch=validator.epoch,
        )


class ValidatorRegistered(ValidatorPublic):
    token: str = Field(description="the device's bearer token, shown once")


class DeviceToken(BaseModel):
    validator_id: int
    token: str = Field(description="the device's new bearer token, shown once")


class ValidatorEnrolled(DeviceToken):
    epoch: int = Field(description="the new epoch: the device numbers its taps from 1 in it")


class SequenceReportPublic(BaseModel):
    epoch: int = Field(description="the epoch reported: the latest one a tap was recorded in")
    highest_seq: int | None
    taps_recorded: int
    missing_count: int
    missing_seqs: list[int] = Field(description="the most recent missing numbers, ascending")
    as_of: int = Field(description="the position in the event log this report is built to")


class ValidatorStatus(ValidatorPublic):
    sequence: SequenceReportPublic


class TapDisagreementPublic(BaseModel):
    tap_id: UUID
    validator_id: int
    seq: int
    tapped_at: datetime = Field(description="the device's clock")
    medium: str
    kind: DisagreementKind = Field(
        description="let_through_unverified: the device accepted what the backend refused (not "
        "charged); turned_away_verified: the device refused a medium the backend verified; "
        "suspected_clone: a card whose MAC the validator's SAM or the backend rejected (a "
        "genuine serial with other keys), listed even when both refused it"
    )
    device_decision: str
    device_reason: str
    verification: str = Field(description="the backend's decision")
    refusal_reason: str | None = Field(description="why the backend refused, when it did")

    @classmethod
    def of(cls, row: TapDisagreement) -> TapDisagreementPublic:
        return cls(
            tap_id=row.tap_id,
            validator_id=row.validator_id,
            seq=row.seq,
            tapped_at=row.tapped_at,
            medium=row.medium,
            kind=row.kind,
            device_decision=row.device_decision,
            device_reason=row.device_reason,
            verification=row.verification,
            refusal_reason=row.refusal_reason,
        )


class SeqConflictPublic(BaseModel):
    conflict_id: UUID = Field(description="the review record, as the batch answer named it")
    epoch: int
    seq: int
    conflicts_with: UUID = Field(description="the tap recorded under this number")
    medium: str
    tapped_at: datetime
    recorded_at: datetime


class SeqConflictsPage(BaseModel):
    items: list[SeqConflictPublic] = Field(description="newest first, at most 200")


class _TapBase(_Body):
    seq: Annotated[int, Field(ge=SEQ_FIRST, le=SEQ_MAX)]
    tapped_at: Annotated[int, Field(ge=0, le=U32_MAX, description="the device's unix seconds")]
    device_decision: Literal["accepted", "refused"]
    device_reason: Annotated[str, Field(min_length=1, max_length=REASON_MAX_CHARS, pattern=REASON)]

    def at(self) -> datetime:
        return datetime.fromtimestamp(self.tapped_at, UTC)


class QrTapUpload(_TapBase):
    medium: Literal["qr"]
    # Whatever the scanner read, empty or too long, is the tap's: it is recorded refused
    # `malformed` (its first `CODE_TEXT_MAX_CHARS` kept) and the rest of the batch goes on.
    code: Annotated[str, Field(max_length=SCANNED_TEXT_MAX_CHARS)] = Field(
        description="the scanned text, whole: a TL1 code is 298 characters; any other text "
        "(empty, too long, not TL1) is recorded refused `malformed`"
    )

    def to_tap(self) -> QrTap:
        return QrTap(self.seq, self.at(), self.device_decision, self.device_reason, self.code)


class CardProofUpload(_Body):
    level: Annotated[int, Field(ge=1, le=3)]
    terminal_challenge: Annotated[
        Hex, Field(min_length=CHALLENGE_HEX_CHARS, max_length=CHALLENGE_HEX_CHARS)
    ]
    card_challenge: Annotated[
        Hex, Field(min_length=CHALLENGE_HEX_CHARS, max_length=CHALLENGE_HEX_CHARS)
    ]
    counter: Annotated[int, Field(ge=0, le=COUNTER_MAX)]
    transcript: Annotated[str, Field(max_length=TRANSCRIPT_HEX_MAX_CHARS, pattern=HEX_BYTES)]
    card_mac: Annotated[Hex, Field(min_length=MAC_HEX_CHARS, max_length=MAC_HEX_CHARS)]


class CardTapUpload(_TapBase):
    medium: Literal["card"]
    serial: SerialHex | None = None
    proof: CardProofUpload | None = Field(
        default=None, description="the secure session's proof; absent when none was opened"
    )

    def to_tap(self) -> CardTap:
        proof = self.proof
        session = None
        if proof is not None and self.serial is not None:
            session = SessionProof(
                serial=bytes.fromhex(self.serial),
                level=KeyLevel(proof.level),
                terminal_challenge=bytes.fromhex(proof.terminal_challenge),
                card_challenge=bytes.fromhex(proof.card_challenge),
                counter=proof.counter,
                transcript=bytes.fromhex(proof.transcript),
                card_mac=bytes.fromhex(proof.card_mac),
            )
        return CardTap(
            self.seq, self.at(), self.device_decision, self.device_reason, self.serial, session
        )


TapBody = Annotated[QrTapUpload | CardTapUpload, Field(discriminator="medium")]


class TapBatchCreate(_Body):
    validator_id: ValidatorId
    epoch: Epoch = 0
    taps: Annotated[list[TapBody], Field(max_length=TAP_BATCH_MAX)]


class TapCreate(_Body):
    validator_id: ValidatorId
    epoch: Epoch = 0
    tap: TapBody


class TapResultPublic(BaseModel):
    seq: int
    status: Literal["accepted", "refused", "duplicate", "seq_conflict"] = Field(
        description="seq_conflict: another tap holds this seq; this one is kept for review"
    )
    reason: str | None = Field(description="why the backend refused the tap")
    tap_id: UUID = Field(description="the tap, or for a seq_conflict the review record")
    code_consumed: bool = Field(
        description="this tap used up its QR code or card session, whatever either side "
        "decided: every sighting of a genuine code counts, and a later one is `code_replayed` "
        "(false for a forged or unreadable code, a replay, a seq_conflict)"
    )

    @classmethod
    def of(cls, result: TapResult) -> TapResultPublic:
        return cls(
            seq=result.seq,
            status=result.status.value,
            reason=result.reason,
            tap_id=result.tap_id,
            code_consumed=result.code_consumed,
        )


class TapBatchResults(BaseModel):
    results: list[TapResultPublic]


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
    token = tokens.issue_device_token(
        validator.validator_id, label=body.label or f"validator {validator.validator_id}"
    )
    return ValidatorRegistered(**ValidatorPublic.of(validator).model_dump(), token=token)


@router.post("/validators/{validator_id}/tokens", status_code=status.HTTP_201_CREATED)
def issue_validator_token(
    validator_id: ValidatorIdPath, taps: TapsDep, tokens: TokenIssuerDep, _: CurrentAdmin
) -> DeviceToken:
    """Another token for a registered validator (a replaced device, a token lost in transit)."""
    validator = taps.get_validator(validator_id)
    token = tokens.issue_device_token(validator_id, label=f"validator {validator_id}")
    return DeviceToken(validator_id=validator.validator_id, token=token)


@router.post("/validators/{validator_id}/enrolments", status_code=status.HTTP_201_CREATED)
def enrol_validator(
    validator_id: ValidatorIdPath, taps: TapsDep, tokens: TokenIssuerDep, _: CurrentAdmin
) -> ValidatorEnrolled:
    """Enrols a validator again, in a new epoch, with a new token: for a device whose state was
    wiped (or a device replaced), so that its taps numbered from 1 again meet no older tap."""
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
    check_can_upload_taps(principal, body.validator_id)
    uploads: list[TapUpload] = [tap.to_tap() for tap in body.taps]
    taps: TapIngestion = request.app.state.taps
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
    check_can_upload_taps(principal, body.validator_id)
    taps: TapIngestion = request.app.state.taps
    result = await taps.ingest_one_async(body.validator_id, body.tap.to_tap(), epoch=body.epoch)
    return Response(TapResultPublic.of(result).model_dump_json(), media_type=JSON_MEDIA_TYPE)
