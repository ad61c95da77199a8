"""The ledger's use cases on the in-memory event store, with time moved by hand."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from tests.doubles import Clock
from ticketing.accounts.application.ledger import (
    ACCOUNT_SNAPSHOT_INTERVAL,
    LEDGER_BATCH_MAX,
    Ledger,
    Receipt,
)
from ticketing.accounts.domain import limits
from ticketing.accounts.domain.account import AccountStatus, TransportAccount
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
    AccountAlreadyBlocked,
    AccountBlocked,
    AccountClosed,
    AccountHasPendingHolds,
    AccountInDebt,
    AccountNotBlocked,
    AccountNotFound,
    HoldAlreadyResolved,
    HoldNotFound,
    HoldNotYetExpired,
    HoldTtlOutOfRange,
    InsufficientFunds,
    InvalidTransferId,
    LedgerError,
    PostExceedsHold,
    TransferConflict,
    UnknownRiderCategory,
)
from ticketing.accounts.domain.transfer import HoldOutcome, Transfer, TransferKind
from ticketing.shared.domain.invariants import InvariantViolated
from ticketing.shared.domain.rider import RiderCategory

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
TTL_S = 3600
FUNDS_VND = 100_000


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def ledger(clock: Clock) -> Ledger:
    return Ledger(clock=clock)


@pytest.fixture
def account_id(ledger: Ledger) -> UUID:
    """An open account holding FUNDS_VND."""
    account_id = ledger.open_account(rider_category=0, display_name="Tran Thi Binh").id
    ledger.execute(TopUp(account_id, FUNDS_VND, "p0"))
    return account_id


def balances(ledger: Ledger, account_id: UUID) -> tuple[int, int, int]:
    account = ledger.get_account(account_id)
    return account.posted_vnd, account.pending_vnd, account.available_vnd


def hold_outcome(ledger: Ledger, hold_id: str) -> HoldOutcome | None:
    transfer = ledger.get_transfer(hold_id)
    assert transfer is not None
    return transfer.outcome


def snapshot_of(account: TransportAccount) -> dict[str, object]:
    return {
        "posted_vnd": account.posted_vnd,
        "pending_vnd": account.pending_vnd,
        "available_vnd": account.available_vnd,
        "holds": account.holds,
        "status": account.status,
        "version": account.version,
    }


# Opening and finding accounts


def test_open_account_uses_the_default_overdraft(clock: Clock) -> None:
    ledger = Ledger(clock=clock, overdraft_default_vnd=20_000)
    account = ledger.get_account(ledger.open_account(rider_category=3).id)
    assert account.overdraft_vnd == 20_000
    assert account.rider_category is RiderCategory.CHILD
    assert account.opened_at == T0


def test_open_account_with_explicit_overdraft_overrides_the_default(clock: Clock) -> None:
    ledger = Ledger(clock=clock, overdraft_default_vnd=20_000)
    assert ledger.open_account(rider_category=0, overdraft_vnd=0).overdraft_vnd == 0


def test_open_account_refuses_unknown_rider_category(ledger: Ledger) -> None:
    with pytest.raises(UnknownRiderCategory):
        ledger.open_account(rider_category=7)


def test_get_account_of_an_unknown_id_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(AccountNotFound):
        ledger.get_account(uuid4())


def test_get_account_of_a_transfer_record_id_is_not_found(ledger: Ledger, account_id: UUID) -> None:
    with pytest.raises(AccountNotFound):
        ledger.get_account(Transfer.create_id("top-up:p0"))


@pytest.mark.parametrize(
    "make",
    [
        lambda a: TopUp(a, 1_000, "p1"),
        lambda a: Debit(a, "d1", 1_000),
        lambda a: PlaceHold(a, "h1", 1_000, TTL_S),
    ],
    ids=["top_up", "debit", "place_hold"],
)
def test_money_command_on_an_unknown_account_is_not_found(
    ledger: Ledger, make: Callable[[UUID], Command]
) -> None:
    with pytest.raises(AccountNotFound):
        ledger.execute(make(uuid4()))


@pytest.mark.parametrize(
    "change",
    [
        lambda ledger, a: ledger.block_account(a, reason="r"),
        lambda ledger, a: ledger.unblock_account(a),
        lambda ledger, a: ledger.close_account(a),
    ],
    ids=["block", "unblock", "close"],
)
def test_account_change_on_an_unknown_account_is_not_found(
    ledger: Ledger, change: Callable[[Ledger, UUID], object]
) -> None:
    with pytest.raises(AccountNotFound):
        change(ledger, uuid4())


# Top-up


def test_top_up_raises_posted_and_available(ledger: Ledger, account_id: UUID) -> None:
    receipt = ledger.execute(TopUp(account_id, 25_000, "vnpay-1"))
    assert receipt == Receipt(
        "top-up:vnpay-1", account_id, TransferKind.TOP_UP, 25_000, None, False
    )
    assert balances(ledger, account_id) == (FUNDS_VND + 25_000, 0, FUNDS_VND + 25_000)


def test_repeated_top_up_has_one_effect(ledger: Ledger, account_id: UUID) -> None:
    ledger.execute(TopUp(account_id, 25_000, "vnpay-1"))
    receipt = ledger.execute(TopUp(account_id, 25_000, "vnpay-1"))
    assert receipt.replayed
    assert receipt.amount_vnd == 25_000
    assert balances(ledger, account_id)[0] == FUNDS_VND + 25_000


def test_top_up_reusing_a_reference_with_another_amount_conflicts(
    ledger: Ledger, account_id: UUID
) -> None:
    ledger.execute(TopUp(account_id, 25_000, "vnpay-1"))
    with pytest.raises(TransferConflict):
        ledger.execute(TopUp(account_id, 26_000, "vnpay-1"))
    assert balances(ledger, account_id)[0] == FUNDS_VND + 25_000


def test_top_up_reusing_a_reference_on_another_account_conflicts(
    ledger: Ledger, account_id: UUID
) -> None:
    other_id = ledger.open_account(rider_category=0).id
    with pytest.raises(TransferConflict):
        ledger.execute(TopUp(other_id, FUNDS_VND, "p0"))
    assert balances(ledger, other_id)[0] == 0


def test_top_up_with_an_unusable_payment_reference_is_refused(
    ledger: Ledger, account_id: UUID
) -> None:
    with pytest.raises(InvalidTransferId):
        ledger.execute(TopUp(account_id, 1_000, "has space"))


# Debit


def test_debit_lowers_posted(ledger: Ledger, account_id: UUID) -> None:
    receipt = ledger.execute(Debit(account_id, "bus-1", 7_000, "bus 32"))
    assert receipt == Receipt("bus-1", account_id, TransferKind.DEBIT, 7_000, None, False)
    assert balances(ledger, account_id) == (FUNDS_VND - 7_000, 0, FUNDS_VND - 7_000)


def test_insufficient_funds_refuses_debit_and_stores_nothing(
    ledger: Ledger, account_id: UUID
) -> None:
    with pytest.raises(InsufficientFunds):
        ledger.execute(Debit(account_id, "big", FUNDS_VND + 1))
    assert balances(ledger, account_id) == (FUNDS_VND, 0, FUNDS_VND)
    assert ledger.get_transfer("big") is None


def test_debit_uses_the_overdraft_to_exactly_its_limit(ledger: Ledger) -> None:
    account_id = ledger.open_account(rider_category=0, overdraft_vnd=10_000).id
    ledger.execute(Debit(account_id, "d1", 10_000))
    assert balances(ledger, account_id) == (-10_000, 0, -10_000)
    with pytest.raises(InsufficientFunds):
        ledger.execute(Debit(account_id, "d2", 1))
    assert balances(ledger, account_id)[2] == -10_000


def test_repeated_debit_has_one_effect(ledger: Ledger, account_id: UUID) -> None:
    first = ledger.execute(Debit(account_id, "bus-1", 7_000))
    again = ledger.execute(Debit(account_id, "bus-1", 7_000))
    assert (first.replayed, again.replayed) == (False, True)
    assert balances(ledger, account_id)[0] == FUNDS_VND - 7_000


def test_debit_reusing_an_id_with_another_amount_conflicts(
    ledger: Ledger, account_id: UUID
) -> None:
    ledger.execute(Debit(account_id, "bus-1", 7_000))
    with pytest.raises(TransferConflict):
        ledger.execute(Debit(account_id, "bus-1", 8_000))
    assert balances(ledger, account_id)[0] == FUNDS_VND - 7_000


def test_hold_reusing_a_debit_id_conflicts(ledger: Ledger, account_id: UUID) -> None:
    ledger.execute(Debit(account_id, "ride-1", 7_000))
    with pytest.raises(TransferConflict):
        ledger.execute(PlaceHold(account_id, "ride-1", 7_000, TTL_S))
    assert balances(ledger, account_id) == (FUNDS_VND - 7_000, 0, FUNDS_VND - 7_000)


@pytest.mark.parametrize(
    "transfer_id",
    ["", "x" * (limits.TRANSFER_ID_MAX_CHARS + 1), "has space", "-leading-dash", "tab\tid"],
)
def test_invalid_transfer_id_is_refused(ledger: Ledger, account_id: UUID, transfer_id: str) -> None:
    with pytest.raises(InvalidTransferId):
        ledger.execute(Debit(account_id, transfer_id, 1_000))
    assert balances(ledger, account_id)[0] == FUNDS_VND


def test_transfer_id_with_a_trailing_newline_is_refused(ledger: Ledger, account_id: UUID) -> None:
    # The pattern ends in `$`, which re.match also lets match before a final "\n".
    with pytest.raises(InvalidTransferId):
        ledger.execute(Debit(account_id, "bus-1\n", 1_000))
    assert balances(ledger, account_id)[0] == FUNDS_VND


@pytest.mark.parametrize("transfer_id", ["x" * limits.TRANSFER_ID_MAX_CHARS, "a", "Q1.b_c:d-e"])
def test_valid_transfer_id_is_accepted(ledger: Ledger, account_id: UUID, transfer_id: str) -> None:
    assert ledger.execute(Debit(account_id, transfer_id, 1_000)).transfer_id == transfer_id


# Holds


def place(ledger: Ledger, account_id: UUID, amount_vnd: int = 15_000, hold_id: str = "h1") -> None:
    ledger.execute(PlaceHold(account_id, hold_id, amount_vnd, TTL_S, "metro entry"))


def test_placing_a_hold_raises_pending_not_posted(ledger: Ledger, account_id: UUID) -> None:
    receipt = ledger.execute(PlaceHold(account_id, "h1", 15_000, TTL_S))
    assert receipt.outcome is HoldOutcome.PENDING
    assert balances(ledger, account_id) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)


def test_hold_above_available_is_refused(ledger: Ledger, account_id: UUID) -> None:
    with pytest.raises(InsufficientFunds):
        place(ledger, account_id, FUNDS_VND + 1)
    assert ledger.get_transfer("h1") is None


def test_hold_with_ttl_out_of_range_is_refused(ledger: Ledger, account_id: UUID) -> None:
    with pytest.raises(HoldTtlOutOfRange):
        ledger.execute(PlaceHold(account_id, "h1", 1_000, limits.HOLD_TTL_MIN_S - 1))
    assert ledger.get_transfer("h1") is None


def test_posting_a_hold_in_full(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    receipt = ledger.execute(PostHold(account_id, "h1"))
    assert (receipt.outcome, receipt.amount_vnd) == (HoldOutcome.POSTED, 15_000)
    assert balances(ledger, account_id) == (FUNDS_VND - 15_000, 0, FUNDS_VND - 15_000)


def test_posting_part_of_a_hold_releases_the_rest(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    receipt = ledger.execute(PostHold(account_id, "h1", 11_000))
    assert (receipt.outcome, receipt.amount_vnd) == (HoldOutcome.POSTED, 11_000)
    assert balances(ledger, account_id) == (FUNDS_VND - 11_000, 0, FUNDS_VND - 11_000)


def test_posting_zero_releases_the_whole_hold(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    receipt = ledger.execute(PostHold(account_id, "h1", 0))
    assert (receipt.outcome, receipt.amount_vnd) == (HoldOutcome.POSTED, 0)
    assert balances(ledger, account_id) == (FUNDS_VND, 0, FUNDS_VND)


def test_posting_more_than_held_is_refused(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    with pytest.raises(PostExceedsHold):
        ledger.execute(PostHold(account_id, "h1", 15_001))
    assert hold_outcome(ledger, "h1") is HoldOutcome.PENDING
    assert balances(ledger, account_id)[1] == 15_000


@pytest.mark.parametrize(
    ("first", "second", "outcome"),
    [
        (PostHold, VoidHold, "posted"),
        (VoidHold, PostHold, "voided"),
        (VoidHold, ExpireHold, "voided"),
    ],
    ids=["post-void", "void-post", "void-expire"],
)
def test_resolving_a_hold_another_way_than_it_ended_is_refused(
    ledger: Ledger,
    account_id: UUID,
    first: Callable[[UUID, str], Command],
    second: Callable[[UUID, str], Command],
    outcome: str,
) -> None:
    place(ledger, account_id, 15_000)
    ledger.execute(first(account_id, "h1"))
    before = balances(ledger, account_id)
    with pytest.raises(HoldAlreadyResolved) as refused:
        ledger.execute(second(account_id, "h1"))
    assert refused.value.outcome == outcome
    assert balances(ledger, account_id) == before


@pytest.mark.parametrize(
    ("first_vnd", "again_vnd", "posted_vnd"),
    [
        (None, None, 15_000),
        (11_000, 11_000, 11_000),
        (15_000, None, 15_000),
        (None, 15_000, 15_000),
    ],
    ids=["all-all", "part-part", "all-said-then-unsaid", "all-unsaid-then-said"],
)
def test_retrying_a_post_with_the_same_amount_answers_the_same_receipt_as_a_replay(
    ledger: Ledger,
    account_id: UUID,
    first_vnd: int | None,
    again_vnd: int | None,
    posted_vnd: int,
) -> None:
    place(ledger, account_id, 15_000)
    first = ledger.execute(PostHold(account_id, "h1", first_vnd))
    before = ledger.get_account(account_id).version
    again = ledger.execute(PostHold(account_id, "h1", again_vnd))
    assert again == Receipt(
        "h1", account_id, TransferKind.HOLD, posted_vnd, HoldOutcome.POSTED, replayed=True
    )
    assert first == dataclasses.replace(again, replayed=False)
    assert ledger.get_account(account_id).version == before  # nothing moved
    assert balances(ledger, account_id) == (FUNDS_VND - posted_vnd, 0, FUNDS_VND - posted_vnd)


def test_a_post_retry_still_replays_after_the_holds_expiry_has_passed(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    ledger.execute(PostHold(account_id, "h1", 9_000))
    clock.advance(TTL_S + 1)
    assert ledger.execute(PostHold(account_id, "h1", 9_000)).replayed


@pytest.mark.parametrize(
    ("first_vnd", "again_vnd"),
    [(11_000, 12_000), (11_000, None), (None, 14_999)],
    ids=["part-other-part", "part-then-all", "all-then-part"],
)
def test_posting_a_posted_hold_with_another_amount_is_refused(
    ledger: Ledger, account_id: UUID, first_vnd: int | None, again_vnd: int | None
) -> None:
    place(ledger, account_id, 15_000)
    ledger.execute(PostHold(account_id, "h1", first_vnd))
    before = balances(ledger, account_id)
    with pytest.raises(HoldAlreadyResolved) as refused:
        ledger.execute(PostHold(account_id, "h1", again_vnd))
    assert refused.value.outcome == "posted"
    assert balances(ledger, account_id) == before


def test_retrying_a_void_answers_the_same_receipt_as_a_replay(
    ledger: Ledger, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    first = ledger.execute(VoidHold(account_id, "h1"))
    again = ledger.execute(VoidHold(account_id, "h1"))
    assert (again.outcome, again.amount_vnd, again.replayed) == (HoldOutcome.VOIDED, 15_000, True)
    assert first == dataclasses.replace(again, replayed=False)
    assert balances(ledger, account_id) == (FUNDS_VND, 0, FUNDS_VND)


def test_voiding_or_posting_an_expired_hold_is_still_refused(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    clock.advance(TTL_S + 1)
    ledger.execute(ExpireHold(account_id, "h1"))
    for command in (VoidHold(account_id, "h1"), PostHold(account_id, "h1")):
        with pytest.raises(HoldAlreadyResolved) as refused:
            ledger.execute(command)
        assert refused.value.outcome == "expired"


def test_a_post_retry_naming_another_account_is_not_found(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    ledger.execute(PostHold(account_id, "h1"))
    other_id = ledger.open_account(rider_category=0).id
    with pytest.raises(HoldNotFound):
        ledger.execute(PostHold(other_id, "h1"))


@pytest.mark.parametrize("command", [PostHold, VoidHold, ExpireHold])
def test_resolving_an_unknown_hold_is_not_found(
    ledger: Ledger, account_id: UUID, command: Callable[[UUID, str], Command]
) -> None:
    with pytest.raises(HoldNotFound):
        ledger.execute(command(account_id, "nope"))


def test_resolving_a_debit_as_a_hold_is_not_found(ledger: Ledger, account_id: UUID) -> None:
    ledger.execute(Debit(account_id, "d1", 1_000))
    with pytest.raises(HoldNotFound):
        ledger.execute(PostHold(account_id, "d1"))


def test_posting_another_accounts_hold_is_not_found(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id, 15_000)
    other_id = ledger.open_account(rider_category=0).id
    with pytest.raises(HoldNotFound):
        ledger.execute(PostHold(other_id, "h1"))
    assert hold_outcome(ledger, "h1") is HoldOutcome.PENDING


def test_expiring_a_hold_before_its_expiry_is_refused(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    clock.advance(TTL_S - 1)
    with pytest.raises(HoldNotYetExpired):
        ledger.execute(ExpireHold(account_id, "h1"))
    assert hold_outcome(ledger, "h1") is HoldOutcome.PENDING


def test_expiring_a_hold_after_its_expiry_releases_it(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    clock.advance(TTL_S + 1)
    receipt = ledger.execute(ExpireHold(account_id, "h1"))
    assert receipt.outcome is HoldOutcome.EXPIRED
    assert hold_outcome(ledger, "h1") is HoldOutcome.EXPIRED
    assert balances(ledger, account_id) == (FUNDS_VND, 0, FUNDS_VND)


def test_next_money_command_releases_a_hold_past_its_expiry(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    clock.advance(TTL_S + 1)
    ledger.execute(TopUp(account_id, 1_000, "p1"))
    assert balances(ledger, account_id) == (FUNDS_VND + 1_000, 0, FUNDS_VND + 1_000)
    with pytest.raises(HoldAlreadyResolved) as refused:
        ledger.execute(PostHold(account_id, "h1"))
    assert refused.value.outcome == "expired"


def test_posting_a_hold_past_its_expiry_is_refused_as_expired(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    place(ledger, account_id, 15_000)
    clock.advance(TTL_S + 1)
    with pytest.raises(HoldAlreadyResolved) as refused:
        ledger.execute(PostHold(account_id, "h1"))
    assert refused.value.outcome == "expired"
    assert balances(ledger, account_id)[0] == FUNDS_VND


# Block and unblock


@pytest.fixture
def blocked_id(ledger: Ledger, account_id: UUID) -> UUID:
    """The funded account with hold "h1" of 15,000 VND, then blocked."""
    place(ledger, account_id, 15_000)
    account = ledger.block_account(account_id, reason="card reported lost")
    assert account.status is AccountStatus.BLOCKED
    return account_id


@pytest.mark.parametrize(
    "command",
    [lambda a: Debit(a, "d1", 1_000), lambda a: PlaceHold(a, "h2", 1_000, TTL_S)],
    ids=["debit", "place_hold"],
)
def test_blocked_account_refuses_debit_and_new_holds(
    ledger: Ledger, blocked_id: UUID, command: Callable[[UUID], Command]
) -> None:
    with pytest.raises(AccountBlocked):
        ledger.execute(command(blocked_id))
    assert balances(ledger, blocked_id) == (FUNDS_VND, 15_000, FUNDS_VND - 15_000)


def test_blocked_account_accepts_top_up(ledger: Ledger, blocked_id: UUID) -> None:
    ledger.execute(TopUp(blocked_id, 1_000, "p1"))
    assert balances(ledger, blocked_id)[0] == FUNDS_VND + 1_000


def test_blocked_account_posts_a_hold_placed_before_the_block(
    ledger: Ledger, blocked_id: UUID
) -> None:
    ledger.execute(PostHold(blocked_id, "h1", 9_000))
    assert balances(ledger, blocked_id) == (FUNDS_VND - 9_000, 0, FUNDS_VND - 9_000)


def test_blocked_account_voids_a_hold_placed_before_the_block(
    ledger: Ledger, blocked_id: UUID
) -> None:
    ledger.execute(VoidHold(blocked_id, "h1"))
    assert balances(ledger, blocked_id) == (FUNDS_VND, 0, FUNDS_VND)


def test_blocking_twice_is_refused(ledger: Ledger, blocked_id: UUID) -> None:
    with pytest.raises(AccountAlreadyBlocked):
        ledger.block_account(blocked_id, reason="again")


def test_unblocking_an_open_account_is_refused(ledger: Ledger, account_id: UUID) -> None:
    with pytest.raises(AccountNotBlocked):
        ledger.unblock_account(account_id)


def test_unblocked_account_debits_again(ledger: Ledger, blocked_id: UUID) -> None:
    assert ledger.unblock_account(blocked_id).status is AccountStatus.OPEN
    ledger.execute(Debit(blocked_id, "d1", 1_000))
    assert balances(ledger, blocked_id)[0] == FUNDS_VND - 1_000


# Close


def test_close_with_pending_holds_is_refused(ledger: Ledger, account_id: UUID) -> None:
    place(ledger, account_id)
    with pytest.raises(AccountHasPendingHolds):
        ledger.close_account(account_id)
    assert ledger.get_account(account_id).status is AccountStatus.OPEN


def test_close_in_debt_is_refused(ledger: Ledger) -> None:
    account_id = ledger.open_account(rider_category=0, overdraft_vnd=10_000).id
    ledger.execute(Debit(account_id, "d1", 5_000))
    with pytest.raises(AccountInDebt):
        ledger.close_account(account_id)
    assert ledger.get_account(account_id).status is AccountStatus.OPEN


def test_close_records_the_balance_as_a_refund(ledger: Ledger, account_id: UUID) -> None:
    ledger.close_account(account_id)
    account = ledger.get_account(account_id)
    assert (account.status, account.posted_vnd) == (AccountStatus.CLOSED, 0)
    last = list(ledger.events.get(account_id))[-1]
    assert isinstance(last, TransportAccount.Closed)
    assert last.refund_vnd == FUNDS_VND


@pytest.mark.parametrize(
    "change",
    [
        lambda ledger, a: ledger.execute(TopUp(a, 1_000, "p1")),
        lambda ledger, a: ledger.execute(Debit(a, "d1", 1_000)),
        lambda ledger, a: ledger.execute(PlaceHold(a, "h1", 1_000, TTL_S)),
        lambda ledger, a: ledger.block_account(a, reason="r"),
        lambda ledger, a: ledger.unblock_account(a),
        lambda ledger, a: ledger.close_account(a),
    ],
    ids=["top_up", "debit", "place_hold", "block", "unblock", "close"],
)
def test_closed_account_refuses_every_command(
    ledger: Ledger, account_id: UUID, change: Callable[[Ledger, UUID], object]
) -> None:
    ledger.close_account(account_id)
    with pytest.raises(AccountClosed):
        change(ledger, account_id)
    assert balances(ledger, account_id)[0] == 0


# Batches


def test_batch_answers_each_command_in_order_and_a_refusal_stops_nothing(
    ledger: Ledger, account_id: UUID
) -> None:
    results = ledger.execute_batch(
        [
            Debit(account_id, "d1", 10_000),
            Debit(account_id, "too-much", FUNDS_VND),
            PlaceHold(account_id, "h1", 15_000, TTL_S),
            PostHold(account_id, "h1", 11_000),
            Debit(account_id, "d1", 10_000),
        ]
    )
    assert [type(result) for result in results] == [
        Receipt,
        InsufficientFunds,
        Receipt,
        Receipt,
        Receipt,
    ]
    receipts = [result for result in results if isinstance(result, Receipt)]
    assert [r.transfer_id for r in receipts] == ["d1", "h1", "h1", "d1"]
    assert [r.replayed for r in receipts] == [False, False, False, True]
    assert balances(ledger, account_id) == (FUNDS_VND - 21_000, 0, FUNDS_VND - 21_000)
    assert ledger.get_transfer("too-much") is None
    assert hold_outcome(ledger, "h1") is HoldOutcome.POSTED


def test_batch_error_is_the_ledger_error_of_that_command(ledger: Ledger, account_id: UUID) -> None:
    results = ledger.execute_batch([Debit(uuid4(), "d1", 1), Debit(account_id, "d2", 1)])
    assert isinstance(results[0], AccountNotFound)
    assert isinstance(results[0], LedgerError)
    assert isinstance(results[1], Receipt)


def test_batch_of_the_maximum_size_is_accepted(ledger: Ledger, account_id: UUID) -> None:
    commands = [TopUp(account_id, 1, f"p-{index}") for index in range(LEDGER_BATCH_MAX)]
    results = ledger.execute_batch(commands)
    assert all(isinstance(result, Receipt) for result in results)
    assert balances(ledger, account_id)[0] == FUNDS_VND + LEDGER_BATCH_MAX


def test_batch_over_the_maximum_is_a_programmer_error(ledger: Ledger, account_id: UUID) -> None:
    commands = [TopUp(account_id, 1, f"p-{index}") for index in range(LEDGER_BATCH_MAX + 1)]
    with pytest.raises(InvariantViolated):
        ledger.execute_batch(commands)
    assert balances(ledger, account_id)[0] == FUNDS_VND


# Replay and snapshots


def run_history(ledger: Ledger, clock: Clock, account_id: UUID) -> None:
    place(ledger, account_id, 15_000, "h1")
    place(ledger, account_id, 5_000, "h2")
    ledger.execute(PlaceHold(account_id, "h3", 2_000, limits.HOLD_TTL_MAX_S))
    ledger.execute(PostHold(account_id, "h1", 11_000))
    ledger.execute(Debit(account_id, "d1", 3_000))
    clock.advance(TTL_S + 1)
    ledger.execute(TopUp(account_id, 4_000, "p1"))


def test_fresh_replay_reaches_the_same_state(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    run_history(ledger, clock, account_id)
    before = ledger.get_account(account_id)
    replayed: TransportAccount = ledger.repository.get(account_id)
    assert isinstance(replayed, TransportAccount)
    assert replayed is not before
    assert snapshot_of(replayed) == snapshot_of(before)
    assert replayed.pending_vnd == 2_000
    assert list(replayed.holds) == ["h3"]


def test_account_with_many_events_is_snapshotted_and_replays_the_same(
    ledger: Ledger, clock: Clock, account_id: UUID
) -> None:
    run_history(ledger, clock, account_id)
    for index in range(ACCOUNT_SNAPSHOT_INTERVAL):
        ledger.execute(Debit(account_id, f"ride-{index}", 1))
    assert ledger.snapshots is not None
    snapshots = list(ledger.snapshots.get(account_id))
    assert [s.originator_version for s in snapshots] == [ACCOUNT_SNAPSHOT_INTERVAL]
    replayed = ledger.get_account(account_id)
    assert replayed.version > ACCOUNT_SNAPSHOT_INTERVAL
    assert snapshot_of(replayed) == {
        "posted_vnd": FUNDS_VND - 11_000 - 3_000 + 4_000 - ACCOUNT_SNAPSHOT_INTERVAL,
        "pending_vnd": 2_000,
        "available_vnd": FUNDS_VND - 12_000 - ACCOUNT_SNAPSHOT_INTERVAL,
        "holds": {"h3": {"amount_vnd": 2_000, "expires_at": T0 + timedelta(days=7)}},
        "status": AccountStatus.OPEN,
        "version": replayed.version,
    }


def test_rider_category_keeps_its_type_after_a_snapshot(ledger: Ledger, account_id: UUID) -> None:
    top_ups_until_version(ledger, account_id, ACCOUNT_SNAPSHOT_INTERVAL + 1)
    assert ledger.get_account(account_id).rider_category is RiderCategory.REGULAR


def top_ups_until_version(ledger: Ledger, account_id: UUID, version: int) -> None:
    """Tops up 1 VND at a time until the account's next event will be number `version`."""
    index = ledger.get_account(account_id).version
    while index < version - 1:
        ledger.execute(TopUp(account_id, 1, f"fill-{index}"))
        index += 1
    assert ledger.get_account(account_id).version == version - 1


def test_blocked_account_stays_blocked_after_a_snapshot(ledger: Ledger, account_id: UUID) -> None:
    top_ups_until_version(ledger, account_id, ACCOUNT_SNAPSHOT_INTERVAL)
    ledger.block_account(account_id, reason="card reported lost")  # the snapshotted event
    assert ledger.snapshots is not None
    assert len(list(ledger.snapshots.get(account_id))) == 1
    # The snapshot stores the StrEnum as a plain str, and the aggregate compares with `is`.
    with pytest.raises(AccountBlocked):
        ledger.execute(Debit(account_id, "after-snapshot", 1_000))
    assert ledger.get_account(account_id).status is AccountStatus.BLOCKED


def test_closed_account_stays_closed_after_a_snapshot(ledger: Ledger, account_id: UUID) -> None:
    top_ups_until_version(ledger, account_id, ACCOUNT_SNAPSHOT_INTERVAL)
    ledger.close_account(account_id)  # the snapshotted event
    assert ledger.snapshots is not None
    assert len(list(ledger.snapshots.get(account_id))) == 1
    with pytest.raises(AccountClosed):
        ledger.execute(TopUp(account_id, 1_000, "after-snapshot"))
    assert ledger.get_account(account_id).status is AccountStatus.CLOSED
