"""Who may do what with transport accounts. The product authenticates; this module authorises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from ticketing.domain.errors import AccountNotFound


class Role(StrEnum):
    ADMIN = "admin"  # runs the scheme: tokens, blocking, closing
    OPERATOR = "operator"  # transit and parking back ends, payment callbacks
    RIDER = "rider"  # one rider, one account, read-only


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    account_id: UUID | None = None


class Authenticator(Protocol):
    """Turns a bearer token into the principal it was issued to, or None."""

    def authenticate(self, token: str) -> Principal | None: ...


class AccessError(Exception):
    code = "access_error"


class NotAuthenticated(AccessError):
    code = "not_authenticated"

    def __init__(self) -> None:
        super().__init__("a valid bearer token is required")


class Forbidden(AccessError):
    code = "forbidden"

    def __init__(self, role: Role) -> None:
        super().__init__(f"the {role} role may not do this")


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Forbidden(principal.role)


def check_can_read(principal: Principal, account_id: UUID) -> None:
    """Staff read any account; a rider reads only its own, and others look absent to it."""
    if principal.role is Role.RIDER and principal.account_id != account_id:
        raise AccountNotFound(account_id)
