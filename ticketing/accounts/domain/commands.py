"""Requests to move money on a transport account, as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

TOP_UP_ID_PREFIX = "top-up:"


@dataclass(frozen=True)
class TopUp:
    """Money paid in; the payment provider's reference makes a repeat one effect."""

    account_id: UUID
    amount_vnd: int
    payment_reference: str

    @property
    def transfer_id(self) -> str:
        return TOP_UP_ID_PREFIX + self.payment_reference


@dataclass(frozen=True)
class Debit:
    account_id: UUID
    transfer_id: str
    amount_vnd: int
    description: str = ""


@dataclass(frozen=True)
class PlaceHold:
    account_id: UUID
    hold_id: str
    amount_vnd: int
    ttl_s: int
    description: str = ""


@dataclass(frozen=True)
class PostHold:
    """Posts part or all of a hold; `amount_vnd=None` posts all of it."""

    account_id: UUID
    hold_id: str
    amount_vnd: int | None = None


@dataclass(frozen=True)
class VoidHold:
    account_id: UUID
    hold_id: str


@dataclass(frozen=True)
class ExpireHold:
    account_id: UUID
    hold_id: str


Command = TopUp | Debit | PlaceHold | PostHold | VoidHold | ExpireHold
