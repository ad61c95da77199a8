"""Who is calling: the FastAPI dependencies every context's routes take their caller from."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ticketing.shared.access import (
    PRINCIPAL_STATE_KEY,
    Authenticator,
    NotAuthenticated,
    Principal,
    Role,
    require_role,
)

_bearer = HTTPBearer(auto_error=False, description="A token issued by POST /v1/tokens")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, as the authentication middleware found it; authenticated here only for an
    app built without that middleware. (`_bearer` stays so that the API documents the scheme.)"""
    authenticated = _already_authenticated(request)
    if authenticated is not None:
        return authenticated
    if credentials is None:
        raise NotAuthenticated
    return await _authenticated(request, credentials.credentials)


async def principal_of(request: Request) -> Principal:
    """`current_principal` for a route that reads its request itself."""
    authenticated = _already_authenticated(request)
    if authenticated is not None:
        return authenticated
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated
    return await _authenticated(request, token.strip())


def _already_authenticated(request: Request) -> Principal | None:
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_STATE_KEY)
    return principal


async def _authenticated(request: Request, token: str) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    principal = authenticator.recent(token)
    if principal is None:
        principal = await run_in_threadpool(authenticator.authenticate, token)
    if principal is None:
        raise NotAuthenticated
    return principal


async def current_staff(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    require_role(principal, Role.ADMIN, Role.OPERATOR)
    return principal


async def current_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    require_role(principal, Role.ADMIN)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentStaff = Annotated[Principal, Depends(current_staff)]
CurrentAdmin = Annotated[Principal, Depends(current_admin)]
