"""The ledger's commands applied to accounts held in memory, saved many at a time.

`Ledger.execute_all` reads every account it has not seen and checks its memory against the log
before each batch: right for the fare follower, slow for writing a million rides into an empty
store. The generator owns every account it writes, so it applies each command with the
account's and the transfer record's own domain methods, as `Ledger` does, and saves the
aggregates together: the same events, topics and transfer ids, with no reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.commands import Command, Debit, PlaceHold, PostHold, TopUp
from ticketing.accounts.domain.transfer import HoldOutcome, Transfer, TransferKind, fingerprint


class LedgerBook:
    """Accounts and transfer records changed since the last `take`."""

    def __init__(self) -> None:
        self.accounts: dict[UUID, TransportAccount] = {}
        self._holds: dict[str, Transfer] = {}
        self._changed: dict[UUID, Any] = {}
        self.movements = 0  # money events written: each command writes one
        self.charged_vnd = 0  # debited and posted: every one of them is some operator's revenue

    def open(self, rider_category: int, at: datetime) -> TransportAccount:
        account = TransportAccount.open(
            rider_category=rider_category, display_name="", overdraft_vnd=0, at=at
        )
        self.accounts[account.id] = account
        self._changed[account.id] = account
        return account

    def apply(self, command: Command, at: datetime) -> None:
        account = self.accounts[command.account_id]
        self._changed[account.id] = account
        self.movements += 1
        match command:
            case TopUp():
                account.top_up(
                    transfer_id=command.transfer_id,
                    amount_vnd=command.amount_vnd,
                    payment_reference=command.payment_reference,
                    at=at,
                )
                self._record(command, TransferKind.TOP_UP, at)
            case Debit():
                account.debit(
                    transfer_id=command.transfer_id,
                    amount_vnd=command.amount_vnd,
                    description=command.description,
                    at=at,
                )
                self._record(command, TransferKind.DEBIT, at)
                self.charged_vnd += command.amount_vnd
            case PlaceHold():
                account.place_hold(
                    hold_id=command.hold_id,
                    amount_vnd=command.amount_vnd,
                    ttl_s=command.ttl_s,
                    description=command.description,
                    at=at,
                )
                self._holds[command.hold_id] = self._record(command, TransferKind.HOLD, at)
            case PostHold():
                amount_vnd = command.amount_vnd
                if amount_vnd is None:
                    amount_vnd = account.held_vnd(command.hold_id)
                account.post_hold(hold_id=command.hold_id, amount_vnd=amount_vnd, at=at)
                hold = self._holds.pop(command.hold_id)
                hold.resolve(outcome=HoldOutcome.POSTED, amount_vnd=amount_vnd, at=at)
                self.charged_vnd += amount_vnd
                self._changed[hold.id] = hold
            case _:
                raise NotImplementedError(f"the generator writes no {type(command).__name__}")

    def take(self) -> list[Any]:
        """The aggregates with events not yet saved, once."""
        changed = [a for a in self._changed.values() if a.pending_events]
        self._changed = {}
        return changed

    def _record(
        self, command: TopUp | Debit | PlaceHold, kind: TransferKind, at: datetime
    ) -> Transfer:
        # The request fingerprint the ledger keeps to recognise a repeat of the same command.
        request: dict[str, Any] = {
            "account_id": str(command.account_id),
            "amount_vnd": command.amount_vnd,
        }
        match command:
            case TopUp():
                request |= {"payment_reference": command.payment_reference, "kind": "top_up"}
                transfer_id = command.transfer_id
            case Debit():
                request |= {"description": command.description, "kind": "debit"}
                transfer_id = command.transfer_id
            case PlaceHold():
                request |= {"description": command.description, "ttl_s": command.ttl_s}
                request["kind"] = "hold"
                transfer_id = command.hold_id
        transfer = Transfer.record(
            transfer_id=transfer_id,
            account_id=command.account_id,
            kind=kind,
            amount_vnd=command.amount_vnd,
            fingerprint=fingerprint(**request),
            at=at,
        )
        self._changed[transfer.id] = transfer
        return transfer
