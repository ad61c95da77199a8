"""One `TransportAccount` event as the `Movement` that `classify` reads.

The ledger's money events each carry one id and one amount: a top-up and a debit their transfer
id, a hold's events the hold id. A hold placed, voided or expired moves money between an
account's own pots (a hold movement); a hold posted moves what was posted, which may be less
than what was held (a metro exit posting the actual fare). A closed account pays out its
`refund_vnd` and carries no reference. Blocking, unblocking and opening move no money and have
no entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from clearing.domain.classification import Movement, MovementKind
from ticketing.accounts.domain.account import TransportAccount


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """The plain fields of one ledger money event, and where it is in the store's order."""

    notification_id: int
    kind: MovementKind
    account_id: UUID
    reference: str  # transfer id or hold id; "" for a closed account
    amount_vnd: int  # for a posted hold, what was posted
    at: datetime  # when the ledger recorded it (its clock): what a cycle's cut-off is found by


MONEY_EVENTS: Mapping[type[object], MovementKind] = {
    TransportAccount.ToppedUp: MovementKind.TOPPED_UP,
    TransportAccount.Debited: MovementKind.DEBITED,
    TransportAccount.HoldPlaced: MovementKind.HOLD_PLACED,
    TransportAccount.HoldPosted: MovementKind.HOLD_POSTED,
    TransportAccount.HoldVoided: MovementKind.HOLD_VOIDED,
    TransportAccount.HoldExpired: MovementKind.HOLD_EXPIRED,
    TransportAccount.Closed: MovementKind.CLOSED,
}


def ledger_entry(notification_id: int, event: object) -> LedgerEntry | None:
    """The entry of a ledger money event; None for any other event (it moves no money)."""
    kind = MONEY_EVENTS.get(type(event))
    if kind is None:
        return None
    state = vars(event)
    return entry_of(notification_id, kind, state["originator_id"], state)


def entry_fields(kind: MovementKind) -> tuple[str, ...]:
    """The fields of a money event's state that its entry is made of (`entry_of`)."""
    if kind is MovementKind.CLOSED:
        return ("refund_vnd", "at")
    if kind in (MovementKind.TOPPED_UP, MovementKind.DEBITED):
        return ("transfer_id", "amount_vnd", "at")
    if kind in (MovementKind.HOLD_VOIDED, MovementKind.HOLD_EXPIRED):
        return ("hold_id", "held_vnd", "at")
    return ("hold_id", "amount_vnd", "at")


def entry_of(
    notification_id: int, kind: MovementKind, account_id: UUID, state: Mapping[str, Any]
) -> LedgerEntry:
    """The entry of a money event of `kind` on `account_id`, from its state's `entry_fields`."""
    if kind is MovementKind.CLOSED:
        return LedgerEntry(notification_id, kind, account_id, "", state["refund_vnd"], state["at"])
    if kind in (MovementKind.TOPPED_UP, MovementKind.DEBITED):
        reference = state["transfer_id"]
    else:
        reference = state["hold_id"]
    if kind in (MovementKind.HOLD_VOIDED, MovementKind.HOLD_EXPIRED):
        amount = state["held_vnd"]  # what the void or expiry gives back to the balance
    else:
        amount = state["amount_vnd"]  # a posted hold: the posted amount, not what was held
    return LedgerEntry(notification_id, kind, account_id, reference, amount, state["at"])


def movement_of(entry: LedgerEntry) -> Movement:
    """The movement `classify` reads for a ledger entry."""
    return Movement(entry.account_id, entry.kind, entry.reference, entry.amount_vnd)
