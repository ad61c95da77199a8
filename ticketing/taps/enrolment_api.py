"""HTTP routes of a device's life: a one-time enrolment code made by staff and exchanged by the
device for its own token, revocation, and the record of what devices were refused.

`POST /v1/enrolments` is the one route under /v1 a caller reaches without a bearer token (the
device has none yet): the code is its credential (`tapledger.http.authentication`).

The code's use (an event, with the new epoch) is saved before the token is issued (a row of the
token store): the two cannot share a transaction. Should the token store fail between them, the
code is spent and staff make another; a code can never yield two tokens.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ticketing.shared.access import DeviceTokenIssuer
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.principals import CurrentAdmin, CurrentStaff
from ticketing.taps.adapters.refusal_views import REFUSALS_PAGE_MAX, RefusalView, RefusalViews
from ticketing.taps.application.ingestion import TapIngestion
from ticketing.taps.domain import enrolment_code
from ticketing.taps.domain.enrolment_code import CODE_INPUT_MAX_CHARS, ENROLMENT_CODE_TTL_S
from ticketing.taps.domain.validator import VALIDATOR_ID_MAX
from ticketing.taps.schemas import ValidatorPublic


async def _taps(request: Request) -> TapIngestion:
    taps: TapIngestion = request.app.state.taps
    return taps


async def _tokens(request: Request) -> DeviceTokenIssuer:
    tokens: DeviceTokenIssuer = request.app.state.authenticator
    return tokens


async def _refusals(request: Request) -> RefusalViews:
    views: RefusalViews = request.app.state.refusal_views
    return views


TapsDep = Annotated[TapIngestion, Depends(_taps)]
TokensDep = Annotated[DeviceTokenIssuer, Depends(_tokens)]
RefusalViewsDep = Annotated[RefusalViews, Depends(_refusals)]
ValidatorIdPath = Annotated[int, Path(ge=1, le=VALIDATOR_ID_MAX)]

ERROR_STATUS: ErrorStatus = {
    enrolment_code.EnrolmentCodeUnknown: 404,
    enrolment_code.EnrolmentCodeUsed: 409,
    enrolment_code.EnrolmentCodeExpired: 410,
    enrolment_code.EnrolmentCodeRevoked: 410,
}

router = APIRouter(tags=["validators"])


class EnrolmentCodeIssued(BaseModel):
    validator_id: int
    code: str = Field(description="the one-time code, shown once; only its hash is kept")
    expires_at: datetime = Field(
        description=f"the code enrols nothing after this ({ENROLMENT_CODE_TTL_S} s after made)"
    )


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=CODE_INPUT_MAX_CHARS)]


class DeviceEnrolment(BaseModel):
    validator_id: int
    epoch: int = Field(description="the new epoch: the device numbers its taps from 1 in it")
    token: str = Field(description="the device's bearer token, shown once")
    validator: ValidatorPublic


class DeviceRefusalPublic(BaseModel):
    refusal_id: str
    request: str = Field(description="enrolment or upload")
    reason: str = Field(description="the stable code the request was refused with")
    validator_id: int = Field(description="the validator asked for (0: unknown)")
    token_validator_id: int = Field(description="whose token asked (0: no token)")
    token_id: str
    epoch: int
    first_seq: int = Field(description="the batch's lowest seq (0: taps not read)")
    last_seq: int
    taps: int
    at: datetime

    @classmethod
    def of(cls, view: RefusalView) -> DeviceRefusalPublic:
        return cls(**{**vars(view), "refusal_id": str(view.refusal_id)})


@router.post("/validators/{validator_id}/enrolment-codes", status_code=status.HTTP_201_CREATED)
def issue_enrolment_code(
    validator_id: ValidatorIdPath, taps: TapsDep, _: CurrentAdmin
) -> EnrolmentCodeIssued:
    """A one-time code for a registered validator: the device exchanges it (`POST
    /v1/enrolments`) for its own token. A revoked validator is let back this way."""
    code, issued = taps.issue_enrolment_code(validator_id)
    return EnrolmentCodeIssued(validator_id=validator_id, code=code, expires_at=issued.expires_at)


@router.post("/enrolments", status_code=status.HTTP_201_CREATED)
def enrol_device(body: EnrolmentCreate, taps: TapsDep, tokens: TokensDep) -> DeviceEnrolment:
    """Exchanges an enrolment code, once, for the device's token (no bearer token needed). The
    validator is enrolled in a new epoch and its earlier tokens stop working. A code unknown
    (404 `enrolment_code_unknown`), used (409 `enrolment_code_used`), expired or made before
    the validator was revoked (410 `enrolment_code_expired`, `enrolment_code_revoked`) is
    refused, and the refusal recorded (`GET /v1/device-refusals`)."""
    validator = taps.exchange_enrolment_code(body.code)
    token = tokens.issue_device_token(
        validator.validator_id, label=f"validator {validator.validator_id}, enrolled"
    )
    return DeviceEnrolment(
        validator_id=validator.validator_id,
        epoch=validator.epoch,
        token=token,
        validator=ValidatorPublic.of(validator),
    )


@router.post("/validators/{validator_id}/revoke")
def revoke_validator(
    validator_id: ValidatorIdPath, taps: TapsDep, tokens: TokensDep, _: CurrentAdmin
) -> ValidatorPublic:
    """Revokes a validator: its tokens stop working in every worker at once, and its uploads
    are refused (403 `validator_revoked`) and recorded. A new enrolment code lets a device back
    in its place. Revoking it again changes nothing."""
    validator = taps.revoke_validator(validator_id)
    # After the event: a retry after a failure here finds it revoked and revokes the tokens.
    tokens.revoke_device_tokens(validator_id)
    return ValidatorPublic.of(validator)


@router.get("/device-refusals")
def list_device_refusals(
    views: RefusalViewsDep,
    _: CurrentStaff,
    validator_id: Annotated[int | None, Query(ge=1, le=VALIDATOR_ID_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=REFUSALS_PAGE_MAX)] = REFUSALS_PAGE_MAX,
) -> list[DeviceRefusalPublic]:
    """Devices' requests refused whole, newest first (enrolments with a bad code, uploads of a
    revoked device or of one posing as another): every device's, or one validator's. May
    trail by a moment."""
    return [
        DeviceRefusalPublic.of(view)
        for view in views.refusals(validator_id=validator_id, limit=limit)
    ]
