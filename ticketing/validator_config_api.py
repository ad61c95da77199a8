"""`GET /v1/validators/{id}/config`: what a device needs to decide offline (`validator_config`).

Its own token reads it, and staff; no other device and no rider. The answer carries an ETag, so a
device polling it gets an empty 304 until its registration or the fare feed changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ticketing.access import check_can_read_validator
from ticketing.api import CurrentPrincipal
from ticketing.fares.engine import FareEngine
from ticketing.http_cache import conditional
from ticketing.taps_api import TapsDep, ValidatorIdPath, ValidatorPublic
from ticketing.validator_config import MediumFare, validator_fares


def _fares(request: Request) -> FareEngine:
    fares: FareEngine = request.app.state.fares
    return fares


FaresDep = Annotated[FareEngine, Depends(_fares)]


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


router = APIRouter(tags=["taps"])


@router.get(
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
