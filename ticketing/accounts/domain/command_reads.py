"""What a ledger command reads and records, known from the command alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from ticketing.accounts.domain.commands import (
    Command,
    Debit,
    ExpireHold,
    PlaceHold,
    PostHold,
    TopUp,
    VoidHold,
)
from ticketing.accounts.domain.transfer import Transfer, TransferKind


def read_ids(commands: Sequence[Command], *, new_transfers: bool = False) -> list[UUID]:
    """The aggregates a batch of commands reads: its accounts and the holds it resolves, and
    with `new_transfers` the transfers it records (read when they may be repeats)."""
    ids: list[UUID] = []
    for command in commands:
        ids.append(command.account_id)
        if isinstance(command, PostHold | VoidHold | ExpireHold):
            ids.append(Transfer.create_id(command.hold_id))
        elif new_transfers:
            ids.append(Transfer.create_id(describe(command)[0]))
    return ids


def describe(command: TopUp | Debit | PlaceHold) -> tuple[str, TransferKind, dict[str, Any]]:
    """The transfer a new money command records: its id, its kind, and the request whose
    fingerprint tells a repeat from another request under the same id."""
    request: dict[str, Any] = {"account_id": str(command.account_id)}
    request["amount_vnd"] = command.amount_vnd
    match command:
        case TopUp():
            request["payment_reference"] = command.payment_reference
            return command.transfer_id, TransferKind.TOP_UP, request | {"kind": "top_up"}
        case Debit():
            request["description"] = command.description
            return command.transfer_id, TransferKind.DEBIT, request | {"kind": "debit"}
        case PlaceHold():
            request |= {"description": command.description, "ttl_s": command.ttl_s}
            return command.hold_id, TransferKind.HOLD, request | {"kind": "hold"}
