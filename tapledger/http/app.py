"""The HTTP app: every context's router under /v1, problem+json errors, and the middlewares."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

import clearing.api
import parking.api
import ticketing.accounts.api
import ticketing.cards.api
import ticketing.journeys.api
import ticketing.taps.api
import ticketing.taps.enrolment_api
import ticketing.taps.health_api
from tapledger.bootstrap import Container, bootstrap
from tapledger.collector import tune_collector
from tapledger.http import tokens_api
from tapledger.http.authentication import AuthenticationMiddleware
from tapledger.http.body_limit import BodyLimitMiddleware
from tapledger.http.health import HEALTH_RESPONSES, healthz
from tapledger.http.hotstate import HotStateUnavailable
from tapledger.http.idempotency import IdempotencyMiddleware
from tapledger.http.online_check import OnlineCheckMiddleware
from tapledger.http.openapi import install_openapi
from tapledger.http.problems import Problem, problem_response
from tapledger.http.ratelimit import RateLimitMiddleware
from tapledger.http.upload_refusals import RevokedDeviceUploads
from tapledger.settings import Settings
from tapledger.web.pages import mount_web
from ticketing.shared.access import AccessError
from ticketing.shared.domain.errors import DomainError
from ticketing.shared.error_status import SHARED_ERROR_STATUS, merged, status_for
from ticketing.shared.problem_responses import API_ERROR_RESPONSES, problem_responses

VALIDATION_ERRORS_SHOWN_MAX = 10
API_PREFIX = "/v1"
# The tap path first: it is most of the traffic, and FastAPI matches a request against the
# included routers in order, walking each router's routes as it goes. An officer's plate
# check next, asked many times a second on a busy street.
API_ROUTERS: tuple[APIRouter, ...] = (
    ticketing.taps.api.router,
    parking.api.enforcement_router,
    ticketing.accounts.api.router,
    ticketing.cards.api.router,
    ticketing.accounts.api.me_router,
    ticketing.cards.api.smart_card_router,
    ticketing.taps.api.config_router,
    ticketing.taps.health_api.router,
    ticketing.taps.enrolment_api.router,
    ticketing.journeys.api.router,
    ticketing.journeys.api.pass_router,
    parking.api.router,
    clearing.api.router,
    tokens_api.router,
)
# Each context maps its own errors to statuses; the product answers with the merged table.
ERROR_STATUS = merged(
    SHARED_ERROR_STATUS,
    ticketing.accounts.api.ERROR_STATUS,
    ticketing.cards.api.ERROR_STATUS,
    ticketing.taps.api.ERROR_STATUS,
    ticketing.taps.enrolment_api.ERROR_STATUS,
    ticketing.journeys.api.ERROR_STATUS,
    parking.api.ERROR_STATUS,
    clearing.api.ERROR_STATUS,
)
MS_PER_S = 1000
CREATED_STATUS = 201

# A tap batch too large (in taps or bytes) is refused whole.
TAP_BATCH_RESPONSES = problem_responses(413)


def _responses_of(router: APIRouter) -> dict[int | str, dict[str, Any]]:
    if router is ticketing.taps.api.router:
        return API_ERROR_RESPONSES | TAP_BATCH_RESPONSES
    return API_ERROR_RESPONSES


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
    app.state.refusal_views = container.refusal_views
    app.state.journey_views = container.journey_views
    app.state.journeys = container.journeys
    app.state.pass_sales = container.pass_sales
    app.state.fares = container.journeys.fares
    app.state.parking = container.parking
    app.state.clearing = container.clearing
    app.state.validator_health = container.validator_health
    app.state.health_views = container.health_views
    app.state.deny_list_watch = container.deny_list_watch
    for router in API_ROUTERS:
        # Every operation declares the problem+json answers any route may give.
        app.include_router(router, prefix=API_PREFIX, responses=_responses_of(router))
    app.get("/healthz", tags=["health"], responses=HEALTH_RESPONSES)(healthz)
    mount_web(app)
    _install_error_handlers(app)
    install_openapi(app)
    _add_middlewares(app, container)
    return app


def _add_middlewares(app: FastAPI, container: Container) -> None:
    """Starlette runs the last-added middleware first, so they run in the reverse of this order:
    the body's size limit, then authentication (before any of the body is read), then the rate
    limit per principal, then idempotency, and the online check last, ahead of the router. So a
    stranger without a valid token costs a header check and one token lookup at most: no body,
    no rate-limit bucket of its own and no idempotency key, and its failures are limited per
    address."""
    settings = container.settings
    window_ms = settings.rate_limit_window_s * MS_PER_S
    app.add_middleware(OnlineCheckMiddleware, problem_for=problem_for)
    app.add_middleware(
        IdempotencyMiddleware,
        hot_state=container.hot_state,
        durable=container.idempotency_records,
        durable_routes=creating_routes(),
    )
    app.add_middleware(
        RateLimitMiddleware,
        hot_state=container.hot_state,
        requests_per_window=settings.rate_limit_requests,
        window_ms=window_ms,
    )
    app.add_middleware(
        AuthenticationMiddleware,
        authenticator=container.tokens,
        hot_state=container.hot_state,
        failures_per_window=settings.auth_failures_per_window,
        window_ms=window_ms,
        refused_upload=RevokedDeviceUploads(container.tokens, container.taps),
    )
    app.add_middleware(BodyLimitMiddleware)


def creating_routes() -> list[tuple[str, re.Pattern[str]]]:
    """The routes that answer 201 Created: their idempotency records must outlive hot state,
    since some (an account, a token) have no natural id that would make a repeat harmless."""
    return [
        ("POST", compile_path(API_PREFIX + route.path)[0])
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        and "POST" in (route.methods or ())
        and route.status_code == CREATED_STATUS
    ]


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` workers: tables exist already, so no DDL here."""
    app = create_app(bootstrap(Settings(), create_schema=False))
    tune_collector()
    return app


def problem_for(error: Exception) -> JSONResponse | None:
    """The problem+json answer to an error a request may end in, or None for a bug."""
    if isinstance(error, DomainError | AccessError):
        status = status_for(error, ERROR_STATUS)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        extra = error.details() if isinstance(error, DomainError) else {}
        return problem_response(status, error.code, str(error), headers=headers, **extra)
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

    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        # A bug: Starlette logs it and re-raises it after this answer is sent, and the client
        # gets problem+json like every other failure, never a plain-text page.
        response = problem_for(error)
        if response is not None:
            return response
        return problem_response(500, "internal_error", "an unexpected error; it has been logged")

    for error_type in (DomainError, AccessError, Problem, RequestValidationError, HTTPException):
        app.add_exception_handler(error_type, _answer)
    app.add_exception_handler(HotStateUnavailable, _answer)
    # Handled by Starlette's outermost middleware: errors of the middlewares are answered too.
    app.add_exception_handler(Exception, _unexpected)
