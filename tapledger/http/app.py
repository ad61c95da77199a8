"""The HTTP app: every context's router under /v1, problem+json errors, and the middlewares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import ticketing.api
import ticketing.cards_api
import ticketing.journeys_api
import ticketing.passes_api
import ticketing.smart_cards_api
import ticketing.taps_api
import ticketing.validator_config_api
from tapledger.bootstrap import Container, bootstrap
from tapledger.collector import tune_collector
from tapledger.http import tokens_api
from tapledger.http.idempotency import IdempotencyMiddleware
from tapledger.http.online_check import OnlineCheckMiddleware
from tapledger.http.problems import Problem, problem_response
from tapledger.http.ratelimit import RateLimitMiddleware
from tapledger.settings import Settings
from tapledger.web.pages import mount_web
from ticketing.access import AccessError
from ticketing.domain.errors import LedgerError
from ticketing.hotstate import HotStateUnavailable

VALIDATION_ERRORS_SHOWN_MAX = 10


def create_app(container: Container, *, own_container: bool = True) -> FastAPI:
    """Builds the app over a container; with `own_container` the app closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        container.start_invalidations()
        if container.settings.follow_in_process:
            container.start_followers()
        yield
        if own_container:
            container.close()

    app = FastAPI(
        title="tapledger",
        version="0.1.0",
        summary="Transit fares and street parking on one transport account",
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.ledger = container.ledger
    app.state.read_model = container.read_model
    app.state.authenticator = container.tokens
    app.state.cards = container.cards
    app.state.card_views = container.card_views
    app.state.smart_cards = container.smart_cards
    app.state.taps = container.taps
    app.state.tap_views = container.tap_views
    app.state.journey_views = container.journey_views
    app.state.journeys = container.journeys
    app.state.pass_sales = container.pass_sales
    app.state.fares = container.journeys.fares
    # The tap path first: it is most of the traffic, and FastAPI matches a request against the
    # included routers in order, walking each router's routes as it goes.
    app.include_router(ticketing.taps_api.router, prefix="/v1")
    app.include_router(ticketing.api.router, prefix="/v1")
    app.include_router(ticketing.cards_api.router, prefix="/v1")
    app.include_router(ticketing.api.me_router, prefix="/v1")
    app.include_router(ticketing.smart_cards_api.router, prefix="/v1")
    app.include_router(ticketing.validator_config_api.router, prefix="/v1")
    app.include_router(ticketing.journeys_api.router, prefix="/v1")
    app.include_router(ticketing.passes_api.router, prefix="/v1")
    app.include_router(tokens_api.router, prefix="/v1")
    app.get("/healthz", tags=["health"])(_healthz)
    mount_web(app)
    _install_error_handlers(app)
    settings = container.settings
    # Starlette runs the last-added middleware first: rate limits apply before idempotency,
    # and both before the online check is answered ahead of the router.
    app.add_middleware(OnlineCheckMiddleware, problem_for=problem_for)
    app.add_middleware(IdempotencyMiddleware, hot_state=container.hot_state)
    app.add_middleware(
        RateLimitMiddleware,
        hot_state=container.hot_state,
        requests_per_window=settings.rate_limit_requests,
        window_ms=settings.rate_limit_window_s * 1000,
    )
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` workers: tables exist already, so no DDL here."""
    app = create_app(bootstrap(Settings(), create_schema=False))
    tune_collector()
    return app


def _healthz(request: Request) -> JSONResponse:
    """Liveness and readiness: the event store, the read models and hot state answer."""
    container: Container = request.app.state.container
    checks = {
        "event_store": _check(lambda: container.ledger.recorder.max_notification_id()),
        "read_models": _check(container.follower.position),
        "hot_state": _check(container.hot_state.ping),
    }
    healthy = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", "checks": checks}
    if checks["read_models"] == "ok":
        body["follower_lag"] = container.follower.lag()
    return JSONResponse(body, status_code=200 if healthy else 503)


def _check(probe: Any) -> str:
    try:
        result = probe()
    except Exception as error:  # a health check reports every failure, whatever its type
        return f"error: {type(error).__name__}"
    return "error: no answer" if result is False else "ok"


def problem_for(error: Exception) -> JSONResponse | None:
    """The problem+json answer to an error a request may end in, or None for a bug."""
    if isinstance(error, LedgerError | AccessError):
        status = ticketing.api.status_for(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return problem_response(status, error.code, str(error), headers=headers)
    if isinstance(error, Problem):
        return problem_response(error.status, error.code, error.detail, **error.extra)
    if isinstance(error, RequestValidationError):
        errors = [
            {"location": list(e.get("loc", ())), "message": e.get("msg", "")}
            for e in error.errors()[:VALIDATION_ERRORS_SHOWN_MAX]
        ]
        return problem_response(
            422, "validation_error", "the request does not match the schema", errors=errors
        )
    if isinstance(error, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return problem_response(error.status_code, code, str(error.detail))
    if isinstance(error, HotStateUnavailable):
        return problem_response(503, "hot_state_unavailable", str(error))
    return None


def _install_error_handlers(app: FastAPI) -> None:
    async def _answer(_: Request, error: Exception) -> JSONResponse:
        response = problem_for(error)
        if response is None:
            raise error
        return response

    for error_type in (LedgerError, AccessError, Problem, RequestValidationError, HTTPException):
        app.add_exception_handler(error_type, _answer)
    app.add_exception_handler(HotStateUnavailable, _answer)
