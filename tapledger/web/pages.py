"""Routes of the web pages (the rider's, the parking attendant's, the operators' clearing page),
their static files, and QR drawing.

The rider's page holds the device key and signs every code in the browser (spec/QR.md); the server
only draws a finished text as a QR symbol, so no QR library has to be shipped to the phone. The
attendant's page calls the parking API (docs/parking-api.md) like any other client, and the
operators' page the clearing API (docs/clearing-api.md), which decides what its token may see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from tapledger.http.problems import Problem
from ticketing.shared.principals import CurrentPrincipal
from ticketing.shared.problem_responses import API_ERROR_RESPONSES
from ticketing.tl1.qr_image import QrTextRefused, render_svg

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_MOUNT_PATH = "/static"
RIDER_PAGE = STATIC_DIR / "rider.html"
ATTENDANT_PAGE = STATIC_DIR / "attendant.html"
OPERATOR_PAGE = STATIC_DIR / "operator.html"
# Served from the root, not /static: a service worker may control only pages under its own path.
ATTENDANT_WORKER = STATIC_DIR / "attendant-sw.js"
JAVASCRIPT_MEDIA_TYPE = "text/javascript"
# A TL1 text is 298 characters; the bound leaves room for a longer format without letting a
# caller make the server draw arbitrarily large symbols.
QR_TEXT_MAX_CHARS = 400
SVG_MEDIA_TYPE = "image/svg+xml"
QR_REFUSED_STATUS = 422

# Each page keeps a token in localStorage (a rider's, or an attendant's operator token), so it
# allows only its own scripts and styles: an injected inline script could otherwise read the
# token. `data:` images are for the empty favicon, which stops the browser asking for
# /favicon.ico on every load.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    # The token arrives in the URL fragment; fragments are never sent as a referrer, and this
    # keeps even the path from leaking to any other origin.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# A drawn code is a live credential for up to a minute: no cache anywhere should keep it.
QR_HEADERS = {"Cache-Control": "no-store"}

router = APIRouter(tags=["rider page"])


class QrTextCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=QR_TEXT_MAX_CHARS)] = Field(
        description='a code text, "TL1:" + Base45, in the QR alphanumeric set'
    )


@router.get("/rider", include_in_schema=False)
def rider_page() -> FileResponse:
    """The rider's page; it reads its token from the URL fragment or localStorage."""
    return FileResponse(RIDER_PAGE, media_type="text/html", headers=PAGE_HEADERS)


@router.get("/attendant", include_in_schema=False)
def attendant_page() -> FileResponse:
    """The parking attendant's handheld page; it reads an operator token, a lot and a device
    name from the URL fragment or localStorage, and queues its actions while offline."""
    return FileResponse(ATTENDANT_PAGE, media_type="text/html", headers=PAGE_HEADERS)


@router.get("/operator", include_in_schema=False)
def operator_page() -> FileResponse:
    """The operators' clearing page: cycles, positions, revenue charts, lines, files and
    reconciliation, as far as its token (a scoped operator's, or staff's) may see."""
    return FileResponse(OPERATOR_PAGE, media_type="text/html", headers=PAGE_HEADERS)


@router.get("/attendant-sw.js", include_in_schema=False)
def attendant_worker() -> FileResponse:
    """The attendant page's service worker, which keeps the page for a handheld offline."""
    return FileResponse(ATTENDANT_WORKER, media_type=JAVASCRIPT_MEDIA_TYPE, headers=PAGE_HEADERS)


@router.post(
    "/v1/qr.svg",
    response_class=Response,
    responses={200: {"content": {SVG_MEDIA_TYPE: {}}, "description": "the QR symbol"}},
)
def draw_qr(body: QrTextCreate, _: CurrentPrincipal) -> Response:
    """Draws a code text as an SVG QR symbol (alphanumeric mode, level M, version 10 at most)."""
    try:
        svg = render_svg(body.text)
    except QrTextRefused as refused:
        raise Problem(QR_REFUSED_STATUS, refused.code, str(refused)) from refused
    return Response(svg, media_type=SVG_MEDIA_TYPE, headers=QR_HEADERS)


def mount_web(app: FastAPI) -> None:
    """Adds the rider, attendant and operator pages, their static files under /static, and the
    QR drawing route."""
    app.include_router(router, responses=API_ERROR_RESPONSES)
    app.mount(STATIC_MOUNT_PATH, StaticFiles(directory=STATIC_DIR), name="static")
