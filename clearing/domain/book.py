"""The clearing book: the one aggregate that orders cycles and carries what they leave behind.

Cycles follow each other day after day with no gap: the cycle of a day opens only once the
previous day's cycle is closed, and starts at its cut-off, so every ledger movement is in
exactly one cycle. The first cycle may be of any day and starts at the log's beginning.
The book also carries each operator's balance with the scheme from cycle to cycle: what an
operator owes (its reversals exceeded its revenue) is netted against its next payouts.
It is saved with the cycle it opens or closes, in one transaction.

A line of a closed cycle may be **disputed** by staff: the next cycle to close carves it out
(the operator's share back, the same amount to suspense), and a later release gives it back to
the operator in the cycle that closes after it. The book follows each dispute: raised, carved,
release asked, released.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from clearing.domain.errors import ClearingError
from ticketing.shared.domain.ids import url_uuid5
from ticketing.shared.domain.invariants import require

TOPIC_PREFIX = "clearing.ClearingBook"
BOOK_ID = url_uuid5("tapledger:clearing-book")


class ClearingBook(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Started(Created):
        TOPIC = f"{TOPIC_PREFIX}.Started"

    class CycleOpened(Event):
        TOPIC = f"{TOPIC_PREFIX}.CycleOpened"
        business_day: str
        seq: int

    class CycleClosed(Event):
        TOPIC = f"{TOPIC_PREFIX}.CycleClosed"
        business_day: str
        cut_off: int
        purse_cut_off: int
        balances: dict[str, int]
        carved: list[str]  # disputes carved out by this cycle
        released: list[str]  # disputes released by this cycle

    class LineDisputed(Event):
        TOPIC = f"{TOPIC_PREFIX}.LineDisputed"
        key: str
        reason: str

    class ReleaseAsked(Event):
        TOPIC = f"{TOPIC_PREFIX}.ReleaseAsked"
        key: str

    @event(Started)
    def __init__(self) -> None:
        self.seq = 0
        self.open_day = ""
        self.last_closed_day = ""
        self.cut_off = 0
        self.purse_cut_off = 0
        # operator id -> its balance with the scheme after the last closed cycle (<= 0)
        self.balances: dict[str, int] = {}
        # line key -> [state, reason]
        self.disputes: dict[str, list[str]] = {}

    @classmethod
    def create_id(cls, **_: object) -> UUID:
        return BOOK_ID

    def next_day(self) -> date | None:
        """The day whose cycle opens next; None before the first cycle (any day may be it)."""
        if self.open_day:
            return date.fromisoformat(self.open_day)
        if self.last_closed_day:
            return date.fromisoformat(self.last_closed_day) + timedelta(days=1)
        return None

    def open_cycle(self, day: date) -> tuple[int, int, int]:
        """Opens the cycle of `day`: its sequence number and its positions (the previous
        cut-offs). `CycleOutOfOrder` unless it is the day after the last closed cycle."""
        expected = self.next_day()
        if self.last_closed_day and day <= date.fromisoformat(self.last_closed_day):
            raise CycleOutOfOrder(day, expected, "its cycle is closed already")
        if expected is not None and day != expected:
            raise CycleOutOfOrder(day, expected, "cycles follow each other with no gap")
        require(not self.open_day, "one cycle open at a time")
        self._cycle_opened(business_day=day.isoformat(), seq=self.seq + 1)
        return self.seq, self.cut_off, self.purse_cut_off

    @event(CycleOpened)
    def _cycle_opened(self, business_day: str, seq: int) -> None:
        self.open_day = business_day
        self.seq = seq

    def disputes_in(self, state: DisputeState) -> list[tuple[str, str]]:
        """The disputes in `state`, oldest first, with their reasons."""
        return [(key, r) for key, (s, r) in self.disputes.items() if s == state.value]

    def dispute(self, key: str, reason: str) -> bool:
        """Raises a dispute of a line of a closed cycle; False when it is disputed already."""
        if key in self.disputes:
            return False
        self._line_disputed(key=key, reason=reason)
        return True

    @event(LineDisputed)
    def _line_disputed(self, key: str, reason: str) -> None:
        self.disputes[key] = [DisputeState.RAISED.value, reason]

    def ask_release(self, key: str) -> bool:
        """Asks that a carved-out dispute be given back to its operator; False when asked
        already. `DisputeNotCarved` before it is carved out."""
        state = self.disputes.get(key, ["", ""])[0]
        if state in (DisputeState.RELEASE_ASKED.value, DisputeState.RELEASED.value):
            return False
        if state != DisputeState.CARVED.value:
            raise DisputeNotCarved(key)
        self._release_asked(key=key)
        return True

    @event(ReleaseAsked)
    def _release_asked(self, key: str) -> None:
        self.disputes[key][0] = DisputeState.RELEASE_ASKED.value

    def close_cycle(
        self,
        day: date,
        cut_off: int,
        purse_cut_off: int,
        closing: Mapping[str, int],
        *,
        carved: Sequence[str] = (),
        released: Sequence[str] = (),
    ) -> None:
        require(self.open_day == day.isoformat(), "the open cycle is the one closing")
        require(cut_off >= self.cut_off, "cut-offs never go back")
        require(purse_cut_off >= self.purse_cut_off, "cut-offs never go back")
        require(all(vnd <= 0 for vnd in closing.values()), "what is owed to operators is paid")
        balances = {**self.balances, **closing}
        kept = {operator: vnd for operator, vnd in sorted(balances.items()) if vnd != 0}
        self._cycle_closed(
            business_day=day.isoformat(),
            cut_off=cut_off,
            purse_cut_off=purse_cut_off,
            balances=kept,
            carved=list(carved),
            released=list(released),
        )

    @event(CycleClosed)
    def _cycle_closed(
        self,
        business_day: str,
        cut_off: int,
        purse_cut_off: int,
        balances: dict[str, int],
        carved: list[str],
        released: list[str],
    ) -> None:
        for key in carved:
            self.disputes[key][0] = DisputeState.CARVED.value
        for key in released:
            self.disputes[key][0] = DisputeState.RELEASED.value
        self.open_day = ""
        self.last_closed_day = business_day
        self.cut_off = cut_off
        self.purse_cut_off = purse_cut_off
        self.balances = balances


class DisputeState(StrEnum):
    RAISED = "raised"
    CARVED = "carved"
    RELEASE_ASKED = "release_asked"
    RELEASED = "released"


class DisputeNotCarved(ClearingError):
    code = "dispute_not_carved"

    def __init__(self, key: str) -> None:
        super().__init__(f"line {key} is not carved out to suspense by a dispute yet")
        self.key = key


class CycleOutOfOrder(ClearingError):
    code = "cycle_out_of_order"

    def __init__(self, day: date, expected: date | None, reason: str) -> None:
        hint = f"; the next cycle is of {expected.isoformat()}" if expected else ""
        super().__init__(f"no cycle of {day.isoformat()} can open: {reason}{hint}")
        self.day = day
        self.expected = expected
