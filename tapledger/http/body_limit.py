"""A size limit on every request body, per route, enforced as the bytes arrive.

This middleware is the outermost: a body declared too big is answered 413 before anything else
runs, and one that arrives without a Content-Length (chunked) or lies about it is cut off as
soon as its bytes pass the limit, so that no request makes the server hold more than its
route's limit in memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearing.api import RECONCILIATION_UPLOAD_MAX_BYTES
from parking.application.batch_actions import PARKING_ACTIONS_MAX
from parking.schemas import CODE_TEXT_MAX_CHARS
from tapledger.http.problems import problem_response
from ticketing.taps.application.ingestion import TAP_BATCH_MAX
from ticketing.taps.schemas import TRANSCRIPT_HEX_MAX_CHARS

# Every body but a tap batch is a few hundred bytes; the largest, one card tap with its session
# transcript for the online check, is under 6 KB at the schema's bounds.
REQUEST_BODY_MAX_BYTES = 16 * 1024
# A card tap at the schema's bounds: its transcript plus under a kilobyte of other fields.
TAP_UPLOAD_MAX_BYTES = TRANSCRIPT_HEX_MAX_CHARS + 1024
TAP_BATCH_BODY_MAX_BYTES = TAP_BATCH_MAX * TAP_UPLOAD_MAX_BYTES + REQUEST_BODY_MAX_BYTES
# A handheld's queued action at the schema's bounds: a scanned code plus under a kilobyte more.
PARKING_ACTION_MAX_BYTES = CODE_TEXT_MAX_CHARS + 1024
PARKING_ACTIONS_BODY_MAX_BYTES = PARKING_ACTIONS_MAX * PARKING_ACTION_MAX_BYTES
ROUTE_BODY_MAX_BYTES: Mapping[tuple[str, str], int] = {
    ("POST", "/v1/taps/batch"): TAP_BATCH_BODY_MAX_BYTES,
    ("POST", "/v1/parking/actions"): PARKING_ACTIONS_BODY_MAX_BYTES,
    # An operator's transaction file, uploaded whole for a reconciliation.
    ("POST", "/v1/clearing/reconciliations"): RECONCILIATION_UPLOAD_MAX_BYTES,
}


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Pure ASGI middleware answering 413 problem+json to a body over its route's limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_max_bytes: int = REQUEST_BODY_MAX_BYTES,
        route_max_bytes: Mapping[tuple[str, str], int] = ROUTE_BODY_MAX_BYTES,
    ) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.route_max_bytes = dict(route_max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_max_bytes.get((scope["method"], scope["path"]), self.default_max_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into whatever reads the body, so nothing reads further; the answer
                    # is sent below whatever that reader made of the error.
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a cut-off body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # A reader may wrap the cut-off in its own error; any error after it is its echo.
            if not over:
                raise
        if over and not started:
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    detail = f"the request body may have at most {limit} bytes on this route"
    return problem_response(413, "body_too_large", detail)
