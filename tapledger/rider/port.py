"""What the rider's phone asks of the backend (`RiderPort`), and the replies as it reads them.

The wallet depends on this port only; `api.RiderApi` implements it over HTTP and the tests pass a
fake. Replies ignore fields the phone does not read, so the API may grow without breaking phones.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, field_validator

from ticketing.tl1.layout import CERTIFICATE_BYTES


class PrincipalReply(BaseModel):
    token_id: str
    role: str
    account_id: UUID | None


class CardReply(BaseModel):
    card_id: UUID
    account_id: UUID
    status: str
    issuer_key_id: int
    certificate: str
    not_before: int
    not_after: int
    server_time: int

    @field_validator("certificate")
    @classmethod
    def _is_a_certificate(cls, value: str) -> str:
        if len(certificate_bytes(value)) != CERTIFICATE_BYTES:
            raise ValueError(f"a certificate is the base64 of {CERTIFICATE_BYTES} bytes")
        return value


class AccountReply(BaseModel):
    id: UUID
    status: str
    posted_vnd: int
    pending_vnd: int
    available_vnd: int


class StatementLineReply(BaseModel):
    seq: int
    at: datetime
    kind: str
    reference: str
    description: str
    posted_delta_vnd: int
    available_after_vnd: int


class StatementReply(BaseModel):
    lines: list[StatementLineReply]


class RiderPort(Protocol):
    """What the phone asks of the backend; `RiderApi` over HTTP, a fake in the tests."""

    def me(self) -> PrincipalReply: ...

    def issue_virtual_card(self, account_id: UUID, device_key: bytes) -> CardReply: ...

    def get_virtual_card(self, card_id: UUID) -> CardReply: ...

    def renew_virtual_card(self, card_id: UUID) -> CardReply: ...

    def account(self, account_id: UUID) -> AccountReply: ...

    def statement(self, account_id: UUID, limit: int) -> list[StatementLineReply]: ...


def certificate_bytes(text: str) -> bytes:
    """The bytes of a certificate sent as base64; empty when `text` is not base64 at all."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""
