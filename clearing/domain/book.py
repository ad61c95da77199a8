"""The clearing book: the one aggregate that orders cycles and carries what they leave behind.

Cycles follow each other day after day with no gap: the cycle of a day opens only once the
previous day's cycle is closed, and starts at its cut-off, so every ledger movement is in
exactly one cycle. The first cycle may be of any day and starts at the log's beginning.
The book also carries each operator's balance with the scheme from cycle to cycle: what an
operator owes (its reversals exceeded its revenue) is netted against its next payouts.
It is saved with the cycle it opens or closes, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
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

    @event(Started)
    def __init__(self) -> None:
        self.seq = 0
        self.open_day = ""
        self.last_closed_day = ""
        self.cut_off = 0
        self.purse_cut_off = 0
        # operator id -> its balance with the scheme after the last closed cycle (<= 0)
        self.balances: dict[str, int] = {}

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

    def close_cycle(
        self, day: date, cut_off: int, purse_cut_off: int, closing: Mapping[str, int]
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
        )

    @event(CycleClosed)
    def _cycle_closed(
        self, business_day: str, cut_off: int, purse_cut_off: int, balances: dict[str, int]
    ) -> None:
        self.open_day = ""
        self.last_closed_day = business_day
        self.cut_off = cut_off
        self.purse_cut_off = purse_cut_off
        self.balances = balances


class CycleOutOfOrder(ClearingError):
    code = "cycle_out_of_order"

    def __init__(self, day: date, expected: date | None, reason: str) -> None:
        hint = f"; the next cycle is of {expected.isoformat()}" if expected else ""
        super().__init__(f"no cycle of {day.isoformat()} can open: {reason}{hint}")
        self.day = day
        self.expected = expected
