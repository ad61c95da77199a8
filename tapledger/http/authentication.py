"""Authentication ahead of everything that costs: the body, rate-limit buckets, idempotency keys.

Every route under `/v1/` needs a bearer token. This middleware checks it before any of the
request's body is read, answers a missing or unknown token with 401 at once, and leaves the
principal in the request's state (`ticketing.shared.access.PRINCIPAL_STATE_KEY`), where the
routes and the middlewares inside it read it: a request is authenticated once.

Failed authentications are counted per client address, so that a flood of made-up tokens is
answered 429 like any other flood, rather than each costing a lookup without limit.

One route under `/v1/` takes no token: `POST /v1/enrolments`, where a device that has none yet
exchanges a one-time enrolment code for one (`OPEN_ROUTES`). And a refused token may be one a
revoked validator still uploads with: `refused_upload` records that upload as refused, with its
reason, and says what to answer (`tapledger.http.upload_refusals`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from tapledger.http.hotstate import HotState
from tapledger.http.problems import problem_response
from tapledger.http.ratelimit import MS_PER_S, RateLimiter, address_bucket
from ticketing.shared.access import PRINCIPAL_STATE_KEY, Authenticator, NotAuthenticated, Principal

PROTECTED_PREFIX = "/v1/"
BEARER_SCHEME = "bearer"
FAILED_AUTHENTICATION_BUCKET = "auth-failed:ip"
# (method, path) of the routes under the prefix that need no token.
OPEN_ROUTES = frozenset({("POST", "/v1/enrolments")})
# Given a refused token and the request's path: the problem to answer instead of 401
# `not_authenticated` (status, code, detail), having recorded the request; or None.
RefusedUpload = Callable[[str, str], tuple[int, str, str] | None]


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER_SCHEME or not token:
        return None
    return token


class AuthenticationMiddleware:
    """Pure ASGI middleware: a principal for every request under `/v1/`, or 401 (or 429).

    Requests outside it (health, the rider page and its static files, the API's documentation)
    need no token and pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        hot_state: HotState,
        failures_per_window: int,
        window_ms: int,
        protected_prefix: str = PROTECTED_PREFIX,
        monotonic_ms: Callable[[], float] = lambda: time.monotonic() * MS_PER_S,
        refused_upload: RefusedUpload | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.protected_prefix = protected_prefix
        self.refused_upload = refused_upload
        self.failures = RateLimiter(
            hot_state=hot_state,
            requests_per_window=failures_per_window,
            window_ms=window_ms,
            monotonic_ms=monotonic_ms,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.protected_prefix)
            or (scope["method"], scope["path"]) in OPEN_ROUTES
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        principal = await self._principal(token)
        if principal is None:
            await self._refuse(scope, receive, send, token)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        await self.app(scope, receive, send)

    async def _principal(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        # A token seen a moment ago costs no query and no thread: the tap path.
        principal = self.authenticator.recent(token)
        if principal is None:
            principal = await run_in_threadpool(self.authenticator.authenticate, token)
        return principal

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, token: str | None) -> None:
        # Counted only once refused, so that a busy gate's good token is never held back by
        # another device's bad one behind the same address.
        verdict = await self.failures.hit(address_bucket(FAILED_AUTHENTICATION_BUCKET, scope))
        if verdict is not None and verdict.limited:
            await self.failures.refusal(verdict)(scope, receive, send)
            return
        if token is not None and self.refused_upload is not None:
            answer = await run_in_threadpool(self.refused_upload, token, scope["path"])
            if answer is not None:
                status, code, detail = answer
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                await problem_response(status, code, detail, headers=headers)(scope, receive, send)
                return
        error = NotAuthenticated()
        headers = {"WWW-Authenticate": "Bearer"}
        await problem_response(401, error.code, str(error), headers=headers)(scope, receive, send)
