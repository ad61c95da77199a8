"""`POST /v1/taps` served ahead of FastAPI's router.

A gate's online check is the most frequent request the server answers, and most of its cost
was the framework's: matching the route against every included router, solving dependencies,
and the exception and exit-stack layers around the endpoint. This middleware sits inside the
rate limiter and idempotency middleware and answers that one route itself, with the same
handler the FastAPI route uses (`ticketing.taps.api.online_check`) and the same problem+json
answers; the FastAPI route remains, and documents it in `/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ticketing.taps.api import online_check

ONLINE_CHECK_PATH = "/v1/taps"


class OnlineCheckMiddleware:
    def __init__(
        self, app: ASGIApp, *, problem_for: Callable[[Exception], Response | None]
    ) -> None:
        self.app = app
        self.problem_for = problem_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != ONLINE_CHECK_PATH
            or scope["method"] != "POST"
        ):
            await self.app(scope, receive, send)
            return
        try:
            response = await online_check(Request(scope, receive))
        except Exception as error:  # answered as the app's own handlers would, or raised
            answer = self.problem_for(error)
            if answer is None:
                raise
            response = answer
        await response(scope, receive, send)
