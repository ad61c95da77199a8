"""HTTP schemas of the ledger, named by role; every field is bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ticketing.accounts.domain import limits
from ticketing.accounts.domain.account import TransportAccount
from ticketing.shared.domain.rider import RiderCategory
from ticketing.shared.schemas import INTEGER_COLUMN_MAX, PrintableText

# Pydantic matches patterns with Rust's regex engine, where `$` is the end of the text.
TRANSFER_ID_REGEX = f"^{limits.TRANSFER_ID_PATTERN}$"
TransferIdField = Annotated[
    str,
    Field(min_length=1, max_length=limits.TRANSFER_ID_MAX_CHARS, pattern=TRANSFER_ID_REGEX),
]
DisplayNameField = Annotated[PrintableText, Field(max_length=limits.DISPLAY_NAME_MAX_CHARS)]
BlockReasonField = Annotated[
    PrintableText, Field(min_length=1, max_length=limits.BLOCK_REASON_MAX_CHARS)
]


# A statement line's `seq` is the account event's version, an Integer column.
STATEMENT_SEQ_MAX = INTEGER_COLUMN_MAX

DescriptionField = Annotated[PrintableText, Field(max_length=limits.DESCRIPTION_MAX_CHARS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# Requests


class AccountCreate(_Strict):
    rider_category: Annotated[int, Field(ge=0, le=max(RiderCategory))] = RiderCategory.REGULAR
    display_name: DisplayNameField = ""
    overdraft_vnd: Annotated[int, Field(ge=0, le=limits.OVERDRAFT_MAX_VND)] | None = None


class TopUpCreate(_Strict):
    amount_vnd: Annotated[int, Field(ge=1, le=limits.TOP_UP_MAX_VND)]
    payment_reference: Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.PAYMENT_REFERENCE_MAX_CHARS,
            pattern=TRANSFER_ID_REGEX,
        ),
    ]


class DebitCreate(_Strict):
    transfer_id: TransferIdField
    amount_vnd: Annotated[int, Field(ge=1, le=limits.TRANSFER_MAX_VND)]
    description: DescriptionField = ""


class HoldCreate(_Strict):
    hold_id: TransferIdField
    amount_vnd: Annotated[int, Field(ge=1, le=limits.TRANSFER_MAX_VND)]
    ttl_s: Annotated[int, Field(ge=limits.HOLD_TTL_MIN_S, le=limits.HOLD_TTL_MAX_S)] = (
        limits.HOLD_TTL_DEFAULT_S
    )
    description: DescriptionField = ""


class HoldPost(_Strict):
    """Posts part of the hold; without `amount_vnd`, all of it."""

    amount_vnd: Annotated[int, Field(ge=0, le=limits.TRANSFER_MAX_VND)] | None = None


class BlockCreate(_Strict):
    reason: BlockReasonField


# Responses


class HoldPublic(BaseModel):
    hold_id: str
    amount_vnd: int
    expires_at: datetime


class AccountPublic(BaseModel):
    id: UUID
    rider_category: int
    rider_category_name: str
    display_name: str
    status: str
    posted_vnd: int
    pending_vnd: int
    available_vnd: int
    overdraft_vnd: int
    holds: list[HoldPublic]
    opened_at: datetime
    version: int

    @classmethod
    def of(cls, account: TransportAccount) -> AccountPublic:
        return cls(
            id=account.id,
            rider_category=int(account.rider_category),
            rider_category_name=account.rider_category.name.lower(),
            display_name=account.display_name,
            status=account.status.value,
            posted_vnd=account.posted_vnd,
            pending_vnd=account.pending_vnd,
            available_vnd=account.available_vnd,
            overdraft_vnd=account.overdraft_vnd,
            holds=[
                HoldPublic(hold_id=k, amount_vnd=v["amount_vnd"], expires_at=v["expires_at"])
                for k, v in sorted(account.holds.items())
            ],
            opened_at=account.opened_at,
            version=account.version,
        )


class BalancePublic(BaseModel):
    account_id: UUID
    rider_category: int
    display_name: str
    status: str
    posted_vnd: int
    pending_vnd: int
    available_vnd: int
    overdraft_vnd: int
    updated_at: datetime


class BalancesPage(BaseModel):
    items: list[BalancePublic]
    next_after: UUID | None


class TransferPublic(BaseModel):
    transfer_id: str
    account_id: UUID
    kind: str
    amount_vnd: int
    outcome: str | None
    replayed: bool


class StatementLinePublic(BaseModel):
    seq: int
    at: datetime
    kind: str
    reference: str
    description: str
    posted_delta_vnd: int
    pending_delta_vnd: int
    posted_after_vnd: int
    pending_after_vnd: int
    available_after_vnd: int


class StatementPage(BaseModel):
    account_id: UUID
    lines: list[StatementLinePublic]
    next_before_seq: int | None

    @classmethod
    def of(
        cls, account_id: UUID, lines: list[dict[str, Any]], next_before_seq: int | None
    ) -> StatementPage:
        return cls(
            account_id=account_id,
            lines=[StatementLinePublic.model_validate(line) for line in lines],
            next_before_seq=next_before_seq,
        )
