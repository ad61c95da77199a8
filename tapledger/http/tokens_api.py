"""Issuing API tokens (admin only). A token is shown once, in this response."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from tapledger.auth import TOKEN_LABEL_MAX_CHARS, TokenStore
from tapledger.http.problems import Problem
from ticketing.access import Role
from ticketing.api import CurrentAdmin, LedgerDep
from ticketing.schemas import PrintableText

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    account_id: UUID | None = None
    label: Annotated[PrintableText, Field(max_length=TOKEN_LABEL_MAX_CHARS)] = ""


class TokenIssued(BaseModel):
    token: str
    token_id: str
    role: Role
    account_id: UUID | None


@router.post("", status_code=status.HTTP_201_CREATED)
def issue_token(
    body: TokenCreate, request: Request, ledger: LedgerDep, _: CurrentAdmin
) -> TokenIssued:
    """Issues a token; a rider token names the one account it may read."""
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
    tokens: TokenStore = request.app.state.authenticator
    issued = tokens.issue(body.role, account_id=body.account_id, label=body.label)
    return TokenIssued(
        token=issued.token,
        token_id=issued.principal.token_id,
        role=issued.principal.role,
        account_id=issued.principal.account_id,
    )
