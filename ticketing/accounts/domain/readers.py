"""Who may read a transport account."""

from __future__ import annotations

from uuid import UUID

from ticketing.accounts.domain.errors import AccountNotFound
from ticketing.shared.access import Principal, Role, is_staff, require_role


def check_can_read(principal: Principal, account_id: UUID) -> None:
    """Staff read any account; a rider reads only its own, and others look absent to it."""
    if is_staff(principal):
        return
    require_role(principal, Role.RIDER)  # a device, or a token scoped to an operator, reads none
    if principal.account_id != account_id:
        raise AccountNotFound(account_id)
