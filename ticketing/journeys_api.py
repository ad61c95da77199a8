"""The journeys' HTTP routes: journeys as the read model holds them, and closing a service day."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from ticketing.access import Role, check_can_read, require_role
from ticketing.adapters.journey_views import JOURNEYS_PAGE_MAX, JourneyRow, JourneyViews
from ticketing.api import CurrentPrincipal, CurrentStaff
from ticketing.domain.errors import LedgerError
from ticketing.domain.journey import JourneyStatus
from ticketing.journeys import Journeys


def _views(request: Request) -> JourneyViews:
    views: JourneyViews = request.app.state.journey_views
    return views


def _journeys(request: Request) -> Journeys:
    journeys: Journeys = request.app.state.journeys
    return journeys


def _catch_up_views(request: Request) -> None:
    request.app.state.container.journey_follower.catch_up()


class MissingJourneyFilter(LedgerError):
    code = "journey_filter_missing"

    def __init__(self) -> None:
        super().__init__("name an account_id, a status, or both")


JourneyViewsDep = Annotated[JourneyViews, Depends(_views)]
JourneysDep = Annotated[Journeys, Depends(_journeys)]

router = APIRouter(prefix="/journeys", tags=["journeys"])


class JourneyPublic(BaseModel):
    journey_id: UUID
    account_id: UUID
    paid_from: str
    service_day: date
    status: str
    legs: list[dict[str, Any]]
    fare_vnd: int | None
    charged_vnd: int = Field(description="what the account paid, net of refunds")
    purse_paid_vnd: int = Field(description="what the card's purse paid at the validators")
    purse_refunded_vnd: int = Field(
        description="what the purse paid beyond the fare, given back to the account"
    )
    pass_product_ids: list[str] = Field(description="passes that covered legs")
    cap_id: str | None = Field(description="the fare cap that limited the fare, if one did")
    reason_code: str | None
    reason: str | None

    @classmethod
    def of(cls, row: JourneyRow) -> JourneyPublic:
        return cls(**row.__dict__)


class ServiceDayClosed(BaseModel):
    service_day: date
    closed: int  # journeys charged the maximum fare by this call; 0 when closed already


@router.get("")
def list_journeys(
    views: JourneyViewsDep,
    principal: CurrentPrincipal,
    account_id: UUID | None = None,
    status: JourneyStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=JOURNEYS_PAGE_MAX)] = JOURNEYS_PAGE_MAX,
) -> list[JourneyPublic]:
    """Journeys newest first: an account's (staff read any account, a rider only its own), or,
    for staff, every account's journeys in one status (`status=refused`: those the fare feed
    could not price, waiting for someone to fix the data)."""
    if account_id is None:
        require_role(principal, Role.ADMIN, Role.OPERATOR)
    else:
        check_can_read(principal, account_id)
    if status is not None:
        rows = views.with_status(status, account_id=account_id, limit=limit)
    elif account_id is not None:
        rows = views.for_account(account_id, limit=limit)
    else:
        raise MissingJourneyFilter
    return [JourneyPublic.of(row) for row in rows]


@router.post("/service-days/{day}/close")
def close_service_day(
    day: date, journeys: JourneysDep, request: Request, _: CurrentStaff
) -> ServiceDayClosed:
    """Charges every journey of an ended service day (04:00 to 04:00, Hanoi time) still open
    the maximum fare; a late tap corrects it afterwards. Closing again closes only what came
    since, so the answer is 0 when nothing did."""
    _catch_up_views(request)
    closed_day, closed = journeys.close_ended_day(day)
    _catch_up_views(request)
    return ServiceDayClosed(service_day=closed_day, closed=closed)
