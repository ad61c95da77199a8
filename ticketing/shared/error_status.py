"""HTTP statuses of refused requests. Each context's API declares the statuses of its own errors
in an `ERROR_STATUS` table; the product merges the tables, and an error none of them names is
about the request's content (422)."""

from __future__ import annotations

from collections.abc import Mapping

from ticketing.shared.access import AccessError, Forbidden, NotAuthenticated
from ticketing.shared.domain.errors import Contended, DomainError
from ticketing.shared.domain.invariants import require
from ticketing.shared.group_commit import GroupCommitBusy

ErrorStatus = Mapping[type[Exception], int]

DOMAIN_ERROR_STATUS_DEFAULT = 422

SHARED_ERROR_STATUS: ErrorStatus = {
    NotAuthenticated: 401,
    Forbidden: 403,
    GroupCommitBusy: 503,
    Contended: 503,
}


def merged(*tables: ErrorStatus) -> dict[type[Exception], int]:
    """One table of several; an error named twice is a bug of the tables."""
    merged_table: dict[type[Exception], int] = {}
    for table in tables:
        for error_type, status in table.items():
            require(error_type not in merged_table, f"{error_type.__name__} has two statuses")
            merged_table[error_type] = status
    return merged_table


def status_for(error: DomainError | AccessError, table: ErrorStatus) -> int:
    """The status of the nearest class of `error` the table names."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return DOMAIN_ERROR_STATUS_DEFAULT
