"""How an ended session's fee is paid from its holds: a pure plan the application carries out.

Holds are used in the order they were placed: each is posted up to what is still owed and the
rest of it released, so for every session held = posted + released. What the holds cannot
cover (a stay past its paid end) is debited once under its own id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ticketing.shared.domain.invariants import require


@dataclass(frozen=True, slots=True)
class HoldUse:
    hold_id: str
    held_vnd: int
    post_vnd: int  # 0: the hold is voided whole

    @property
    def released_vnd(self) -> int:
        return self.held_vnd - self.post_vnd


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    uses: tuple[HoldUse, ...]
    rest_vnd: int  # owed beyond the holds

    @property
    def posted_vnd(self) -> int:
        return sum(use.post_vnd for use in self.uses)

    @property
    def released_vnd(self) -> int:
        return sum(use.released_vnd for use in self.uses)


def plan_settlement(holds: Sequence[tuple[str, int]], fee_vnd: int) -> SettlementPlan:
    """Plan the payment of `fee_vnd` from `holds` ((hold id, amount) in placing order)."""
    require(fee_vnd >= 0, "a fee is never negative")
    owed = fee_vnd
    uses: list[HoldUse] = []
    for hold_id, held_vnd in holds:
        require(held_vnd > 0, "a hold holds money")
        post = min(owed, held_vnd)
        uses.append(HoldUse(hold_id, held_vnd, post))
        owed -= post
    return SettlementPlan(tuple(uses), owed)
