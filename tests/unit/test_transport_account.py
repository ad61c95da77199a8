"""The transport account's rules, exercised on the aggregate itself with explicit times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ticketing.accounts.domain import limits
from ticketing.accounts.domain.account import AccountStatus, TransportAccount
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
    LedgerError,
    PostExceedsHold,
    TooManyPendingHolds,
    UnknownRiderCategory,
)
from ticketing.shared.domain.rider import RiderCategory

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TTL_S = 3600
FUNDS_VND = 100_000


def opened(overdraft_vnd: int = 0) -> TransportAccount:
    return TransportAccount.open(
        rider_category=0, display_name="Nguyen Van An", overdraft_vnd=overdraft_vnd, at=T0
    )


def funded(amount_vnd: int = FUNDS_VND, overdraft_vnd: int = 0) -> TransportAccount:
    account = opened(overdraft_vnd)
    account.top_up(transfer_id="top-up:p0", amount_vnd=amount_vnd, payment_reference="p0", at=T0)
    return account


def with_hold(amount_vnd: int = 15_000, hold_id: str = "h1") -> TransportAccount:
    account = funded()
    account.place_hold(hold_id=hold_id, amount_vnd=amount_vnd, ttl_s=TTL_S, description="", at=T0)
    return account


def balances(account: TransportAccount) -> tuple[int, int, int]:
    return account.posted_vnd, account.pending_vnd, account.available_vnd


# Opening


@pytest.mark.parametrize("category", list(range(7)))
def test_opens_with_every_known_rider_category(category: int) -> None:
    account = TransportAccount.open(
        rider_category=category, display_name="", overdraft_vnd=0, at=T0
    )
    assert account.rider_category is RiderCategory(category)
    assert account.status is AccountStatus.OPEN
    assert balances(account) == (0, 0, 0)


@pytest.mark.parametrize("category", [7, -1])
def test_refuses_unknown_rider_category(category: int) -> None:
    with pytest.raises(UnknownRiderCategory):
        TransportAccount.open(rider_category=category, display_name="", overdraft_vnd=0, at=T0)


@pytest.mark.parametrize("overdraft_vnd", [0, limits.OVERDRAFT_MAX_VND])
def test_accepts_overdraft_at_its_bounds(overdraft_vnd: int) -> None:
    assert opened(overdraft_vnd).overdraft_vnd == overdraft_vnd


@pytest.mark.parametrize("overdraft_vnd", [-1, limits.OVERDRAFT_MAX_VND + 1, 1.5, True])
def test_refuses_overdraft_out_of_range(overdraft_vnd: Any) -> None:
    with pytest.raises(AmountOutOfRange):
        opened(overdraft_vnd)


def test_accepts_display_name_of_the_maximum_length() -> None:
    name = "A" * limits.DISPLAY_NAME_MAX_CHARS
    account = TransportAccount.open(rider_category=0, display_name=name, overdraft_vnd=0, at=T0)
    assert account.display_name == name


@pytest.mark.parametrize(
    "name", ["A" * (limits.DISPLAY_NAME_MAX_CHARS + 1), "two\nlines", "nul\x00", "tab\t"]
)
def test_refuses_over_long_or_non_printable_display_name(name: str) -> None:
    with pytest.raises(InvalidText):
        TransportAccount.open(rider_category=0, display_name=name, overdraft_vnd=0, at=T0)


def test_opening_records_one_opened_event_with_its_fields() -> None:
    events = opened(overdraft_vnd=5_000).collect_events()
    assert len(events) == 1
    assert isinstance(events[0], TransportAccount.Opened)
    assert events[0].overdraft_vnd == 5_000
    assert events[0].at == T0


# Amounts

BAD_TOP_UP_AMOUNTS = [0, -1, limits.TOP_UP_MAX_VND + 1, 1.5, True]
BAD_TRANSFER_AMOUNTS = [0, -1, limits.TRANSFER_MAX_VND + 1, 1.5, True]


@pytest.mark.parametrize("amount_vnd", BAD_TOP_UP_AMOUNTS)
def test_top_up_refuses_amount_out_of_range(amount_vnd: Any) -> None:
    account = opened()
    with pytest.raises(AmountOutOfRange):
        account.top_up(transfer_id="t", amount_vnd=amount_vnd, payment_reference="p", at=T0)
    assert account.posted_vnd == 0


@pytest.mark.parametrize("amount_vnd", [1, limits.TOP_UP_MAX_VND])
def test_top_up_accepts_amount_at_its_bounds(amount_vnd: int) -> None:
    account = opened()
    account.top_up(transfer_id="t", amount_vnd=amount_vnd, payment_reference="p", at=T0)
    assert account.posted_vnd == amount_vnd


@pytest.mark.parametrize("amount_vnd", BAD_TRANSFER_AMOUNTS)
def test_debit_refuses_amount_out_of_range(amount_vnd: Any) -> None:
    account = funded(limits.TOP_UP_MAX_VND)
    with pytest.raises(AmountOutOfRange):
        account.debit(transfer_id="d", amount_vnd=amount_vnd, description="", at=T0)
    assert account.posted_vnd == limits.TOP_UP_MAX_VND


@pytest.mark.parametrize("amount_vnd", [1, limits.TRANSFER_MAX_VND])
def test_debit_accepts_amount_at_its_bounds(amount_vnd: int) -> None:
    account = funded(limits.TOP_UP_MAX_VND)
    account.debit(transfer_id="d", amount_vnd=amount_vnd, description="", at=T0)
    assert account.posted_vnd == limits.TOP_UP_MAX_VND - amount_vnd


@pytest.mark.parametrize("amount_vnd", BAD_TRANSFER_AMOUNTS)
def test_hold_refuses_amount_out_of_range(amount_vnd: Any) -> None:
    account = funded(limits.TOP_UP_MAX_VND)
    with pytest.raises(AmountOutOfRange):
        account.place_hold(hold_id="h", amount_vnd=amount_vnd, ttl_s=TTL_S, description="", at=T0)
    assert account.pending_vnd == 0


@pytest.mark.parametrize("amount_vnd", [1, limits.TRANSFER_MAX_VND])
def test_hold_accepts_amount_at_its_bounds(amount_vnd: int) -> None:
    account = funded(limits.TOP_UP_MAX_VND)
    account.place_hold(hold_id="h", amount_vnd=amount_vnd, ttl_s=TTL_S, description="", at=T0)
    assert account.pending_vnd == amount_vnd


# Top-up


def test_top_up_raises_posted_and_available() -> None:
    account = funded(50_000)
    assert balances(account) == (50_000, 0, 50_000)


def test_top_up_up_to_the_balance_limit_is_accepted_and_one_more_dong_refused() -> None:
    account = opened()
    for index in range(limits.BALANCE_MAX_VND // limits.TOP_UP_MAX_VND):
        account.top_up(
            transfer_id=f"t{index}", amount_vnd=limits.TOP_UP_MAX_VND, payment_reference="p", at=T0
        )
    assert account.posted_vnd == limits.BALANCE_MAX_VND
    with pytest.raises(BalanceLimitExceeded):
        account.top_up(transfer_id="t-last", amount_vnd=1, payment_reference="p", at=T0)
    assert account.posted_vnd == limits.BALANCE_MAX_VND


def test_top_up_refuses_non_printable_payment_reference() -> None:
    with pytest.raises(InvalidText):
        opened().top_up(transfer_id="t", amount_vnd=1, payment_reference="p\n", at=T0)


# Debit


def test_debit_lowers_posted_and_available() -> None:
    account = funded(50_000)
    account.debit(transfer_id="d", amount_vnd=7_000, description="bus 32", at=T0)
    assert balances(account) == (43_000, 0, 43_000)


def test_debit_beyond_available_is_refused_and_changes_nothing() -> None:
    account = funded(5_000)
    account.collect_events()
    with pytest.raises(InsufficientFunds):
        account.debit(transfer_id="d", amount_vnd=5_001, description="", at=T0)
    assert balances(account) == (5_000, 0, 5_000)
    assert account.collect_events() == []


def test_debit_may_use_the_overdraft_to_exactly_its_limit() -> None:
    account = funded(5_000, overdraft_vnd=10_000)
    account.debit(transfer_id="d1", amount_vnd=15_000, description="", at=T0)
    assert account.available_vnd == -10_000
    with pytest.raises(InsufficientFunds):
        account.debit(transfer_id="d2", amount_vnd=1, description="", at=T0)
    assert account.available_vnd == -10_000


def test_debit_one_dong_past_the_overdraft_is_refused() -> None:
    account = funded(5_000, overdraft_vnd=10_000)
    with pytest.raises(InsufficientFunds):
        account.debit(transfer_id="d", amount_vnd=15_001, description="", at=T0)


# Holds


def test_placing_a_hold_moves_money_from_available_to_pending_not_posted() -> None:
    account = with_hold(15_000)
    assert balances(account) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)
    assert account.holds["h1"] == {
        "amount_vnd": 15_000,
        "expires_at": T0 + timedelta(seconds=TTL_S),
    }


def test_hold_above_available_is_refused() -> None:
    account = with_hold(FUNDS_VND - 1_000)
    with pytest.raises(InsufficientFunds):
        account.place_hold(hold_id="h2", amount_vnd=1_001, ttl_s=TTL_S, description="", at=T0)
    assert account.pending_vnd == FUNDS_VND - 1_000


@pytest.mark.parametrize("ttl_s", [limits.HOLD_TTL_MIN_S - 1, limits.HOLD_TTL_MAX_S + 1, 0, -60])
def test_hold_refuses_ttl_out_of_range(ttl_s: int) -> None:
    with pytest.raises(HoldTtlOutOfRange):
        funded().place_hold(hold_id="h", amount_vnd=1, ttl_s=ttl_s, description="", at=T0)


@pytest.mark.parametrize("ttl_s", [limits.HOLD_TTL_MIN_S, limits.HOLD_TTL_MAX_S])
def test_hold_accepts_ttl_at_its_bounds(ttl_s: int) -> None:
    account = funded()
    account.place_hold(hold_id="h", amount_vnd=1, ttl_s=ttl_s, description="", at=T0)
    assert account.holds["h"]["expires_at"] == T0 + timedelta(seconds=ttl_s)


def test_refuses_a_hold_beyond_the_pending_limit() -> None:
    account = funded()
    for index in range(limits.HOLDS_PENDING_MAX):
        account.place_hold(hold_id=f"h{index}", amount_vnd=1, ttl_s=TTL_S, description="", at=T0)
    with pytest.raises(TooManyPendingHolds):
        account.place_hold(hold_id="one-more", amount_vnd=1, ttl_s=TTL_S, description="", at=T0)
    assert len(account.holds) == limits.HOLDS_PENDING_MAX


def test_posting_a_hold_in_full_moves_it_to_posted() -> None:
    account = with_hold(15_000)
    account.post_hold(hold_id="h1", amount_vnd=15_000, at=T0)
    assert balances(account) == (FUNDS_VND - 15_000, 0, FUNDS_VND - 15_000)
    assert account.holds == {}


def test_posting_part_of_a_hold_releases_the_rest() -> None:
    account = with_hold(15_000)
    account.post_hold(hold_id="h1", amount_vnd=11_000, at=T0)
    assert balances(account) == (FUNDS_VND - 11_000, 0, FUNDS_VND - 11_000)


def test_posting_nothing_of_a_hold_releases_all_of_it() -> None:
    account = with_hold(15_000)
    account.post_hold(hold_id="h1", amount_vnd=0, at=T0)
    assert balances(account) == (FUNDS_VND, 0, FUNDS_VND)


def test_posting_more_than_held_is_refused() -> None:
    account = with_hold(15_000)
    with pytest.raises(PostExceedsHold):
        account.post_hold(hold_id="h1", amount_vnd=15_001, at=T0)
    assert balances(account) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)


def test_posting_a_negative_amount_is_refused() -> None:
    account = with_hold(15_000)
    with pytest.raises(AmountOutOfRange):
        account.post_hold(hold_id="h1", amount_vnd=-1, at=T0)
    assert balances(account) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)


@pytest.mark.parametrize("amount_vnd", [1.5, True])
def test_posting_a_non_integer_amount_is_refused(amount_vnd: Any) -> None:
    # Every other money command refuses floats and bools (check_amount); posting must too,
    # or a float lands in the event and the balance stops being whole dong.
    account = with_hold(15_000)
    with pytest.raises(LedgerError):
        account.post_hold(hold_id="h1", amount_vnd=amount_vnd, at=T0)
    assert balances(account) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)


@pytest.mark.parametrize(
    "resolve",
    [
        lambda a: a.post_hold(hold_id="h1", amount_vnd=1, at=T0),
        lambda a: a.void_hold(hold_id="h1", at=T0),
        lambda a: a.expire_hold(hold_id="h1", at=T0 + timedelta(days=1)),
    ],
    ids=["post", "void", "expire"],
)
def test_a_resolved_hold_is_no_longer_pending(resolve: Callable[[TransportAccount], None]) -> None:
    account = with_hold()
    account.void_hold(hold_id="h1", at=T0)
    with pytest.raises(HoldNotPending):
        resolve(account)


@pytest.mark.parametrize(
    "resolve",
    [
        lambda a: a.post_hold(hold_id="nope", amount_vnd=0, at=T0),
        lambda a: a.void_hold(hold_id="nope", at=T0),
        lambda a: a.expire_hold(hold_id="nope", at=T0),
    ],
    ids=["post", "void", "expire"],
)
def test_resolving_an_unknown_hold_is_refused(resolve: Callable[[TransportAccount], None]) -> None:
    with pytest.raises(HoldNotPending):
        resolve(with_hold())


def test_voiding_a_hold_releases_it_without_posting() -> None:
    account = with_hold(15_000)
    account.void_hold(hold_id="h1", at=T0)
    assert balances(account) == (FUNDS_VND, 0, FUNDS_VND)


def test_expiring_a_hold_before_its_expiry_is_refused() -> None:
    account = with_hold(15_000)
    expires_at = T0 + timedelta(seconds=TTL_S)
    with pytest.raises(HoldNotYetExpired):
        account.expire_hold(hold_id="h1", at=expires_at - timedelta(microseconds=1))
    assert account.pending_vnd == 15_000


def test_expiring_a_hold_at_its_expiry_releases_it() -> None:
    account = with_hold(15_000)
    account.expire_hold(hold_id="h1", at=T0 + timedelta(seconds=TTL_S))
    assert balances(account) == (FUNDS_VND, 0, FUNDS_VND)


def test_due_holds_lists_only_expired_holds_oldest_first() -> None:
    account = funded()
    for hold_id, ttl_s in [("late", 600), ("early", 120), ("live", 7_200)]:
        account.place_hold(hold_id=hold_id, amount_vnd=1, ttl_s=ttl_s, description="", at=T0)
    assert account.due_holds(T0 + timedelta(seconds=600)) == ["early", "late"]
    assert account.due_holds(T0) == []


# Block and unblock


def blocked_with_hold() -> TransportAccount:
    account = with_hold(15_000)
    account.block(reason="card reported lost", at=T0)
    return account


def test_blocked_account_refuses_debit() -> None:
    account = blocked_with_hold()
    with pytest.raises(AccountBlocked):
        account.debit(transfer_id="d", amount_vnd=1, description="", at=T0)
    assert account.posted_vnd == FUNDS_VND


def test_blocked_account_refuses_new_hold() -> None:
    account = blocked_with_hold()
    with pytest.raises(AccountBlocked):
        account.place_hold(hold_id="h2", amount_vnd=1, ttl_s=TTL_S, description="", at=T0)
    assert account.pending_vnd == 15_000


def test_blocked_account_accepts_top_up() -> None:
    account = blocked_with_hold()
    account.top_up(transfer_id="t", amount_vnd=1_000, payment_reference="p", at=T0)
    assert account.posted_vnd == FUNDS_VND + 1_000


def test_blocked_account_posts_a_hold_placed_before_the_block() -> None:
    account = blocked_with_hold()
    account.post_hold(hold_id="h1", amount_vnd=9_000, at=T0)
    assert balances(account) == (FUNDS_VND - 9_000, 0, FUNDS_VND - 9_000)


def test_blocked_account_voids_a_hold_placed_before_the_block() -> None:
    account = blocked_with_hold()
    account.void_hold(hold_id="h1", at=T0)
    assert account.pending_vnd == 0


def test_blocking_twice_is_refused() -> None:
    account = blocked_with_hold()
    with pytest.raises(AccountAlreadyBlocked):
        account.block(reason="again", at=T0)


def test_block_refuses_non_printable_reason() -> None:
    with pytest.raises(InvalidText):
        funded().block(reason="lost\n", at=T0)


def test_unblocking_an_open_account_is_refused() -> None:
    with pytest.raises(AccountNotBlocked):
        funded().unblock(at=T0)


def test_unblocked_account_debits_again() -> None:
    account = blocked_with_hold()
    account.unblock(at=T0)
    account.debit(transfer_id="d", amount_vnd=1_000, description="", at=T0)
    assert account.status is AccountStatus.OPEN
    assert account.posted_vnd == FUNDS_VND - 1_000


# Close


def test_close_with_pending_holds_is_refused() -> None:
    account = with_hold()
    with pytest.raises(AccountHasPendingHolds):
        account.close(at=T0)
    assert account.status is AccountStatus.OPEN


def test_close_in_debt_is_refused() -> None:
    account = opened(overdraft_vnd=10_000)
    account.debit(transfer_id="d", amount_vnd=1, description="", at=T0)
    with pytest.raises(AccountInDebt):
        account.close(at=T0)
    assert account.status is AccountStatus.OPEN


@pytest.mark.parametrize("balance_vnd", [0, 42_000])
def test_close_refunds_the_whole_balance(balance_vnd: int) -> None:
    account = opened()
    if balance_vnd:
        account.top_up(transfer_id="t", amount_vnd=balance_vnd, payment_reference="p", at=T0)
    account.collect_events()
    account.close(at=T0)
    (closed,) = account.collect_events()
    assert isinstance(closed, TransportAccount.Closed)
    assert closed.refund_vnd == balance_vnd
    assert account.status is AccountStatus.CLOSED
    assert account.posted_vnd == 0


@pytest.mark.parametrize(
    "command",
    [
        lambda a: a.top_up(transfer_id="t", amount_vnd=1, payment_reference="p", at=T0),
        lambda a: a.debit(transfer_id="d", amount_vnd=1, description="", at=T0),
        lambda a: a.place_hold(hold_id="h", amount_vnd=1, ttl_s=TTL_S, description="", at=T0),
        lambda a: a.post_hold(hold_id="h", amount_vnd=1, at=T0),
        lambda a: a.void_hold(hold_id="h", at=T0),
        lambda a: a.expire_hold(hold_id="h", at=T0),
        lambda a: a.block(reason="r", at=T0),
        lambda a: a.unblock(at=T0),
        lambda a: a.close(at=T0),
    ],
    ids=["top_up", "debit", "place_hold", "post", "void", "expire", "block", "unblock", "close"],
)
def test_closed_account_refuses_every_command(command: Callable[[TransportAccount], None]) -> None:
    account = funded()
    account.close(at=T0)
    with pytest.raises(AccountClosed):
        command(account)
    assert account.posted_vnd == 0


# Error codes

ERROR_CLASSES = LedgerError.__subclasses__()


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_has_its_own_non_empty_code(error_class: type[LedgerError]) -> None:
    assert error_class.code
    assert error_class.code != LedgerError.code
    assert [cls.code for cls in ERROR_CLASSES].count(error_class.code) == 1
