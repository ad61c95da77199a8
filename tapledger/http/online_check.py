"""The hottest routes served ahead of FastAPI's router: a gate's online check (`POST /v1/taps`)
and an officer's plate check (`GET /v1/parking/enforcement`).

They are the most frequent requests the server answers, and most of their cost was the
framework's: matching the route against every included router, solving dependencies, and the
exception and exit-stack layers around the endpoint. This middleware sits inside the rate
limiter and idempotency middleware and answers those routes itself, with the same handlers the
FastAPI routes use (`ticketing.taps.api.online_check`, `parking.api.enforcement`) and the same
problem+json answers; the FastAPI routes remain, and document them in `/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from parking.api import enforcement
from ticketing.taps.api import online_check

ONLINE_CHECK_PATH = "/v1/taps"
ENFORCEMENT_PATH = "/v1/parking/enforcement"
Handler = Callable[[Request], Awaitable[Response]]
HOT_ROUTES: Mapping[tuple[str, str], Handler] = {
    ("POST", ONLINE_CHECK_PATH): online_check,
    ("GET", ENFORCEMENT_PATH): enforcement,
}


class OnlineCheckMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        problem_for: Callable[[Exception], Response | None],
        routes: Mapping[tuple[str, str], Handler] = HOT_ROUTES,
    ) -> None:
        self.app = app
        self.problem_for = problem_for
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(Request(scope, receive))
        except Exception as error:  # answered as the app's own handlers would, or raised
            answer = self.problem_for(error)
            if answer is None:
                raise
            response = answer
        await response(scope, receive, send)
