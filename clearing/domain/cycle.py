"""A clearing cycle: one business day's money, from open to closed to settled.

- **Opened** with its business day, its sequence number and its positions: the previous
  cycle's cut-offs (a ledger notification id, and one in the journeys' log for the card purses'
  payments; 0 for the first cycle). It holds nothing yet.
- **Closed** with its summary (`CycleSummary`): the movements it holds are the ledger's money
  events with ids in (position, cut-off] and the purse payments with ids in (purse position,
  purse cut-off], its lines' count and digest, each
  operator's revenue, commission, net position and payout, and the suspense. From then on
  it never changes: a correction is a line of a later cycle.
- Each payout is **confirmed** by the bank's statement (a booked debit of its end-to-end id and
  amount) or **flagged** with the reason; the cycle is **settled** once every payout is
  confirmed. A cycle that pays nobody is settled when it closes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from clearing.domain.errors import ClearingError
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "clearing.ClearingCycle"


class CycleState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    SETTLED = "settled"


class PayoutState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FLAGGED = "flagged"


@dataclass(frozen=True, slots=True)
class OperatorTotals:
    """One operator in a closed cycle: its lines, its position, and its account with the
    scheme (what it was owed before, what it is paid, what it is owed after)."""

    operator_id: str
    lines: int
    revenue_vnd: int
    commission_bps: int
    commission_vnd: int
    net_vnd: int  # its position: revenue - commission
    opening_vnd: int  # carried from its previous cycle (negative: it owes the scheme)
    paid_vnd: int  # the payout: opening + net when positive, else 0
    closing_vnd: int  # opening + net - paid: never positive

    def __post_init__(self) -> None:
        require(self.net_vnd == self.revenue_vnd - self.commission_vnd, "net = revenue - fee")
        require(self.paid_vnd == max(0, self.opening_vnd + self.net_vnd), "pay what is owed")
        require(
            self.closing_vnd == self.opening_vnd + self.net_vnd - self.paid_vnd,
            "closing = opening + net - paid",
        )


@dataclass(frozen=True, slots=True)
class BankParty:
    """A party as the cycle recorded it when it closed, so its file names the same accounts
    in every re-run whatever the terms say later."""

    name: str
    account: str
    bic: str
    account_kind: str


@dataclass(frozen=True, slots=True)
class Payout:
    end_to_end_id: str
    operator_id: str
    amount_vnd: int
    payee: BankParty


@dataclass(frozen=True, slots=True)
class CycleSummary:
    """What a cycle computed when it closed: everything its files are written from besides
    its lines, which are kept apart (`lines_sha256` pins them)."""

    cut_off: int
    purse_cut_off: int
    movements: int  # ledger money movements and purse payments in the cycle
    lines: int  # operator lines and suspense lines
    lines_sha256: str
    operators: tuple[OperatorTotals, ...]  # by operator id
    suspense_lines: int
    suspense_vnd: int  # revenue carved out: held in the float until a later cycle places it
    top_ups_vnd: int  # money paid in for riders (never revenue)
    rider_payouts_vnd: int  # closed accounts' balances paid out
    pass_sales_vnd: int  # passes sold: held as unearned until each is earned
    message_id: str  # the pain.001 message id; "" when the cycle pays nobody
    debtor: BankParty  # the scheme's settlement account
    payouts: tuple[Payout, ...]

    @property
    def revenue_vnd(self) -> int:
        return sum(operator.revenue_vnd for operator in self.operators)

    @property
    def commission_vnd(self) -> int:
        return sum(operator.commission_vnd for operator in self.operators)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CycleSummary:
        fields = dict(state)
        fields["operators"] = tuple(OperatorTotals(**o) for o in state["operators"])
        fields["debtor"] = BankParty(**state["debtor"])
        fields["payouts"] = tuple(
            Payout(**{**p, "payee": BankParty(**p["payee"])}) for p in state["payouts"]
        )
        return cls(**fields)


def cycle_id(business_day: date) -> UUID:
    return url_uuid5(f"tapledger:clearing-cycle:{business_day.isoformat()}")


class ClearingCycle(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Opened(Created):
        TOPIC = f"{TOPIC_PREFIX}.Opened"
        business_day: str
        seq: int
        position: int
        purse_position: int

    class Closed(Event):
        TOPIC = f"{TOPIC_PREFIX}.Closed"
        summary: dict[str, Any]

    class PayoutConfirmed(Event):
        TOPIC = f"{TOPIC_PREFIX}.PayoutConfirmed"
        end_to_end_id: str
        bank_reference: str

    class PayoutFlagged(Event):
        TOPIC = f"{TOPIC_PREFIX}.PayoutFlagged"
        end_to_end_id: str
        reason: str

    class Settled(Event):
        TOPIC = f"{TOPIC_PREFIX}.Settled"

    @event(Opened)
    def __init__(self, business_day: str, seq: int, position: int, purse_position: int) -> None:
        require(seq > 0, "a cycle has a sequence from 1")
        require(position >= 0 and purse_position >= 0, "positions are notification ids")
        self.business_day = business_day
        self.seq = seq
        self.position = position
        self.purse_position = purse_position
        self.state_code = CycleState.OPEN.value
        self.summary_state: dict[str, Any] | None = None
        # end-to-end id -> [state, bank reference or reason]
        self.payout_states: dict[str, list[str]] = {}

    @classmethod
    def create_id(cls, business_day: str, **_: object) -> UUID:
        return cycle_id(date.fromisoformat(business_day))

    @property
    def day(self) -> date:
        return date.fromisoformat(self.business_day)

    @property
    def state(self) -> CycleState:
        return CycleState(self.state_code)

    @property
    def summary(self) -> CycleSummary | None:
        if self.summary_state is None:
            return None
        return CycleSummary.from_state(self.summary_state)

    def close(self, summary: CycleSummary) -> None:
        if self.state is not CycleState.OPEN:
            raise CycleClosed(self.day)
        require(summary.cut_off >= self.position, "a cycle's cut-off is at or after its position")
        require(summary.purse_cut_off >= self.purse_position, "so is its purse cut-off")
        self._closed(summary=summary.to_state())
        if not summary.payouts:
            self._settled()

    @event(Closed)
    def _closed(self, summary: dict[str, Any]) -> None:
        self.summary_state = summary
        self.state_code = CycleState.CLOSED.value
        for payout in summary["payouts"]:
            self.payout_states[payout["end_to_end_id"]] = [PayoutState.PENDING.value, ""]

    def payout_state(self, end_to_end_id: str) -> PayoutState:
        return PayoutState(self.payout_states[end_to_end_id][0])

    def confirm_payout(self, end_to_end_id: str, bank_reference: str) -> bool:
        """Records a payout the bank booked; True when it changed anything. Settles the cycle
        once every payout is confirmed."""
        self._check_payout(end_to_end_id)
        if self.payout_state(end_to_end_id) is PayoutState.CONFIRMED:
            return False
        self._payout_confirmed(end_to_end_id=end_to_end_id, bank_reference=bank_reference)
        if all(s == PayoutState.CONFIRMED.value for s, _ in self.payout_states.values()):
            self._settled()
        return True

    def flag_payout(self, end_to_end_id: str, reason: str) -> bool:
        """Records that a statement did not confirm a payout, and why; True when it changed
        anything. A confirmed payout stays confirmed (one statement booked it)."""
        self._check_payout(end_to_end_id)
        state, detail = self.payout_states[end_to_end_id]
        if state == PayoutState.CONFIRMED.value or (
            state == PayoutState.FLAGGED.value and detail == reason
        ):
            return False
        self._payout_flagged(end_to_end_id=end_to_end_id, reason=reason)
        return True

    def _check_payout(self, end_to_end_id: str) -> None:
        if self.state is CycleState.OPEN:
            raise CycleNotClosed(self.day)
        require(end_to_end_id in self.payout_states, "a payout of this cycle")

    @event(PayoutConfirmed)
    def _payout_confirmed(self, end_to_end_id: str, bank_reference: str) -> None:
        self.payout_states[end_to_end_id] = [PayoutState.CONFIRMED.value, bank_reference]

    @event(PayoutFlagged)
    def _payout_flagged(self, end_to_end_id: str, reason: str) -> None:
        self.payout_states[end_to_end_id] = [PayoutState.FLAGGED.value, reason]

    @event(Settled)
    def _settled(self) -> None:
        self.state_code = CycleState.SETTLED.value


class CycleClosed(ClearingError):
    """A closed cycle never changes: its corrections are lines of a later cycle."""

    code = "cycle_closed"

    def __init__(self, day: date) -> None:
        super().__init__(f"the cycle of {day.isoformat()} is closed and never changes")


class CycleNotClosed(ClearingError):
    code = "cycle_not_closed"

    def __init__(self, day: date) -> None:
        super().__init__(f"the cycle of {day.isoformat()} is not closed yet")
