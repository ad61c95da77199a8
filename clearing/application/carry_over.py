"""What a cycle carries from the cycles before it: suspense placed, disputes carved out and
disputes released. Each carried line names the earlier line it settles (`resolves`), and comes
in pairs that move money between suspense and an operator, so the positions still sum to 0.

- **Suspense placed.** Every suspense line of an earlier cycle that no later line settles is
  tried again: its movement is read from its log and attributed as it would be now (a journey
  the follower had not written yet, an operator added to the map). When it attributes, the
  operators' lines are this cycle's, and a suspense line of the opposite sign takes the amount
  out of suspense. When it does not, it stays open, and is tried again by the next cycle.
- **A dispute carved out.** A disputed operator line: the operator's amount back (its opposite)
  and the same amount into suspense, code `disputed`.
- **A dispute released.** The carved amount out of suspense and back to the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from uuid import UUID

from eventsourcing.application import Application

from clearing.application.cycle_close import kept_line
from clearing.application.ledger_movements import (
    ClassifiedMovement,
    ledger_movements,
    purse_movements,
)
from clearing.application.ports import LineStore
from clearing.application.revenue_lines import OperatorLine, RevenueAttribution
from clearing.domain.book import ClearingBook, DisputeState
from clearing.domain.classification import Origin
from clearing.domain.cycle_lines import SUSPENSE_OPERATOR, CycleLine, line_key, parse_line_key
from clearing.domain.errors import ClearingError
from ticketing.shared.domain.invariants import InvariantViolated

# Open suspense a cycle tries again. Suspense is the exception (a few lines a day); this many
# open at once is an incident for the scheme's staff, not for a cycle to carry silently.
OPEN_SUSPENSE_MAX = 100_000
PLACED = "placed"
DISPUTED = "disputed"
RELEASED = "released"
RELEASE_PREFIX = "released:"
_NUMBER = 1  # carried lines are numbered when they are streamed after the cycle's own


@dataclass
class Carried:
    lines: list[CycleLine] = field(default_factory=list)
    carved: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CarryOver:
    lines: LineStore
    ledger: Application[UUID]
    journeys: Application[UUID]
    attribution: RevenueAttribution

    def carried(self, day: date, book: ClearingBook) -> Carried:
        carried = Carried()
        for earlier_day, line in self.lines.open_suspense(day, OPEN_SUSPENSE_MAX):
            if line.suspense_code != DISPUTED:
                carried.lines += self._placed(earlier_day, line)
        for key, reason in book.disputes_in(DisputeState.RAISED):
            carried.lines += _carved(self._line(key), key, reason)
            carried.carved.append(key)
        for key, _ in book.disputes_in(DisputeState.RELEASE_ASKED):
            carried.lines += _released(self._line(key), key)
            carried.released.append(key)
        return carried

    def _line(self, key: str) -> CycleLine:
        day, line_no = parse_line_key(key)
        found = self.lines.line(day, line_no)
        if found is None:
            raise InvariantViolated(f"a disputed line {key} is kept")
        return found

    def _placed(self, earlier_day: date, line: CycleLine) -> list[CycleLine]:
        item = self._movement(line)
        if item is None:
            return []
        try:
            attributed = self.attribution.lines_of(item)
        except ClearingError:
            return []
        if not attributed or not all(isinstance(a, OperatorLine) for a in attributed):
            return []
        key = line_key(earlier_day, line.line_no)
        placed = [replace(kept_line(_NUMBER, item, a), resolves=key) for a in attributed]
        if sum(a.amount_vnd for a in placed) != line.amount_vnd:
            return []  # placed for another amount than it held: left for staff to look at
        out = replace(
            line,
            amount_vnd=-line.amount_vnd,
            suspense_code=PLACED,
            reason="placed with its operators",
            resolves=key,
            line_no=_NUMBER,
        )
        return [*placed, out]

    def _movement(self, line: CycleLine) -> ClassifiedMovement | None:
        notification_id = line.notification_id
        if line.origin == Origin.TAP.value:
            found = list(purse_movements(self.journeys, notification_id - 1, notification_id))
        else:
            found = list(ledger_movements(self.ledger, notification_id - 1, notification_id))
        return found[0] if found else None


def _carved(line: CycleLine, key: str, reason: str) -> list[CycleLine]:
    if line.in_suspense:
        raise InvariantViolated("only an operator's line is disputed")
    back = replace(line, amount_vnd=-line.amount_vnd, resolves=key, line_no=_NUMBER)
    held = replace(
        line,
        operator_id=SUSPENSE_OPERATOR,
        suspense_code=DISPUTED,
        reason=f"disputed: {reason}"[:500],
        resolves=key,
        line_no=_NUMBER,
    )
    return [back, held]


def _released(line: CycleLine, key: str) -> list[CycleLine]:
    settles = f"{RELEASE_PREFIX}{key}"
    out = replace(
        line,
        operator_id=SUSPENSE_OPERATOR,
        amount_vnd=-line.amount_vnd,
        suspense_code=RELEASED,
        reason="dispute released to the operator",
        resolves=settles,
        line_no=_NUMBER,
    )
    again = replace(line, resolves=settles, line_no=_NUMBER)
    return [out, again]
