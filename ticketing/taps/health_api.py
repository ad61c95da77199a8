"""HTTP routes of the fleet's health: a device reports on each sync, staff list the fleet.

`POST /v1/validators/{id}/health` takes a device's report (its own token only) and answers with
the backend's clock in milliseconds, from which the device measures its clock offset for the
next report. `GET /v1/validators` lists every registered validator with its latest report and
the flags `ticketing.taps.adapters.health_views` judges (limits named there, and echoed in
the answer so a client need not hard-code them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ticketing.shared.access import check_can_upload_taps
from ticketing.shared.principals import CurrentPrincipal, CurrentStaff
from ticketing.taps.adapters import health_views
from ticketing.taps.adapters.health_views import FleetRow, HealthFlag, HealthViews
from ticketing.taps.application.validator_health import HealthFields, ValidatorHealth
from ticketing.taps.domain.validator import VALIDATOR_ID_MAX
from ticketing.taps.domain.validator_health import (
    CLOCK_OFFSET_MS_MAX,
    ETAG_MAX_CHARS,
    OUTBOX_DEPTH_MAX,
    SOFTWARE_VERSION_MAX_CHARS,
    TAP_AGE_S_MAX,
    UNIX_S_MAX,
    VERSION_MAX,
)

FLEET_PAGE_MAX = 500


async def _health(request: Request) -> ValidatorHealth:
    health: ValidatorHealth = request.app.state.validator_health
    return health


async def _views(request: Request) -> HealthViews:
    views: HealthViews = request.app.state.health_views
    return views


HealthDep = Annotated[ValidatorHealth, Depends(_health)]
HealthViewsDep = Annotated[HealthViews, Depends(_views)]
UnixS = Annotated[int, Field(ge=0, le=UNIX_S_MAX, description="the device's clock, unix s")]
Etag = Annotated[str, Field(min_length=1, max_length=ETAG_MAX_CHARS)]

router = APIRouter(tags=["validators"])


class HealthReportCreate(BaseModel):
    """What a device says about itself on each sync."""

    model_config = ConfigDict(extra="forbid")

    sent_at_ms: int = Field(
        ge=0, le=UNIX_S_MAX * 1000, description="the device's clock as it sent this, unix ms"
    )
    outbox_depth: int = Field(ge=0, le=OUTBOX_DEPTH_MAX, description="taps waiting to upload")
    oldest_tap_age_s: int | None = Field(
        default=None, ge=0, le=TAP_AGE_S_MAX, description="age of the oldest waiting tap"
    )
    last_upload_at: UnixS | None = Field(default=None, description="last upload acknowledged")
    last_sync_at: UnixS | None = Field(default=None, description="last complete trust sync")
    clock_offset_ms: int | None = Field(
        default=None,
        ge=-CLOCK_OFFSET_MS_MAX,
        le=CLOCK_OFFSET_MS_MAX,
        description="the device's clock minus the backend's, measured at the previous report",
    )
    software_version: str = Field(min_length=1, max_length=SOFTWARE_VERSION_MAX_CHARS)
    keys_version: int | None = Field(default=None, ge=0, le=VERSION_MAX)
    keys_etag: Etag | None = None
    deny_version: int = Field(ge=0, le=VERSION_MAX, description="the deny list it decides with")
    config_etag: Etag | None = None


class HealthReportAccepted(BaseModel):
    validator_id: int
    server_time_ms: int = Field(description="the backend's clock as it answered, unix ms")


class HealthReportPublic(HealthReportCreate):
    received_at: datetime = Field(description="the backend's clock when the report arrived")


class FleetLimits(BaseModel):
    """The limits the flags are judged against."""

    stale_after_s: int = health_views.HEALTH_STALE_S
    offline_after_s: int = health_views.OFFLINE_S
    deny_list_grace_s: int = health_views.DENY_LIST_GRACE_S
    outbox_depth_deep: int = health_views.OUTBOX_DEPTH_DEEP
    outbox_age_deep_s: int = health_views.OUTBOX_AGE_DEEP_S
    clock_skew_flag_ms: int = health_views.CLOCK_SKEW_FLAG_MS


class ValidatorHealthPublic(BaseModel):
    validator_id: int
    kind: str
    location: int
    health: HealthReportPublic | None = Field(description="the latest report; null if none yet")
    flags: list[HealthFlag]

    @classmethod
    def of(cls, row: FleetRow) -> ValidatorHealthPublic:
        report = None if row.report is None else HealthReportPublic.model_validate(row.report)
        return cls(
            validator_id=row.validator_id,
            kind=row.kind,
            location=row.location,
            health=report,
            flags=list(row.flags),
        )


class FleetPagePublic(BaseModel):
    items: list[ValidatorHealthPublic]
    next_after: int | None = Field(description="pass as `after` for the next page; null: done")
    limits: FleetLimits


@router.post("/validators/{validator_id}/health", status_code=status.HTTP_201_CREATED)
def report_health(
    validator_id: Annotated[int, Path(ge=1, le=VALIDATOR_ID_MAX)],
    body: HealthReportCreate,
    health: HealthDep,
    principal: CurrentPrincipal,
) -> HealthReportAccepted:
    """A device's health report, sent on each sync by the device itself. The answer's
    `server_time_ms` lets it measure its clock offset (see docs/fleet.md)."""
    check_can_upload_taps(principal, validator_id)
    health.report(validator_id, HealthFields(**body.model_dump()))
    return HealthReportAccepted(
        validator_id=validator_id, server_time_ms=round(health.now().timestamp() * 1000)
    )


@router.get("/validators")
def list_validators(
    views: HealthViewsDep,
    health: HealthDep,
    _: CurrentStaff,
    flag: Annotated[HealthFlag | None, Query(description="only validators raising it")] = None,
    after: Annotated[int, Query(ge=0, le=VALIDATOR_ID_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=FLEET_PAGE_MAX)] = FLEET_PAGE_MAX,
) -> FleetPagePublic:
    """Every registered validator with its latest health report and flags, in id order: stale,
    offline, behind_deny_list, deep_outbox, clock_skewed (docs/fleet.md). May trail the latest
    report by a moment (a projection)."""
    page = views.fleet(now=health.now(), after=after, limit=limit, flag=flag)
    return FleetPagePublic(
        items=[ValidatorHealthPublic.of(row) for row in page.rows],
        next_after=page.next_after,
        limits=FleetLimits(),
    )
