"""HTTP routes for an account's passes: staff sell a pass product of the fare feed; the rider and
staff read the passes held."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ticketing.access import check_can_read
from ticketing.api import CurrentPrincipal, CurrentStaff
from ticketing.domain.rider_passes import PURCHASE_ID_MAX_CHARS
from ticketing.pass_sales import PASS_SALE_MEDIUM_DEFAULT, PassSales
from ticketing.schemas import TRANSFER_ID_REGEX, PrintableText

FEED_ID_MAX_CHARS = 64
FeedIdField = Annotated[PrintableText, Field(min_length=1, max_length=FEED_ID_MAX_CHARS)]


def _sales(request: Request) -> PassSales:
    sales: PassSales = request.app.state.pass_sales
    return sales


PassSalesDep = Annotated[PassSales, Depends(_sales)]

router = APIRouter(prefix="/accounts", tags=["passes"])


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


@router.post("/{account_id}/passes", status_code=status.HTTP_201_CREATED)
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


@router.get("/{account_id}/passes")
def list_passes(
    account_id: UUID, sales: PassSalesDep, principal: CurrentPrincipal
) -> list[PassPublic]:
    """The account's passes, valid or recently ended, oldest first."""
    check_can_read(principal, account_id)
    return [PassPublic.model_validate(held) for held in sales.held(account_id)]
