"""The transport account: one per rider, paying for rides and parking from every medium.

Balances follow TigerBeetle's two-phase model: `posted_vnd` is settled money, `pending_vnd` the
sum of open holds, and `available_vnd = posted_vnd - pending_vnd` never falls below
`-overdraft_vnd`. Transfer ids are checked for repeats by the application (see `transfer.py`);
this aggregate guards the money.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.accounts.domain import limits
from ticketing.accounts.domain.errors import (
    AccountAlreadyBlocked,
    AccountBlocked,
    AccountClosed,
    AccountHasPendingHolds,
    AccountInDebt,
    AccountNotBlocked,
    AmountOutOfRange,
    BalanceLimitExceeded,
    HoldNotPending,
    HoldNotYetExpired,
    HoldTtlOutOfRange,
    InsufficientFunds,
    InvalidText,
    PostExceedsHold,
    TooManyPendingHolds,
    UnknownRiderCategory,
)
from ticketing.shared.domain.invariants import require
from ticketing.shared.domain.rider import RiderCategory

TOPIC_PREFIX = "ticketing.TransportAccount"


class AccountStatus(StrEnum):
    OPEN = "open"
    BLOCKED = "blocked"
    CLOSED = "closed"


class TransportAccount(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Opened(Created):
        TOPIC = f"{TOPIC_PREFIX}.Opened"
        rider_category: int
        display_name: str
        overdraft_vnd: int
        at: datetime

    class ToppedUp(Event):
        TOPIC = f"{TOPIC_PREFIX}.ToppedUp"
        transfer_id: str
        amount_vnd: int
        payment_reference: str
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.posted_vnd += self.amount_vnd

    class Debited(Event):
        TOPIC = f"{TOPIC_PREFIX}.Debited"
        transfer_id: str
        amount_vnd: int
        description: str
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.posted_vnd -= self.amount_vnd

    class HoldPlaced(Event):
        TOPIC = f"{TOPIC_PREFIX}.HoldPlaced"
        hold_id: str
        amount_vnd: int
        expires_at: datetime
        description: str
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.holds[self.hold_id] = {
                "amount_vnd": self.amount_vnd,
                "expires_at": self.expires_at,
            }
            aggregate.pending_vnd += self.amount_vnd

    class HoldPosted(Event):
        TOPIC = f"{TOPIC_PREFIX}.HoldPosted"
        hold_id: str
        held_vnd: int
        amount_vnd: int
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate._release(self.hold_id, self.held_vnd)
            aggregate.posted_vnd -= self.amount_vnd

    class HoldVoided(Event):
        TOPIC = f"{TOPIC_PREFIX}.HoldVoided"
        hold_id: str
        held_vnd: int
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate._release(self.hold_id, self.held_vnd)

    class HoldExpired(Event):
        TOPIC = f"{TOPIC_PREFIX}.HoldExpired"
        hold_id: str
        held_vnd: int
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate._release(self.hold_id, self.held_vnd)

    class Blocked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Blocked"
        reason: str
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.status_code = AccountStatus.BLOCKED.value

    class Unblocked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Unblocked"
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.status_code = AccountStatus.OPEN.value

    class Closed(Event):
        TOPIC = f"{TOPIC_PREFIX}.Closed"
        refund_vnd: int
        at: datetime

        def apply(self, aggregate: TransportAccount) -> None:
            aggregate.posted_vnd -= self.refund_vnd
            aggregate.status_code = AccountStatus.CLOSED.value

    class Snapshot(BaseSnapshot):
        TOPIC = f"{TOPIC_PREFIX}.Snapshot"

    @event(Opened)
    def __init__(
        self, rider_category: int, display_name: str, overdraft_vnd: int, at: datetime
    ) -> None:
        # State holds only JSON-native values: a snapshot stores an enum as its bare value
        # and restores it so, so enums are rebuilt by the properties below.
        self.rider_category_code = rider_category
        self.display_name = display_name
        self.overdraft_vnd = overdraft_vnd
        self.opened_at = at
        self.status_code = AccountStatus.OPEN.value
        self.posted_vnd = 0
        self.pending_vnd = 0
        # hold id -> {"amount_vnd": int, "expires_at": datetime}; only holds still pending.
        self.holds: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(
        cls,
        *,
        rider_category: int,
        display_name: str,
        overdraft_vnd: int,
        at: datetime,
    ) -> TransportAccount:
        check_rider_category(rider_category)
        check_text("display_name", display_name, limits.DISPLAY_NAME_MAX_CHARS)
        check_overdraft(overdraft_vnd)
        check_aware(at)
        return cls(
            rider_category=int(rider_category),
            display_name=display_name,
            overdraft_vnd=overdraft_vnd,
            at=at,
        )

    # Queries

    @property
    def rider_category(self) -> RiderCategory:
        return RiderCategory(self.rider_category_code)

    @property
    def status(self) -> AccountStatus:
        return AccountStatus(self.status_code)

    @property
    def available_vnd(self) -> int:
        return self.posted_vnd - self.pending_vnd

    def due_holds(self, at: datetime) -> list[str]:
        """Pending holds whose expiry has passed at `at`, oldest first."""
        due = [(h["expires_at"], hold_id) for hold_id, h in self.holds.items()]
        return [hold_id for expires_at, hold_id in sorted(due) if expires_at <= at]

    def held_vnd(self, hold_id: str) -> int:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise HoldNotPending(hold_id)
        amount: int = hold["amount_vnd"]
        return amount

    # Commands

    def top_up(
        self, *, transfer_id: str, amount_vnd: int, payment_reference: str, at: datetime
    ) -> None:
        self.check_not_closed()
        check_amount(amount_vnd, limits.TOP_UP_MAX_VND)
        check_text("payment_reference", payment_reference, limits.PAYMENT_REFERENCE_MAX_CHARS)
        if self.posted_vnd + amount_vnd > limits.BALANCE_MAX_VND:
            raise BalanceLimitExceeded(self.posted_vnd, amount_vnd)
        self.trigger_event(
            self.ToppedUp,
            transfer_id=transfer_id,
            amount_vnd=amount_vnd,
            payment_reference=payment_reference,
            at=at,
        )

    def debit(self, *, transfer_id: str, amount_vnd: int, description: str, at: datetime) -> None:
        self.check_open()
        check_amount(amount_vnd, limits.TRANSFER_MAX_VND)
        check_text("description", description, limits.DESCRIPTION_MAX_CHARS)
        self.check_has_available(amount_vnd)
        self.trigger_event(
            self.Debited,
            transfer_id=transfer_id,
            amount_vnd=amount_vnd,
            description=description,
            at=at,
        )

    def place_hold(
        self, *, hold_id: str, amount_vnd: int, ttl_s: int, description: str, at: datetime
    ) -> None:
        self.check_open()
        check_amount(amount_vnd, limits.TRANSFER_MAX_VND)
        check_text("description", description, limits.DESCRIPTION_MAX_CHARS)
        if type(ttl_s) is not int or not limits.HOLD_TTL_MIN_S <= ttl_s <= limits.HOLD_TTL_MAX_S:
            raise HoldTtlOutOfRange(ttl_s)
        require(hold_id not in self.holds, "a hold id is checked for repeats before it is placed")
        if len(self.holds) >= limits.HOLDS_PENDING_MAX:
            raise TooManyPendingHolds(len(self.holds))
        self.check_has_available(amount_vnd)
        self.trigger_event(
            self.HoldPlaced,
            hold_id=hold_id,
            amount_vnd=amount_vnd,
            expires_at=at + timedelta(seconds=ttl_s),
            description=description,
            at=at,
        )

    def post_hold(self, *, hold_id: str, amount_vnd: int, at: datetime) -> None:
        """Posts `amount_vnd` of a pending hold and releases the rest. Allowed while blocked:
        a ride or a parking session that began before the block still ends and is paid."""
        self.check_not_closed()
        held_vnd = self.held_vnd(hold_id)
        if type(amount_vnd) is not int or amount_vnd < 0:
            raise AmountOutOfRange(amount_vnd, held_vnd)
        if amount_vnd > held_vnd:
            raise PostExceedsHold(hold_id, amount_vnd, held_vnd)
        self.trigger_event(
            self.HoldPosted, hold_id=hold_id, held_vnd=held_vnd, amount_vnd=amount_vnd, at=at
        )

    def void_hold(self, *, hold_id: str, at: datetime) -> None:
        self.check_not_closed()
        self.trigger_event(self.HoldVoided, hold_id=hold_id, held_vnd=self.held_vnd(hold_id), at=at)

    def expire_hold(self, *, hold_id: str, at: datetime) -> None:
        self.check_not_closed()
        held_vnd = self.held_vnd(hold_id)
        if self.holds[hold_id]["expires_at"] > at:
            raise HoldNotYetExpired(hold_id)
        self.trigger_event(self.HoldExpired, hold_id=hold_id, held_vnd=held_vnd, at=at)

    def _release(self, hold_id: str, held_vnd: int) -> None:
        """A pending hold gone (posted, voided or expired): what its events apply."""
        hold = self.holds.pop(hold_id)
        require(hold["amount_vnd"] == held_vnd, "a hold releases exactly what it held")
        self.pending_vnd -= held_vnd

    def block(self, *, reason: str, at: datetime) -> None:
        self.check_not_closed()
        check_text("reason", reason, limits.BLOCK_REASON_MAX_CHARS)
        if self.status is AccountStatus.BLOCKED:
            raise AccountAlreadyBlocked(self.id)
        self.trigger_event(self.Blocked, reason=reason, at=at)

    def unblock(self, *, at: datetime) -> None:
        self.check_not_closed()
        if self.status is not AccountStatus.BLOCKED:
            raise AccountNotBlocked(self.id)
        self.trigger_event(self.Unblocked, at=at)

    def close(self, *, at: datetime) -> None:
        """Closes the account; a positive balance is recorded as a refund owed to the rider."""
        self.check_not_closed()
        if self.holds:
            raise AccountHasPendingHolds(self.id, len(self.holds))
        if self.posted_vnd < 0:
            raise AccountInDebt(self.id, self.posted_vnd)
        self.trigger_event(self.Closed, refund_vnd=self.posted_vnd, at=at)

    # Invariants

    def check_not_closed(self) -> None:
        if self.status is AccountStatus.CLOSED:
            raise AccountClosed(self.id)

    def check_open(self) -> None:
        self.check_not_closed()
        if self.status is AccountStatus.BLOCKED:
            raise AccountBlocked(self.id)

    def check_has_available(self, amount_vnd: int) -> None:
        if self.available_vnd - amount_vnd < -self.overdraft_vnd:
            raise InsufficientFunds(self.available_vnd, amount_vnd, self.overdraft_vnd)


# The library registers the explicit topics of event classes as they are defined, but not of
# snapshot classes; without this, only a process that took a snapshot itself could read one.
register_topic(TransportAccount.Snapshot.TOPIC, TransportAccount.Snapshot)


def check_amount(amount_vnd: int, max_vnd: int) -> None:
    # bool is an int in Python; an amount of True is a bug at the edge, not one dong.
    if type(amount_vnd) is not int or not 0 < amount_vnd <= max_vnd:
        raise AmountOutOfRange(amount_vnd, max_vnd)


def check_overdraft(overdraft_vnd: int) -> None:
    if type(overdraft_vnd) is not int or not 0 <= overdraft_vnd <= limits.OVERDRAFT_MAX_VND:
        raise AmountOutOfRange(overdraft_vnd, limits.OVERDRAFT_MAX_VND)


def check_rider_category(rider_category: int) -> None:
    if type(rider_category) is not int and not isinstance(rider_category, RiderCategory):
        raise UnknownRiderCategory(rider_category)
    if rider_category not in set(RiderCategory):
        raise UnknownRiderCategory(rider_category)


def check_text(field: str, value: str, max_chars: int) -> None:
    if len(value) > max_chars or not value.isprintable():
        raise InvalidText(field, max_chars)


def check_aware(at: datetime) -> None:
    require(at.tzinfo is not None, "ledger times are timezone-aware")
