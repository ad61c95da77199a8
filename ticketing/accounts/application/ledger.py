"""The ledger's service layer: one method per use case over the event store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ticketing.accounts.domain.account import TransportAccount
from ticketing.accounts.domain.command_reads import describe, read_ids
from ticketing.accounts.domain.commands import (
    Command,
    Debit,
    ExpireHold,
    PlaceHold,
    PostHold,
    TopUp,
    VoidHold,
)
from ticketing.accounts.domain.errors import (
    AccountNotFound,
    HoldAlreadyResolved,
    HoldNotFound,
    LedgerBusy,
    LedgerError,
    TransferConflict,
)
from ticketing.accounts.domain.transfer import (
    HoldOutcome,
    Transfer,
    TransferKind,
    check_transfer_id,
    fingerprint,
)
from ticketing.shared.domain.invariants import InvariantViolated, require
from ticketing.shared.log_checked_cache import LogCheckedCache
from ticketing.shared.observed import ObservedApplication
from ticketing.shared.optimistic import save_with_retries

# Threads of one process writing the same account take turns on one of these locks, so they
# never race each other; only writers in other processes meet the optimistic check.
ACCOUNT_LOCK_STRIPES = 256
# Commands in one atomic batch (one transaction).
LEDGER_BATCH_MAX = 500
# Attempts of a batch that loses its race to another writer of its accounts before the caller
# is told (two workers on shared accounts lose one in a hundred, often twice running).
LEDGER_BATCH_ATTEMPTS = 4
# Replaying an account costs ~30 µs an event; a snapshot every this many keeps reads short.
ACCOUNT_SNAPSHOT_INTERVAL = 100
# Accounts and transfer records kept per process (a few KiB each): by the library's cache, and
# by the batches' memory, which keeps a busy day's riders (an account it drops is read again).
AGGREGATE_CACHE_MAX = 20_000
BATCH_MEMORY_MAX = 100_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Receipt:
    """What a money command did, or had already done when it is a repeat."""

    transfer_id: str
    account_id: UUID
    kind: TransferKind
    amount_vnd: int
    outcome: HoldOutcome | None
    replayed: bool


@dataclass(frozen=True)
class BatchOutcome:
    """What `Ledger.execute_all` did: all committed, or nothing stored and why."""

    committed: bool
    refused_at: int | None  # the index of the first command refused; None for a lost race
    error: LedgerError | None


class Ledger(ObservedApplication):
    """Transport accounts: open, top up, hold, post, void, expire, debit, block, close."""

    name = "Ledger"
    # Keep recently used accounts in memory: a read then fetches only the events written since
    # (by this process or another) instead of replaying from the last snapshot. Saves still
    # meet the optimistic check, so a stale cache can cost a retry, never a lost update.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_MAX)}
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        TransportAccount: ACCOUNT_SNAPSHOT_INTERVAL
    }

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        overdraft_default_vnd: int = 0,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.overdraft_default_vnd = overdraft_default_vnd
        self._account_locks = [threading.Lock() for _ in range(ACCOUNT_LOCK_STRIPES)]
        # Accounts and transfers `execute_all` read or wrote, checked against the log.
        self._batch_memory = LogCheckedCache(self, size_max=BATCH_MEMORY_MAX, shared=False)
        self._batch_lock = threading.Lock()

    def now(self) -> datetime:
        """The ledger's time, always UTC, so stores that drop offsets keep the right instant."""
        return self.clock().astimezone(UTC)

    # Accounts

    def open_account(
        self, *, rider_category: int, display_name: str = "", overdraft_vnd: int | None = None
    ) -> TransportAccount:
        account = TransportAccount.open(
            rider_category=rider_category,
            display_name=display_name,
            overdraft_vnd=self.overdraft_default_vnd if overdraft_vnd is None else overdraft_vnd,
            at=self.now(),
        )
        self.save(account)
        return account

    def get_account(self, account_id: UUID) -> TransportAccount:
        try:
            account: TransportAccount = self.repository.get(account_id)
        except AggregateNotFoundError:
            raise AccountNotFound(account_id) from None
        if not isinstance(account, TransportAccount):
            raise AccountNotFound(account_id)
        return account

    def get_transfer(self, transfer_id: str) -> Transfer | None:
        check_transfer_id(transfer_id)
        try:
            transfer: Transfer = self.repository.get(Transfer.create_id(transfer_id))
        except AggregateNotFoundError:
            return None
        return transfer

    def block_account(self, account_id: UUID, *, reason: str) -> TransportAccount:
        return self._change(account_id, lambda a, at: a.block(reason=reason, at=at))

    def unblock_account(self, account_id: UUID) -> TransportAccount:
        return self._change(account_id, lambda a, at: a.unblock(at=at))

    def close_account(self, account_id: UUID) -> TransportAccount:
        return self._change(account_id, lambda a, at: a.close(at=at), expire_due=True)

    # Money

    def execute(self, command: Command) -> Receipt:
        """Runs one command atomically, re-reading and retrying when another writer won."""

        def attempt() -> Receipt:
            work = _Work(self)
            receipt = _apply(work, command, self.now())
            self._save_work(work)
            return receipt

        with self._lock_for(command.account_id):
            return save_with_retries(attempt, what="the account", contended=LedgerBusy)

    def _lock_for(self, account_id: UUID) -> threading.Lock:
        return self._account_locks[account_id.int % ACCOUNT_LOCK_STRIPES]

    def execute_batch(self, commands: Sequence[Command]) -> list[Receipt | LedgerError]:
        """Runs many commands in one transaction; each gets its receipt or its refusal. When a
        concurrent writer touched one of the accounts, the batch falls back to running its
        commands one by one, so one busy account never refuses the others."""
        require(len(commands) <= LEDGER_BATCH_MAX, "batches are bounded by LEDGER_BATCH_MAX")
        work = _Work(self)
        at = self.now()
        results: list[Receipt | LedgerError] = []
        for command in commands:
            try:
                results.append(_apply(work, command, at))
            except LedgerError as error:
                results.append(error)
        try:
            self._save_work(work)
        except IntegrityError:
            return [self._execute_or_refuse(command) for command in commands]
        return results

    def execute_all(self, commands: Sequence[Command]) -> BatchOutcome:
        """Runs every command in one transaction, or none: the first refusal stores nothing
        and says which command it was, so the caller can run that one alone and the rest again.

        For a caller that decided each command assuming the ones before it succeed (the fare
        follower's section of taps): a refusal would change what comes after it. The first
        attempt takes every transfer id as new without reading it, since the store refuses a
        transfer recorded twice; a repeat (after a crash) or a refusal is then tried again
        reading each transfer, so a repeat is answered as one. Before it, what another writer
        changed since is read from the log and the batch's transfers in one query (again for
        each race lost, up to LEDGER_BATCH_ATTEMPTS).
        """
        require(len(commands) <= LEDGER_BATCH_MAX, "batches are bounded by LEDGER_BATCH_MAX")
        with self._batch_lock:
            self._batch_memory.refresh()
            self._batch_memory.prefetch(read_ids(commands))
            outcome = self._execute_all(commands, assume_new=True)
            for _ in range(LEDGER_BATCH_ATTEMPTS - 1):
                if outcome.committed:
                    break
                self._batch_memory.refresh()
                self._batch_memory.prefetch(read_ids(commands, new_transfers=True))
                outcome = self._execute_all(commands, assume_new=False)
                if outcome.refused_at is not None:
                    break
            return outcome

    def _execute_all(self, commands: Sequence[Command], *, assume_new: bool) -> BatchOutcome:
        work = _Work(self, assume_new=assume_new, memory=self._batch_memory)
        at = self.now()
        for index, command in enumerate(commands):
            try:
                _apply(work, command, at)
            except LedgerError as error:
                work.forget()
                return BatchOutcome(committed=False, refused_at=index, error=error)
        changed = work.changed()
        if changed:
            try:
                recordings = self.save(*changed)
            except IntegrityError:
                # A transfer already stored, or another writer changed one of the accounts
                # first; nothing was stored.
                work.forget()
                return BatchOutcome(committed=False, refused_at=None, error=None)
            self._batch_memory.saved(recordings)
            # Only a repeat reads a finished transfer again: the memory keeps what changes.
            self._batch_memory.forget(work.finished_transfer_ids())
        return BatchOutcome(committed=True, refused_at=None, error=None)

    def _execute_or_refuse(self, command: Command) -> Receipt | LedgerError:
        try:
            return self.execute(command)
        except LedgerError as error:
            return error

    def _change(
        self,
        account_id: UUID,
        change: Callable[[TransportAccount, datetime], None],
        *,
        expire_due: bool = False,
    ) -> TransportAccount:
        def attempt() -> TransportAccount:
            work = _Work(self)
            account = work.account(account_id)
            at = self.now()
            if expire_due:
                _expire_due_holds(work, account, at)
            change(account, at)
            self._save_work(work)
            return account

        with self._lock_for(account_id):
            return save_with_retries(attempt, what="the account", contended=LedgerBusy)

    def _save_work(self, work: _Work) -> None:
        """Saves what one attempt changed, all or nothing; the store's conflict error means
        another writer saved first, and this attempt's objects are stale and spent."""
        changed = work.changed()
        if changed:
            self.save(*changed)


class _Work:
    """The aggregates one attempt reads and changes, saved together or not at all."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        assume_new: bool = False,
        memory: LogCheckedCache | None = None,
    ) -> None:
        self._ledger = ledger
        # New transfers are not looked up first: saving one that exists fails as a whole.
        self._assume_new = assume_new
        # Where a batch finds what earlier batches read; its objects are changed in place, so
        # a batch that is not saved must `forget` them.
        self._memory = memory
        self._accounts: dict[UUID, TransportAccount] = {}
        self._transfers: dict[str, Transfer | None] = {}
        # The version each aggregate had when the memory handed it out (None: made here).
        self._versions: dict[UUID, int | None] = {}

    def account(self, account_id: UUID) -> TransportAccount:
        if account_id not in self._accounts:
            if self._memory is None:
                self._accounts[account_id] = self._ledger.get_account(account_id)
            else:
                found = self._memory.get(account_id, self._load)
                if not isinstance(found, TransportAccount):
                    raise AccountNotFound(account_id)
                self._accounts[account_id] = found
                self._versions[account_id] = found.version
        return self._accounts[account_id]

    def transfer(self, transfer_id: str) -> Transfer | None:
        if transfer_id not in self._transfers:
            if self._memory is None:
                self._transfers[transfer_id] = self._ledger.get_transfer(transfer_id)
            else:
                check_transfer_id(transfer_id)
                found = self._memory.get(Transfer.create_id(transfer_id), self._load)
                self._transfers[transfer_id] = found if isinstance(found, Transfer) else None
                self._versions[Transfer.create_id(transfer_id)] = getattr(found, "version", None)
        return self._transfers[transfer_id]

    def forget(self) -> None:
        """Drops from the memory what this attempt made or changed: it may hold changes the
        store does not (pending, or taken by a save that failed). What it only read stays."""
        if self._memory is not None:
            aggregates: list[Any] = [*self._accounts.values(), *self._transfers.values()]
            self._memory.forget(
                a.id for a in aggregates if a is not None and a.version != self._versions[a.id]
            )

    def _load(self, aggregate_id: UUID) -> Any:
        try:
            return self._ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def existing(self, transfer_id: str, account_id: UUID) -> Transfer | None:
        """The transfer a new command's id names, if it was recorded already."""
        if self._assume_new:
            known = self._transfers.get(transfer_id)
            # A hold still pending on the account is known without a read, and must be found:
            # the account refuses to place it twice.
            if known is not None or transfer_id not in self.account(account_id).holds:
                return known
        return self.transfer(transfer_id)

    def add(self, transfer: Transfer) -> None:
        require(self._transfers.get(transfer.transfer_id) is None, "a transfer id is new")
        self._transfers[transfer.transfer_id] = transfer
        self._versions[transfer.id] = None
        if self._memory is not None:
            self._memory.put(transfer.id, transfer)

    def finished_transfer_ids(self) -> list[UUID]:
        """The transfers read or made here that no command changes again."""
        return [t.id for t in self._transfers.values() if t is not None and t.finished]

    def changed(self) -> list[Any]:
        aggregates: list[Any] = [*self._accounts.values(), *self._transfers.values()]
        return [a for a in aggregates if a is not None and a.pending_events]


def _apply(work: _Work, command: Command, at: datetime) -> Receipt:
    match command:
        case TopUp() | Debit() | PlaceHold():
            return _record_new(work, command, at)
        case PostHold() | VoidHold() | ExpireHold():
            return _resolve_hold(work, command, at)


def _record_new(work: _Work, command: TopUp | Debit | PlaceHold, at: datetime) -> Receipt:
    transfer_id, kind, request = describe(command)
    check_transfer_id(transfer_id)
    digest = fingerprint(**request)
    # The account before the transfer: the two reads are not one snapshot, and another process
    # saves them together, so an account read first is never newer than the transfer read after
    # it. The other way round, a twin of this command committed between the reads leaves the
    # transfer unseen beside an account that holds it, and placing the hold again would break
    # the account's invariant (a 500) instead of answering a repeat.
    account = work.account(command.account_id)
    existing = work.existing(transfer_id, command.account_id)
    if existing is not None:
        if existing.fingerprint != digest:
            raise TransferConflict(transfer_id)
        return _receipt(existing, replayed=True)
    _expire_due_holds(work, account, at)
    match command:
        case TopUp():
            account.top_up(
                transfer_id=transfer_id,
                amount_vnd=command.amount_vnd,
                payment_reference=command.payment_reference,
                at=at,
            )
        case Debit():
            account.debit(
                transfer_id=transfer_id,
                amount_vnd=command.amount_vnd,
                description=command.description,
                at=at,
            )
        case PlaceHold():
            account.place_hold(
                hold_id=transfer_id,
                amount_vnd=command.amount_vnd,
                ttl_s=command.ttl_s,
                description=command.description,
                at=at,
            )
    transfer = Transfer.record(
        transfer_id=transfer_id,
        account_id=command.account_id,
        kind=kind,
        amount_vnd=command.amount_vnd,
        fingerprint=digest,
        at=at,
    )
    work.add(transfer)
    return _receipt(transfer, replayed=False)


def _resolve_hold(work: _Work, command: PostHold | VoidHold | ExpireHold, at: datetime) -> Receipt:
    account = work.account(command.account_id)
    hold = _hold(work, command.account_id, command.hold_id)
    if hold.outcome is not HoldOutcome.PENDING:
        # A caller whose answer was lost (a gate that timed out) retries with the same request:
        # like a repeated transfer it is told what its first attempt did, so it can tell its
        # own post from someone else's void. Any other request on an ended hold is refused.
        if _repeats(command, hold):
            return _receipt(hold, replayed=True)
        raise HoldAlreadyResolved(hold.transfer_id, str(hold.outcome))
    account.check_not_closed()
    if not isinstance(command, ExpireHold):
        _expire_due_holds(work, account, at)
        if hold.outcome is not HoldOutcome.PENDING:
            raise HoldAlreadyResolved(hold.transfer_id, str(hold.outcome))
    match command:
        case PostHold():
            amount_vnd = command.amount_vnd
            if amount_vnd is None:
                amount_vnd = account.held_vnd(command.hold_id)
            account.post_hold(hold_id=command.hold_id, amount_vnd=amount_vnd, at=at)
            hold.resolve(outcome=HoldOutcome.POSTED, amount_vnd=amount_vnd, at=at)
        case VoidHold():
            account.void_hold(hold_id=command.hold_id, at=at)
            hold.resolve(outcome=HoldOutcome.VOIDED, amount_vnd=0, at=at)
        case ExpireHold():
            account.expire_hold(hold_id=command.hold_id, at=at)
            hold.resolve(outcome=HoldOutcome.EXPIRED, amount_vnd=0, at=at)
    return _receipt(hold, replayed=False)


def _hold(work: _Work, account_id: UUID, hold_id: str) -> Transfer:
    hold = work.transfer(hold_id)
    if hold is None or hold.kind is not TransferKind.HOLD or hold.account_id != account_id:
        raise HoldNotFound(hold_id)
    return hold


def _repeats(command: PostHold | VoidHold | ExpireHold, hold: Transfer) -> bool:
    """Whether `command` asks for exactly what ended `hold`: a post of the amount posted (no
    amount means all of the hold), or a void of a voided hold. An expiry is the ledger's own
    act, never a caller's retry, so expiring an ended hold stays a refusal (the sweeper counts
    it so)."""
    match command:
        case PostHold():
            asked_vnd = hold.amount_vnd if command.amount_vnd is None else command.amount_vnd
            return hold.outcome is HoldOutcome.POSTED and hold.posted_vnd == asked_vnd
        case VoidHold():
            return hold.outcome is HoldOutcome.VOIDED
        case ExpireHold():
            return False


def _expire_due_holds(work: _Work, account: TransportAccount, at: datetime) -> None:
    """Releases holds past their expiry before the account is used, so money tied up by an
    abandoned ride or session is available again without waiting for the sweeper."""
    for hold_id in account.due_holds(at):
        account.expire_hold(hold_id=hold_id, at=at)
        hold = work.transfer(hold_id)
        if hold is None:
            raise InvariantViolated("every pending hold has its transfer record")
        hold.resolve(outcome=HoldOutcome.EXPIRED, amount_vnd=0, at=at)


def _receipt(transfer: Transfer, *, replayed: bool) -> Receipt:
    amount_vnd = transfer.amount_vnd
    if transfer.outcome is HoldOutcome.POSTED:
        amount_vnd = transfer.posted_vnd
    return Receipt(
        transfer_id=transfer.transfer_id,
        account_id=transfer.account_id,
        kind=transfer.kind,
        amount_vnd=amount_vnd,
        outcome=transfer.outcome,
        replayed=replayed,
    )
