"""Who may read a transport account."""

from __future__ import annotations

from uuid import UUID

from ticketing.accounts.domain.errors import AccountNotFound
from ticketing.shared.access import Forbidden, Principal, Role


def check_can_read(principal: Principal, account_id: UUID) -> None:
    """Staff read any account; a rider reads only its own, and others look absent to it."""
    if principal.role in (Role.ADMIN, Role.OPERATOR):
        return
    if principal.role is not Role.RIDER:
        raise Forbidden(principal.role)  # a device reads no account
    if principal.account_id != account_id:
        raise AccountNotFound(account_id)
