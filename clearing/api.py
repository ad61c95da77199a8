"""Clearing's HTTP routes (docs/clearing-api.md): thin, each a query or a use case seen through
the caller's scope.

Scheme staff (an admin token) see every operator and run cycles. An operator token scoped to
one operator (`operator_id`) sees that operator's part of each cycle only; an operator token
with no scope, a rider's or a validator's sees no clearing data at all.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from clearing import schemas
from clearing.adapters.cycle_files import LinesChanged
from clearing.adapters.reconciliation_csv import write_report_csv
from clearing.application.cycles import (
    ClearingBusy,
    ClearingCycles,
    CycleNotReady,
    DayNotOver,
    LineNotDisputable,
)
from clearing.application.queries import (
    CYCLES_LISTED_MAX,
    LINES_PAGE_MAX,
    ClearingQueries,
    CycleFileNotFound,
    CycleNotFound,
    CycleStillOpen,
)
from clearing.domain.book import CycleOutOfOrder, DisputeNotCarved
from clearing.domain.cycle import CycleClosed
from clearing.domain.reconciliation import ReconciliationTooLarge
from clearing.domain.visibility import OperatorOutOfScope, Viewer
from ticketing.shared.access import Forbidden, OutOfScope, Principal, Role
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.principals import CurrentAdmin, CurrentPrincipal
from ticketing.shared.problem_responses import problem_responses
from ticketing.shared.schemas import INTEGER_COLUMN_MAX

ERROR_STATUS: ErrorStatus = {
    CycleNotFound: 404,
    CycleFileNotFound: 404,
    OperatorOutOfScope: 403,
    DayNotOver: 409,
    CycleOutOfOrder: 409,
    CycleClosed: 409,
    CycleNotReady: 409,
    CycleStillOpen: 409,
    LinesChanged: 409,
    LineNotDisputable: 409,
    DisputeNotCarved: 409,
    ClearingBusy: 503,
    ReconciliationTooLarge: 413,
    # The rest of clearing's errors are about the request's content: 422.
}
# An operator's file is held in memory while it is read: a day of a large operator's
# transactions at about 80 bytes a line, well within `RECONCILIATION_FILE_BYTES_MAX`.
RECONCILIATION_UPLOAD_MAX_BYTES = 32 * 1024 * 1024
CSV_MEDIA_TYPE = "text/csv"
XML_MEDIA_TYPE = "application/xml"
# Business days the API names: wide, but bounded, so a day's end is always a datetime.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)
TEXT_QUERY_MAX_CHARS = 128
LINES_OFFSET_MAX = 100_000_000
FILE_NAME_MAX_CHARS = 128

BusinessDay = Annotated[date, Path(ge=FIRST_DAY, le=LAST_DAY, description="YYYY-MM-DD, Hanoi")]
FileName = Annotated[
    str, Path(min_length=1, max_length=FILE_NAME_MAX_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
LineNo = Annotated[int, Path(ge=1, le=INTEGER_COLUMN_MAX)]
OperatorQuery = Annotated[schemas.OperatorId | None, Query(alias="operator")]


async def _queries(request: Request) -> ClearingQueries:
    cycles: ClearingCycles = request.app.state.clearing
    return ClearingQueries(cycles)


async def _viewer(principal: CurrentPrincipal) -> Viewer:
    return viewer_of(principal)


def viewer_of(principal: Principal) -> Viewer:
    """What a token sees of clearing: an admin everything, a scoped operator token its own
    operator's part, any other token nothing."""
    if principal.role is Role.ADMIN and not principal.scoped:
        return Viewer()
    if principal.role is Role.OPERATOR and principal.operator_id is not None:
        return Viewer(principal.operator_id)
    if principal.role is Role.OPERATOR:
        raise OutOfScope("an operator token sees clearing only when scoped to one operator")
    raise Forbidden(principal.role)


QueriesDep = Annotated[ClearingQueries, Depends(_queries)]
ViewerDep = Annotated[Viewer, Depends(_viewer)]
router = APIRouter(prefix="/clearing", tags=["clearing"])


@router.get("/cycles")
def list_cycles(
    queries: QueriesDep,
    viewer: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=CYCLES_LISTED_MAX)] = 60,
) -> schemas.CyclesPage:
    """The newest cycles first, each with its state and the positions the caller may see."""
    cycles = queries.listed(limit)
    return schemas.CyclesPage(items=[schemas.CyclePublic.of(c, viewer) for c in cycles])


@router.get("/cycles/{day}")
def get_cycle(day: BusinessDay, queries: QueriesDep, viewer: ViewerDep) -> schemas.CyclePublic:
    """One cycle: its state, positions and payouts with their states."""
    return schemas.CyclePublic.of(queries.cycle(day), viewer)


@router.post("/cycles/{day}/run")
def run_cycle(
    day: BusinessDay, request: Request, viewer: ViewerDep, _: CurrentAdmin
) -> schemas.CycleRunPublic:
    """Runs the day's cycle (staff only): opens and closes it once the day is over, and
    writes its files; running it again writes the same files and changes nothing else."""
    cycles: ClearingCycles = request.app.state.clearing
    run = cycles.run(day)
    return schemas.CycleRunPublic(
        cycle=schemas.CyclePublic.of(run.cycle, viewer), files=[path.name for path in run.files]
    )


@router.get("/cycles/{day}/lines")
def search_lines(
    day: BusinessDay,
    queries: QueriesDep,
    viewer: ViewerDep,
    operator: OperatorQuery = None,
    q: Annotated[str, Query(max_length=TEXT_QUERY_MAX_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
    offset: Annotated[int, Query(ge=0, le=LINES_OFFSET_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=LINES_PAGE_MAX)] = 100,
) -> schemas.LinesPage:
    """A page of the cycle's lines whose transaction id or reference contains `q`; staff see
    every line or one operator's, an operator only its own (another's is 403)."""
    total, lines = queries.lines(
        day, viewer, operator_id=operator, text=q, offset=offset, limit=limit
    )
    return schemas.LinesPage(
        total=total, offset=offset, items=[schemas.LinePublic.of(line) for line in lines]
    )


@router.post("/cycles/{day}/lines/{line_no}/dispute")
def dispute_line(
    day: BusinessDay,
    line_no: LineNo,
    body: schemas.DisputeCreate,
    request: Request,
    _: CurrentAdmin,
) -> schemas.DisputePublic:
    """Disputes an operator's line of a closed cycle (staff only): the next cycle carves it
    out to suspense until it is released."""
    cycles: ClearingCycles = request.app.state.clearing
    changed = cycles.dispute(day, line_no, body.reason)
    return schemas.DisputePublic(business_day=day, line_no=line_no, changed=changed)


@router.post("/cycles/{day}/lines/{line_no}/release")
def release_line(
    day: BusinessDay, line_no: LineNo, request: Request, _: CurrentAdmin
) -> schemas.DisputePublic:
    """Releases a disputed line carved out to suspense (staff only): the next cycle gives it
    back to its operator."""
    cycles: ClearingCycles = request.app.state.clearing
    changed = cycles.release(day, line_no)
    return schemas.DisputePublic(business_day=day, line_no=line_no, changed=changed)


@router.get("/cycles/{day}/files")
def list_files(day: BusinessDay, queries: QueriesDep, viewer: ViewerDep) -> schemas.FilesPage:
    """The cycle's files the caller may download."""
    names = queries.file_names(day, viewer)
    base = f"/v1/clearing/cycles/{day.isoformat()}/files/"
    return schemas.FilesPage(items=[schemas.FilePublic(name=n, href=base + n) for n in names])


@router.get(
    "/cycles/{day}/files/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "the file, as written",
            "content": {CSV_MEDIA_TYPE: {}, XML_MEDIA_TYPE: {}, "text/plain": {}},
        }
    },
)
def download_file(
    day: BusinessDay, name: FileName, queries: QueriesDep, viewer: ViewerDep
) -> FileResponse:
    """One file of the cycle; a name not in the caller's listing is 404, whether it does not
    exist or is another operator's."""
    path = queries.file(day, name, viewer)
    return FileResponse(path, media_type=_media_type(name), filename=f"{day.isoformat()}-{name}")


def _media_type(name: str) -> str:
    if name.endswith(".csv"):
        return CSV_MEDIA_TYPE
    if name.endswith(".xml"):
        return XML_MEDIA_TYPE
    return "text/plain"


@router.get("/revenue")
def revenue(
    queries: QueriesDep,
    viewer: ViewerDep,
    from_day: Annotated[date, Query(alias="from", ge=FIRST_DAY, le=LAST_DAY)],
    to_day: Annotated[date, Query(alias="to", ge=FIRST_DAY, le=LAST_DAY)],
) -> schemas.RevenuePage:
    """Revenue per operator and day over the closed cycles from `from` to `to` (at most 366
    days), for the charts; an operator sees its own."""
    rows = queries.revenue(from_day, to_day, viewer)
    return schemas.RevenuePage(items=[schemas.DayRevenuePublic.of(row) for row in rows])


@router.post(
    "/reconciliations",
    response_model=schemas.ReconciliationPublic,
    responses={
        **problem_responses(413),
        200: {
            "description": "the report: JSON, or CSV when the request accepts text/csv",
            "content": {CSV_MEDIA_TYPE: {}},
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the operator's transaction file (docs/clearing-files.md)",
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
async def reconcile(
    request: Request,
    queries: QueriesDep,
    viewer: ViewerDep,
    day: Annotated[date, Query(ge=FIRST_DAY, le=LAST_DAY, description="the cycle's day")],
    operator: OperatorQuery = None,
) -> schemas.ReconciliationPublic | Response:
    """Compares the operator's own transaction file (the request body, CSV) with our lines of
    it in the day's closed cycle. Staff name the operator; a scoped token reconciles its own.
    Nothing is stored: the answer is the report."""
    data = await request.body()
    # A refused file (`reconciliation_file_invalid`, 422) lists its bad lines in `detail`.
    done = await run_in_threadpool(queries.reconcile, day, viewer, operator, data)
    if CSV_MEDIA_TYPE in request.headers.get("accept", ""):
        name = f"reconciliation-{done.operator_id}-{done.business_day.isoformat()}.csv"
        return Response(
            write_report_csv(done.report),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return schemas.ReconciliationPublic.of(done)
