"""The clearing use cases: run a day's cycle, confirm payouts from a bank statement.

`run(day)` opens the day's cycle (once the day is over), closes it (the lines kept, then the
cycle and the book saved in one transaction), and writes its files. Every step can be cut
off and the run repeated: an open cycle is computed again from the store (its lines replaced),
a closed one only has its files written again, from its kept lines, to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import chain
from pathlib import Path
from uuid import UUID

from eventsourcing.application import Application

from clearing.application.carry_over import CarryOver
from clearing.application.collector import bulk_run
from clearing.application.cycle_close import CycleTally, cycle_lines, summarise
from clearing.application.cycle_scan import CycleScan
from clearing.application.ledger_movements import purse_movements
from clearing.application.pass_revenue import PASS_LOOKBACK_DAYS, PassEarning, passes_sold
from clearing.application.ports import CycleFiles, LineStore, RunLock
from clearing.application.revenue_lines import RevenueAttribution
from clearing.application.store import ClearingStore
from clearing.domain.business_day import day_end
from clearing.domain.cycle import ClearingCycle, CycleState, cycle_id
from clearing.domain.cycle_lines import CycleLine, line_key
from clearing.domain.errors import ClearingError
from clearing.domain.payouts import day_of_end_to_end_id
from clearing.domain.statements import BankStatement, ExpectedPayout, PayoutReport, match_payouts
from clearing.domain.terms import SettlementTerms

DISPUTE_REASON_MAX_CHARS = 200
# How long a run waits for another run to finish before it is refused.
RUN_LOCK_WAIT_S = 30.0


@dataclass(frozen=True)
class CycleRun:
    cycle: ClearingCycle
    files: list[Path]


@dataclass(frozen=True)
class Confirmation:
    """What one statement did to one cycle."""

    cycle: ClearingCycle
    report: PayoutReport
    changed: bool


@dataclass
class ClearingCycles:
    store: ClearingStore
    ledger: Application[UUID]
    journeys: Application[UUID]  # its log holds the card purses' payments
    attribution: RevenueAttribution
    terms: SettlementTerms
    lines: LineStore
    files: CycleFiles
    lock: RunLock
    clock: Callable[[], datetime]
    passes: PassEarning | None = None  # None: pass sales stay unearned

    def run(self, day: date) -> CycleRun:
        with self._one_run(), bulk_run():
            cycle = self._opened(day)
            if cycle.state is CycleState.OPEN:
                self._close(cycle)
            return CycleRun(cycle, self.files.write(cycle, self.lines.lines(day)))

    def cycle(self, day: date) -> ClearingCycle | None:
        return self.store.cycle_or_none(cycle_id(day))

    def cycles(self, limit: int | None = None) -> list[ClearingCycle]:
        """Every cycle, newest first; the newest `limit` when given."""
        book = self.store.book()
        found: list[ClearingCycle] = []
        day = book.next_day()
        last = date.fromisoformat(book.last_closed_day) if book.last_closed_day else None
        newest = day if book.open_day else last
        while newest is not None and (limit is None or len(found) < limit):
            cycle = self.cycle(newest)
            if cycle is None:
                break
            found.append(cycle)
            newest = newest - timedelta(days=1)
        return found

    def _opened(self, day: date) -> ClearingCycle:
        found = self.cycle(day)
        if found is not None:
            return found
        if self.clock() < day_end(day):
            raise DayNotOver(day)
        book = self.store.book()
        seq, position, purse_position = book.open_cycle(day)
        cycle = ClearingCycle(
            business_day=day.isoformat(),
            seq=seq,
            position=position,
            purse_position=purse_position,
        )
        self.store.save(book, cycle)
        return cycle

    def _close(self, cycle: ClearingCycle) -> None:
        day = cycle.day
        scan = CycleScan(self.ledger, cycle.position, day_end(day))
        purses = CycleScan(self.journeys, cycle.purse_position, day_end(day), purse_movements)
        book = self.store.book()
        carried = CarryOver(self.lines, self.ledger, self.journeys, self.attribution).carried(
            day, book
        )
        tally = CycleTally()
        movements = chain(scan, purses)

        def afterwards() -> Iterator[CycleLine]:
            # Run once the scans have ended: the passes earned need the purse cut-off.
            yield from carried.lines
            yield from self._passes_earned(cycle, purses.cut_off)

        self.lines.replace_lines(day, cycle_lines(movements, self.attribution, tally, afterwards()))
        summary = summarise(
            day=day,
            seq=cycle.seq,
            cut_off=scan.cut_off,
            purse_cut_off=purses.cut_off,
            tally=tally,
            terms=self.terms,
            balances=book.balances,
        )
        cycle.close(summary)
        closing = {o.operator_id: o.closing_vnd for o in summary.operators}
        book.close_cycle(
            day,
            summary.cut_off,
            summary.purse_cut_off,
            closing,
            carved=carried.carved,
            released=carried.released,
        )
        self.store.save(book, cycle)

    def _passes_earned(self, cycle: ClearingCycle, purse_cut_off: int) -> Iterator[CycleLine]:
        if self.passes is None:
            return
        back = self.cycle(cycle.day - timedelta(days=PASS_LOOKBACK_DAYS))
        start = back.purse_position if back is not None else 0
        for sold in passes_sold(self.journeys, start, purse_cut_off):
            earning = sold.earning_day
            if earning == cycle.day or (
                earning < cycle.day and sold.notification_id > cycle.purse_position
            ):
                yield from self.passes.lines(sold)

    def confirm(self, statement: BankStatement) -> list[Confirmation]:
        """Matches a statement against the payouts it can confirm: those it names by
        end-to-end id, and every payout due on its date (a cycle's payouts are executed the
        day after it). A payout it does not book is flagged missing; one booked differently
        is flagged with how. A cycle is settled once all its payouts are confirmed."""
        with self._one_run():
            outcomes = []
            for cycle in self._cycles_on(statement):
                outcomes.append(self._confirm_cycle(cycle, statement))
            return outcomes

    def _cycles_on(self, statement: BankStatement) -> list[ClearingCycle]:
        days = {statement.statement_date - timedelta(days=1)}
        for entry in statement.entries:
            named = day_of_end_to_end_id(entry.end_to_end_id)
            if named is not None:
                days.add(named)
        cycles = [self.cycle(day) for day in sorted(days)]
        return [c for c in cycles if c is not None and c.summary is not None]

    def _confirm_cycle(self, cycle: ClearingCycle, statement: BankStatement) -> Confirmation:
        summary = cycle.summary
        if summary is None:
            raise CycleNotReady(cycle.day)
        expected = [
            ExpectedPayout(p.end_to_end_id, p.operator_id, p.amount_vnd) for p in summary.payouts
        ]
        report = match_payouts(expected, statement)
        changed = False
        for payout, entry in report.confirmed:
            reference = entry.bank_reference or ""
            changed |= cycle.confirm_payout(payout.end_to_end_id, reference)
        due = statement.statement_date - timedelta(days=1) >= cycle.day
        for payout in report.missing:
            if due:
                reason = f"missing from the statement of {statement.statement_date.isoformat()}"
                changed |= cycle.flag_payout(payout.end_to_end_id, reason)
        for difference in report.different:
            changed |= cycle.flag_payout(difference.payout.end_to_end_id, difference.reason)
        if changed:
            self.store.save(cycle)
        return Confirmation(cycle, report, changed)

    def dispute(self, day: date, line_no: int, reason: str) -> bool:
        """Disputes an operator's line of a closed cycle: the next cycle carves it out to
        suspense. False when it is disputed already."""
        line = self._closed_line(day, line_no)
        if line.in_suspense:
            raise LineNotDisputable(day, line_no, "a suspense line is nobody's yet")
        if not reason.strip() or len(reason) > DISPUTE_REASON_MAX_CHARS:
            raise LineNotDisputable(day, line_no, "a dispute gives a reason of 1..200 characters")
        with self._one_run():
            book = self.store.book()
            if not book.dispute(line_key(day, line_no), reason.strip()):
                return False
            self.store.save(book)
            return True

    def release(self, day: date, line_no: int) -> bool:
        """Releases a carved-out dispute: the next cycle gives it back to its operator. False
        when it was asked already."""
        self._closed_line(day, line_no)
        with self._one_run():
            book = self.store.book()
            if not book.ask_release(line_key(day, line_no)):
                return False
            self.store.save(book)
            return True

    def _closed_line(self, day: date, line_no: int) -> CycleLine:
        cycle = self.cycle(day)
        if cycle is None or cycle.state is CycleState.OPEN:
            raise CycleNotReady(day)
        line = self.lines.line(day, line_no)
        if line is None:
            raise LineNotDisputable(day, line_no, "no such line")
        return line

    @contextmanager
    def _one_run(self) -> Iterator[None]:
        if not self.lock.acquire(wait_s=RUN_LOCK_WAIT_S):
            raise ClearingBusy()
        try:
            yield
        finally:
            self.lock.release()


class DayNotOver(ClearingError):
    """A day's cycle opens only when the day is over: movements of it may still come."""

    code = "day_not_over"

    def __init__(self, day: date) -> None:
        super().__init__(f"the business day {day.isoformat()} is not over yet")


class CycleNotReady(ClearingError):
    code = "cycle_not_closed"

    def __init__(self, day: date) -> None:
        super().__init__(f"the cycle of {day.isoformat()} is not closed")


class LineNotDisputable(ClearingError):
    code = "line_not_disputable"

    def __init__(self, day: date, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no} of {day.isoformat()}: {reason}")


class ClearingBusy(ClearingError):
    """Another clearing run holds the lock: runs are one at a time across every process."""

    code = "clearing_busy"

    def __init__(self) -> None:
        super().__init__("another clearing run is under way; try again when it has finished")
