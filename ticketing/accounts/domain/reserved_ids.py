"""Transfer ids and payment references the code writes itself, which a caller may not choose.

Clearing tells a journey charge, a refund or a parking fee from a rider's payment by these ids
(docs/money-map.md). A staff top-up whose reference began `purse-refund:` would be read as a
reversal of revenue, and a staff debit named `journey:...` as a fare: so the HTTP API refuses
caller-chosen ids in these namespaces, and only the code's own writers use them.
"""

from __future__ import annotations

from ticketing.accounts.domain.errors import LedgerError

# Debits and holds: journeys, pass sales, card purses, parking sessions, card reloads.
INTERNAL_TRANSFER_PREFIXES = ("journey:", "pass:", "purse:", "parking:", "reload-")
# Top-up payment references: journey and purse refunds, parking credits, carried-over purses.
INTERNAL_REFERENCE_PREFIXES = ("journey-", "purse-refund:", "parking-credit:", "carry-over-")


class ReservedId(LedgerError):
    code = "reserved_id"

    def __init__(self, value: str) -> None:
        super().__init__(
            f"{value[:80]!r} is in a namespace the system writes itself; choose another"
        )


def check_caller_transfer_id(transfer_id: str) -> None:
    if transfer_id.startswith(INTERNAL_TRANSFER_PREFIXES):
        raise ReservedId(transfer_id)


def check_caller_reference(payment_reference: str) -> None:
    if payment_reference.startswith(INTERNAL_REFERENCE_PREFIXES):
        raise ReservedId(payment_reference)
