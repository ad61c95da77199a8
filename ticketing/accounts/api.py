"""The ledger's HTTP routes: thin, mapping requests to use cases and domain errors to statuses."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel

from ticketing.accounts import schemas
from ticketing.accounts.adapters.read_model import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, LedgerReadModel
from ticketing.accounts.application.ledger import Ledger, Receipt
from ticketing.accounts.domain import errors
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp, VoidHold
from ticketing.accounts.domain.readers import check_can_read
from ticketing.accounts.domain.reserved_ids import (
    check_caller_reference,
    check_caller_transfer_id,
)
from ticketing.shared.access import (
    Role,
)
from ticketing.shared.error_status import ErrorStatus
from ticketing.shared.principals import CurrentAdmin, CurrentPrincipal, CurrentStaff

# The statuses of the ledger's errors (see `ticketing.shared.error_status`).
ERROR_STATUS: ErrorStatus = {
    errors.AccountNotFound: 404,
    errors.HoldNotFound: 404,
    errors.TransferConflict: 409,
    errors.HoldAlreadyResolved: 409,
    errors.HoldNotPending: 409,
    errors.HoldNotYetExpired: 409,
    errors.AccountClosed: 409,
    errors.AccountBlocked: 409,
    errors.AccountAlreadyBlocked: 409,
    errors.AccountNotBlocked: 409,
    errors.AccountHasPendingHolds: 409,
    errors.AccountInDebt: 409,
    errors.TooManyPendingHolds: 409,
    # `LedgerBusy` is a `Contended`: 503 from the shared table.
}


async def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def _read_model(request: Request) -> LedgerReadModel:
    read_model: LedgerReadModel = request.app.state.read_model
    return read_model


LedgerDep = Annotated[Ledger, Depends(_ledger)]
ReadModelDep = Annotated[LedgerReadModel, Depends(_read_model)]
PageSize = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.post("", status_code=status.HTTP_201_CREATED)
def open_account(
    body: schemas.AccountCreate, ledger: LedgerDep, _: CurrentStaff, response: Response
) -> schemas.AccountPublic:
    """Opens a transport account for one rider."""
    account = ledger.open_account(
        rider_category=body.rider_category,
        display_name=body.display_name,
        overdraft_vnd=body.overdraft_vnd,
    )
    response.headers["Location"] = f"/v1/accounts/{account.id}"
    return schemas.AccountPublic.of(account)


@router.get("")
def list_accounts(
    read_model: ReadModelDep,
    _: CurrentStaff,
    after: UUID | None = None,
    limit: PageSize = PAGE_SIZE_DEFAULT,
) -> schemas.BalancesPage:
    """Lists balances from the read model, in account-id order; may trail writes by a moment."""
    rows = read_model.list_balances(after=after, limit=limit)
    items = [schemas.BalancePublic.model_validate(row) for row in rows]
    return schemas.BalancesPage(
        items=items, next_after=items[-1].account_id if len(items) == limit else None
    )


@router.get("/{account_id}")
def get_account(
    account_id: UUID, ledger: LedgerDep, principal: CurrentPrincipal
) -> schemas.AccountPublic:
    """The account as of its last event: balances and pending holds."""
    check_can_read(principal, account_id)
    return schemas.AccountPublic.of(ledger.get_account(account_id))


@router.get("/{account_id}/statement")
def get_statement(
    account_id: UUID,
    ledger: LedgerDep,
    read_model: ReadModelDep,
    principal: CurrentPrincipal,
    before_seq: Annotated[int | None, Query(ge=1, le=schemas.STATEMENT_SEQ_MAX)] = None,
    limit: PageSize = PAGE_SIZE_DEFAULT,
) -> schemas.StatementPage:
    """Statement lines, newest first; pass `next_before_seq` as `before_seq` for the next page."""
    check_can_read(principal, account_id)
    ledger.get_account(account_id)  # an unknown account is a 404, not an empty statement
    page = read_model.statement(account_id, before_seq=before_seq, limit=limit)
    return schemas.StatementPage.of(account_id, page.lines, page.next_before_seq)


def _run(ledger: Ledger, command: Command, response: Response) -> schemas.TransferPublic:
    receipt: Receipt = ledger.execute(command)
    # A repeat of an earlier transfer answers 200 with the original transfer; a new one 201.
    response.status_code = status.HTTP_200_OK if receipt.replayed else status.HTTP_201_CREATED
    return schemas.TransferPublic(
        transfer_id=receipt.transfer_id,
        account_id=receipt.account_id,
        kind=receipt.kind.value,
        amount_vnd=receipt.amount_vnd,
        outcome=receipt.outcome.value if receipt.outcome else None,
        replayed=receipt.replayed,
    )


@router.post("/{account_id}/top-ups", status_code=status.HTTP_201_CREATED)
def top_up(
    account_id: UUID,
    body: schemas.TopUpCreate,
    ledger: LedgerDep,
    _: CurrentStaff,
    response: Response,
) -> schemas.TransferPublic:
    """Credits a payment; the same payment reference twice is one top-up."""
    check_caller_reference(body.payment_reference)
    return _run(ledger, TopUp(account_id, body.amount_vnd, body.payment_reference), response)


@router.post("/{account_id}/debits", status_code=status.HTTP_201_CREATED)
def debit(
    account_id: UUID,
    body: schemas.DebitCreate,
    ledger: LedgerDep,
    _: CurrentStaff,
    response: Response,
) -> schemas.TransferPublic:
    """Debits a posted amount at once; the transfer id makes a repeat one debit."""
    check_caller_transfer_id(body.transfer_id)
    command = Debit(account_id, body.transfer_id, body.amount_vnd, body.description)
    return _run(ledger, command, response)


@router.post("/{account_id}/holds", status_code=status.HTTP_201_CREATED)
def place_hold(
    account_id: UUID,
    body: schemas.HoldCreate,
    ledger: LedgerDep,
    _: CurrentStaff,
    response: Response,
) -> schemas.TransferPublic:
    """Reserves an amount until it is posted, voided, or expires after `ttl_s`."""
    check_caller_transfer_id(body.hold_id)
    command = PlaceHold(account_id, body.hold_id, body.amount_vnd, body.ttl_s, body.description)
    return _run(ledger, command, response)


@router.post("/{account_id}/holds/{hold_id}/post", status_code=status.HTTP_200_OK)
def post_hold(
    account_id: UUID,
    hold_id: str,
    ledger: LedgerDep,
    _: CurrentStaff,
    response: Response,
    body: schemas.HoldPost | None = None,
) -> schemas.TransferPublic:
    """Posts all or part of a hold and releases the rest."""
    amount_vnd = body.amount_vnd if body else None
    result = _run(ledger, PostHold(account_id, hold_id, amount_vnd), response)
    response.status_code = status.HTTP_200_OK
    return result


@router.post("/{account_id}/holds/{hold_id}/void", status_code=status.HTTP_200_OK)
def void_hold(
    account_id: UUID, hold_id: str, ledger: LedgerDep, _: CurrentStaff, response: Response
) -> schemas.TransferPublic:
    """Releases a hold without posting anything."""
    result = _run(ledger, VoidHold(account_id, hold_id), response)
    response.status_code = status.HTTP_200_OK
    return result


@router.post("/{account_id}/block")
def block_account(
    account_id: UUID, body: schemas.BlockCreate, ledger: LedgerDep, _: CurrentAdmin
) -> schemas.AccountPublic:
    """Stops new debits and holds; top-ups and holds already placed still settle."""
    return schemas.AccountPublic.of(ledger.block_account(account_id, reason=body.reason))


@router.post("/{account_id}/unblock")
def unblock_account(account_id: UUID, ledger: LedgerDep, _: CurrentAdmin) -> schemas.AccountPublic:
    """Lifts a block."""
    return schemas.AccountPublic.of(ledger.unblock_account(account_id))


@router.post("/{account_id}/close")
def close_account(account_id: UUID, ledger: LedgerDep, _: CurrentAdmin) -> schemas.AccountPublic:
    """Closes the account; a positive balance is recorded as a refund owed to the rider."""
    return schemas.AccountPublic.of(ledger.close_account(account_id))


me_router = APIRouter(tags=["accounts"])


class PrincipalPublic(BaseModel):
    token_id: str
    role: Role
    account_id: UUID | None
    operator_id: str | None = None


@me_router.get("/me")
def who_am_i(principal: CurrentPrincipal) -> PrincipalPublic:
    """The caller's role and, for a rider, its account; for an operator token scoped to one
    operator, that operator."""
    return PrincipalPublic(
        token_id=principal.token_id,
        role=principal.role,
        account_id=principal.account_id,
        operator_id=principal.operator_id,
    )
