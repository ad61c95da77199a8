"""API tokens (admin only): issued and shown once, listed without their secrets, revoked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from clearing.application.cycles import ClearingCycles
from tapledger.auth import (
    TOKEN_ID_CHARS,
    TOKEN_LABEL_MAX_CHARS,
    TOKEN_OPERATOR_MAX_CHARS,
    TOKENS_LISTED_MAX,
    TokenConfigured,
    TokenInfo,
    TokenNotFound,
    TokenStore,
)
from tapledger.http.problems import Problem
from ticketing.accounts.api import LedgerDep
from ticketing.shared.access import Role
from ticketing.shared.principals import CurrentAdmin
from ticketing.shared.problem_responses import problem_responses
from ticketing.shared.schemas import PrintableText

router = APIRouter(prefix="/tokens", tags=["tokens"])


def _tokens(request: Request) -> TokenStore:
    tokens: TokenStore = request.app.state.authenticator
    return tokens


TokensDep = Annotated[TokenStore, Depends(_tokens)]
TokenIdPath = Annotated[
    str, Path(min_length=TOKEN_ID_CHARS, max_length=TOKEN_ID_CHARS, pattern="^[0-9a-f]+$")
]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    account_id: UUID | None = None
    operator_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=TOKEN_OPERATOR_MAX_CHARS,
            description="operator tokens: scopes the token to this operator's clearing data "
            "(docs/clearing-api.md); such a token is accepted by no other route",
        ),
    ] = None
    label: Annotated[PrintableText, Field(max_length=TOKEN_LABEL_MAX_CHARS)] = ""


class TokenPublic(BaseModel):
    """A token without its secret, which is never stored."""

    token_id: str
    role: Role
    account_id: UUID | None
    validator_id: int | None = Field(description="validator tokens: the device's id")
    operator_id: str | None = Field(description="operator tokens scoped to one operator")
    label: str
    created_at: datetime
    revoked_at: datetime | None = Field(description="null while the token is valid")

    @classmethod
    def of(cls, info: TokenInfo) -> TokenPublic:
        return cls(
            token_id=info.token_id,
            role=info.role,
            account_id=info.account_id,
            validator_id=info.device_id,
            operator_id=info.operator_id,
            label=info.label,
            created_at=info.created_at,
            revoked_at=info.revoked_at,
        )


class TokenIssued(BaseModel):
    token: str
    token_id: str
    role: Role
    account_id: UUID | None
    operator_id: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
def issue_token(
    body: TokenCreate, request: Request, ledger: LedgerDep, _: CurrentAdmin
) -> TokenIssued:
    """Issues a token; a rider token names the one account it may read, and an operator token
    may name the one operator whose clearing data it may read."""
    if body.role is Role.VALIDATOR:
        raise Problem(
            422, "invalid_token_request", "validator tokens come from POST /v1/validators"
        )
    if body.role is Role.RIDER:
        if body.account_id is None:
            raise Problem(422, "invalid_token_request", "a rider token needs account_id")
        ledger.get_account(body.account_id)
    elif body.account_id is not None:
        raise Problem(422, "invalid_token_request", "only rider tokens name an account")
    if body.operator_id is not None:
        _check_operator(request, body.role, body.operator_id)
    tokens: TokenStore = request.app.state.authenticator
    issued = tokens.issue(
        body.role, account_id=body.account_id, operator_id=body.operator_id, label=body.label
    )
    return TokenIssued(
        token=issued.token,
        token_id=issued.principal.token_id,
        role=issued.principal.role,
        account_id=issued.principal.account_id,
        operator_id=issued.principal.operator_id,
    )


def _check_operator(request: Request, role: Role, operator_id: str) -> None:
    """Only an operator token names an operator, and only one clearing settles."""
    if role is not Role.OPERATOR:
        raise Problem(422, "invalid_token_request", "only operator tokens name an operator")
    clearing: ClearingCycles = request.app.state.clearing
    if operator_id not in clearing.terms.operators:
        raise Problem(422, "invalid_token_request", f"clearing settles no operator {operator_id!r}")


@router.get("")
def list_tokens(
    tokens: TokensDep,
    _: CurrentAdmin,
    limit: Annotated[int, Query(ge=1, le=TOKENS_LISTED_MAX)] = TOKENS_LISTED_MAX,
) -> list[TokenPublic]:
    """Tokens newest first, revoked ones included, never with their secrets."""
    return [TokenPublic.of(info) for info in tokens.tokens(limit=limit)]


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
)
def revoke_token(token_id: TokenIdPath, tokens: TokensDep, _: CurrentAdmin) -> Response:
    """Revokes a token in every worker at once; revoking it again changes nothing."""
    try:
        tokens.revoke(token_id)
    except TokenNotFound as error:
        raise Problem(404, error.code, str(error)) from None
    except TokenConfigured as error:
        raise Problem(409, error.code, str(error)) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
