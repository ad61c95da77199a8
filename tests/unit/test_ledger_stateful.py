"""Random sequences of ledger commands keep the ledger's promises after every step.

Goal: whatever order top-ups, debits, holds, posts, voids, expiries, clock jumps and repeats come
in, (1) available = posted - pending and never falls below -overdraft, (2) a repeated transfer id
or a refused command stores nothing, (3) money is conserved against the receipts, and (4) the
read model equals a fold of the stored events written here, independently of the follower.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from tests.doubles import Clock
from ticketing.accounts.adapters.ledger_follower import ACCOUNT_TOPICS, LedgerFollower
from ticketing.accounts.adapters.read_model import LedgerReadModel
from ticketing.accounts.application.ledger import Ledger, Receipt
from ticketing.accounts.domain.account import TransportAccount as Account
from ticketing.accounts.domain.commands import (
    Command,
    Debit,
    ExpireHold,
    PlaceHold,
    PostHold,
    TopUp,
    VoidHold,
)
from ticketing.accounts.domain.errors import LedgerError
from ticketing.accounts.domain.transfer import HoldOutcome, TransferKind

OVERDRAFTS_VND = (0, 10_000)
IDS = st.sampled_from([f"t{i}" for i in range(6)])
AMOUNTS = st.integers(min_value=1, max_value=60_000)
TTLS = st.sampled_from([60, 600, 3600])
ACCOUNT_INDEX = st.integers(min_value=0, max_value=len(OVERDRAFTS_VND) - 1)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
        self.ledger = Ledger(clock=self.clock)
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        self.follower = LedgerFollower(self.ledger, engine, section_size=7)
        self.follower.create_tables()
        self.read_model = LedgerReadModel(engine)
        self.accounts: list[UUID] = [
            self.ledger.open_account(rider_category=0, overdraft_vnd=od).id for od in OVERDRAFTS_VND
        ]
        self.succeeded: list[Command] = []
        self.receipts: list[Receipt] = []

    def teardown(self) -> None:
        self.ledger.close()

    def _head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def _execute(self, command: Command) -> None:
        head = self._head()
        try:
            receipt = self.ledger.execute(command)
        except LedgerError:
            assert self._head() == head, "a refused command stores nothing"
            return
        if receipt.replayed:
            assert self._head() == head, "a repeated transfer id stores nothing"
        else:
            self.succeeded.append(command)
            self.receipts.append(receipt)

    @rule(i=ACCOUNT_INDEX, amount=AMOUNTS, ref=IDS)
    def top_up(self, i: int, amount: int, ref: str) -> None:
        self._execute(TopUp(self.accounts[i], amount, ref))

    @rule(i=ACCOUNT_INDEX, amount=AMOUNTS, tid=IDS)
    def debit(self, i: int, amount: int, tid: str) -> None:
        self._execute(Debit(self.accounts[i], tid, amount))

    @rule(i=ACCOUNT_INDEX, amount=AMOUNTS, hid=IDS, ttl=TTLS)
    def place_hold(self, i: int, amount: int, hid: str, ttl: int) -> None:
        self._execute(PlaceHold(self.accounts[i], hid, amount, ttl))

    @rule(i=ACCOUNT_INDEX, hid=IDS, amount=st.none() | st.integers(0, 60_000))
    def post_hold(self, i: int, hid: str, amount: int | None) -> None:
        self._execute(PostHold(self.accounts[i], hid, amount))

    @rule(i=ACCOUNT_INDEX, hid=IDS)
    def void_hold(self, i: int, hid: str) -> None:
        self._execute(VoidHold(self.accounts[i], hid))

    @rule(i=ACCOUNT_INDEX, hid=IDS)
    def expire_hold(self, i: int, hid: str) -> None:
        self._execute(ExpireHold(self.accounts[i], hid))

    def _pending_holds(self) -> list[tuple[UUID, str]]:
        return [
            (account_id, hold_id)
            for account_id in self.accounts
            for hold_id in sorted(self.ledger.get_account(account_id).holds)
        ]

    @precondition(lambda self: bool(self._pending_holds()))
    @rule(data=st.data(), part=st.floats(0, 1), whole=st.booleans())
    def post_a_pending_hold(self, data: st.DataObject, part: float, whole: bool) -> None:
        account_id, hold_id = data.draw(st.sampled_from(self._pending_holds()))
        held = self.ledger.get_account(account_id).holds[hold_id]["amount_vnd"]
        self._execute(PostHold(account_id, hold_id, None if whole else int(held * part)))

    @precondition(lambda self: bool(self._pending_holds()))
    @rule(data=st.data())
    def void_a_pending_hold(self, data: st.DataObject) -> None:
        account_id, hold_id = data.draw(st.sampled_from(self._pending_holds()))
        self._execute(VoidHold(account_id, hold_id))

    @precondition(lambda self: bool(self._pending_holds()))
    @rule(data=st.data())
    def expire_a_pending_hold(self, data: st.DataObject) -> None:
        account_id, hold_id = data.draw(st.sampled_from(self._pending_holds()))
        self._execute(ExpireHold(account_id, hold_id))

    @rule(seconds=st.sampled_from([1, 59, 600, 3600]))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += timedelta(seconds=seconds)

    @precondition(lambda self: bool(self.succeeded))
    @rule(data=st.data())
    def repeat_an_earlier_command(self, data: st.DataObject) -> None:
        command = data.draw(st.sampled_from(self.succeeded))
        head = self._head()
        try:
            receipt = self.ledger.execute(command)
        except LedgerError:
            pass  # a second post, void or expiry of one hold is refused
        else:
            assert receipt.replayed, f"{command} ran twice"
        assert self._head() == head, f"repeating {command} stored something"

    @invariant()
    def balances_keep_their_equation_and_floor(self) -> None:
        for account_id in self.accounts:
            account = self.ledger.get_account(account_id)
            held = sum(h["amount_vnd"] for h in account.holds.values())
            assert account.pending_vnd == held
            assert account.available_vnd == account.posted_vnd - account.pending_vnd
            assert account.available_vnd >= -account.overdraft_vnd
            assert account.posted_vnd >= -account.overdraft_vnd

    @invariant()
    def money_is_conserved_against_the_receipts(self) -> None:
        posted_total = sum(self.ledger.get_account(a).posted_vnd for a in self.accounts)
        moved = 0
        for receipt in self.receipts:
            if receipt.kind is TransferKind.TOP_UP:
                moved += receipt.amount_vnd
            elif receipt.kind is TransferKind.DEBIT or receipt.outcome is HoldOutcome.POSTED:
                moved -= receipt.amount_vnd
        assert posted_total == moved

    @invariant()
    def read_model_equals_a_fold_of_the_events(self) -> None:
        self.follower.catch_up()
        assert self.follower.lag() == 0
        folded = fold_account_events(self.ledger)
        for account_id in self.accounts:
            row = self.read_model.balance(account_id)
            assert row is not None
            account = self.ledger.get_account(account_id)
            expected = folded[account_id]
            assert (row["posted_vnd"], row["pending_vnd"]) == expected["balances"]
            assert expected["balances"] == (account.posted_vnd, account.pending_vnd)
            assert row["available_vnd"] == account.available_vnd
            page = self.read_model.statement(account_id, before_seq=None, limit=200)
            assert [line["seq"] for line in page.lines] == expected["versions"][::-1]


def fold_account_events(ledger: Ledger) -> dict[UUID, dict[str, Any]]:
    """Posted and pending balances per account, from the stored events alone."""
    posted: dict[UUID, int] = defaultdict(int)
    pending: dict[UUID, int] = defaultdict(int)
    versions: dict[UUID, list[int]] = defaultdict(list)
    start = 1
    while notifications := ledger.notification_log.select(
        start=start, limit=100, topics=ACCOUNT_TOPICS
    ):
        for notification in notifications:
            e: Any = ledger.mapper.to_domain_event(notification)
            a = e.originator_id
            versions[a].append(e.originator_version)
            if isinstance(e, Account.ToppedUp):
                posted[a] += e.amount_vnd
            elif isinstance(e, Account.Debited):
                posted[a] -= e.amount_vnd
            elif isinstance(e, Account.HoldPlaced):
                pending[a] += e.amount_vnd
            elif isinstance(e, Account.HoldPosted):
                posted[a] -= e.amount_vnd
                pending[a] -= e.held_vnd
            elif isinstance(e, Account.HoldVoided | Account.HoldExpired):
                pending[a] -= e.held_vnd
        start = notifications[-1].id + 1
    return {a: {"balances": (posted[a], pending[a]), "versions": versions[a]} for a in versions}


LedgerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerStateMachine = LedgerMachine.TestCase
