"""The journeys' HTTP route: an account's journeys as the read model holds them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ticketing.access import check_can_read
from ticketing.adapters.journey_views import JOURNEYS_PAGE_MAX, JourneyRow, JourneyViews
from ticketing.api import CurrentPrincipal


def _views(request: Request) -> JourneyViews:
    views: JourneyViews = request.app.state.journey_views
    return views


JourneyViewsDep = Annotated[JourneyViews, Depends(_views)]

router = APIRouter(prefix="/journeys", tags=["journeys"])


class JourneyPublic(BaseModel):
    journey_id: UUID
    account_id: UUID
    paid_from: str
    service_day: date
    status: str
    legs: list[dict[str, Any]]
    fare_vnd: int | None
    charged_vnd: int
    reason_code: str | None
    reason: str | None

    @classmethod
    def of(cls, row: JourneyRow) -> JourneyPublic:
        return cls(**row.__dict__)


@router.get("")
def list_journeys(
    account_id: UUID,
    views: JourneyViewsDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=JOURNEYS_PAGE_MAX)] = JOURNEYS_PAGE_MAX,
) -> list[JourneyPublic]:
    """An account's journeys, newest first: staff read any account, a rider only its own."""
    check_can_read(principal, account_id)
    return [JourneyPublic.of(row) for row in views.for_account(account_id, limit=limit)]
