"""The journeys' HTTP routes: journeys as the read model holds them, and closing a service day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ticketing.accounts.domain.readers import check_can_read
from ticketing.accounts.schemas import TRANSFER_ID_REGEX
from ticketing.journeys.adapters.journey_views import JOURNEYS_PAGE_MAX, JourneyRow, JourneyViews
from ticketing.journeys.application.journeys import Journeys
from ticketing.journeys.application.pass_sales import PASS_SALE_MEDIUM_DEFAULT, PassSales
from ticketing.journeys.domain import journey_errors, rider_passes
from ticketing.journeys.domain.journey_status import JourneyStatus
from ticketing.journeys.domain.rider_passes import PURCHASE_ID_MAX_CHARS
from ticketing.shared.access import Role, require_role
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.principals import CurrentPrincipal, CurrentStaff
from ticketing.shared.schemas import PrintableText


def _views(request: Request) -> JourneyViews:
    views: JourneyViews = request.app.state.journey_views
    return views


def _journeys(request: Request) -> Journeys:
    journeys: Journeys = request.app.state.journeys
    return journeys


def _catch_up_views(request: Request) -> None:
    request.app.state.container.journey_follower.catch_up()


class MissingJourneyFilter(DomainError):
    code = "journey_filter_missing"

    def __init__(self) -> None:
        super().__init__("name an account_id, a status, or both")


JourneyViewsDep = Annotated[JourneyViews, Depends(_views)]
JourneysDep = Annotated[Journeys, Depends(_journeys)]

# The statuses of the journeys' and passes' errors (see `ticketing.shared.error_status`).
ERROR_STATUS: ErrorStatus = {
    journey_errors.ServiceDayNotEnded: 409,
    rider_passes.PassPurchaseConflict: 409,
    rider_passes.TooManyPasses: 409,
    rider_passes.UnknownPassProduct: 404,
}


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


# Passes
FEED_ID_MAX_CHARS = 64
FeedIdField = Annotated[PrintableText, Field(min_length=1, max_length=FEED_ID_MAX_CHARS)]


def _sales(request: Request) -> PassSales:
    sales: PassSales = request.app.state.pass_sales
    return sales


PassSalesDep = Annotated[PassSales, Depends(_sales)]

pass_router = APIRouter(prefix="/accounts", tags=["passes"])


class PassCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purchase_id: Annotated[
        str, Field(min_length=1, max_length=PURCHASE_ID_MAX_CHARS, pattern=TRANSFER_ID_REGEX)
    ]
    fare_product_id: FeedIdField
    route_id: FeedIdField | None = None  # the route of a one-route pass
    fare_media_id: FeedIdField = PASS_SALE_MEDIUM_DEFAULT


class PassPublic(BaseModel):
    purchase_id: str
    fare_product_id: str
    route_id: str | None
    valid_from: datetime
    valid_until: datetime
    price_vnd: int
    transfer_id: str


@pass_router.post("/{account_id}/passes", status_code=status.HTTP_201_CREATED)
def buy_pass(
    account_id: UUID, body: PassCreate, sales: PassSalesDep, _: CurrentStaff, response: Response
) -> PassPublic:
    """Sells a pass product of the fare feed: debits its price for the account's rider category
    and holds the pass. The same purchase id again answers 200 with the same pass."""
    sale = sales.buy(
        account_id,
        purchase_id=body.purchase_id,
        fare_product_id=body.fare_product_id,
        route_id=body.route_id,
        fare_media_id=body.fare_media_id,
    )
    response.headers["Location"] = f"/v1/accounts/{account_id}/passes"
    if sale.repeated:
        response.status_code = status.HTTP_200_OK
    return PassPublic.model_validate(sale.held)


@pass_router.get("/{account_id}/passes")
def list_passes(
    account_id: UUID, sales: PassSalesDep, principal: CurrentPrincipal
) -> list[PassPublic]:
    """The account's passes, valid or recently ended, oldest first."""
    check_can_read(principal, account_id)
    return [PassPublic.model_validate(held) for held in sales.held(account_id)]
