"""Do the ledger and the journeys agree? Every transfer the journey follower makes carries an id
derived from its journey (`journey_charges`), and the journey records each one it made. So the
ledger's lines under a journey's ids and the journey's own list must be the same set, and a hold
still pending under a journey's id must be that journey's open hold.

The follower moves money on the ledger before it saves the journeys that record it, and a crash
in between is mended by applying the same taps again from the same state, which repeats the same
ids (the pricing lock makes it the same state). This check is how an operator sees that it was:
a transfer no journey records (money moved for a journey nobody keeps), a hold no open journey
owns, or a journey recording a transfer the ledger never made.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from ticketing.accounts.adapters.read_model import LedgerLine
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.journey_status import JourneyStatus

# The transfer ids `journey_charges` derives from a journey, as the ledger's lines show them.
_JOURNEY_REFERENCE = re.compile(
    r"^(?:journey:|top-up:journey-|top-up:purse-refund:)(?P<journey>[0-9a-f]{32})(?:[:-]|$)"
)
# What the journey records for each kind of ledger line, given the line's reference.
_RECORDED_AS: dict[str, Callable[[str], str]] = {
    "debit": lambda reference: reference,
    "top_up": lambda reference: reference,
    "hold_placed": lambda reference: reference,
    "hold_posted": lambda reference: f"{reference}:post",
    "hold_voided": lambda reference: f"{reference}:void",
}
_LEDGER_PREFIXES = ("journey:", "top-up:")
OPEN_STATUSES = (JourneyStatus.OPEN, JourneyStatus.EXIT_PENDING)


class Mismatch(StrEnum):
    NOT_RECORDED = "not_recorded"  # the ledger moved money under a journey's id; it has no record
    NOT_IN_LEDGER = "not_in_ledger"  # the journey records a transfer the ledger never made
    HOLD_NOT_OWNED = "hold_not_owned"  # a pending hold under a journey's id it does not hold open


@dataclass(frozen=True)
class Discrepancy:
    account_id: UUID
    journey_id: UUID
    mismatch: Mismatch
    transfer_id: str
    posted_delta_vnd: int = 0
    pending_delta_vnd: int = 0


def journey_of(reference: str) -> UUID | None:
    """The journey a ledger reference was derived from, if it was."""
    found = _JOURNEY_REFERENCE.match(reference)
    return None if found is None else UUID(hex=found["journey"])


def reconcile(
    lines: Iterable[LedgerLine],
    pending_holds: Iterable[tuple[UUID, str]],
    load: Callable[[UUID], Journey | None],
) -> list[Discrepancy]:
    """Every disagreement between the ledger's journey lines (and pending holds) and the journeys
    they name; empty when the two agree."""
    by_journey: dict[UUID, list[LedgerLine]] = defaultdict(list)
    for line in lines:
        journey_id = journey_of(line.reference)
        if journey_id is not None and line.kind in _RECORDED_AS:
            by_journey[journey_id].append(line)
    found: list[Discrepancy] = []
    for journey_id, journey_lines in by_journey.items():
        found.extend(_compare(journey_id, journey_lines, load(journey_id)))
    for account_id, hold_id in pending_holds:
        journey_id = journey_of(hold_id)
        if journey_id is None:
            continue
        journey = load(journey_id)
        if journey is None or journey.status not in OPEN_STATUSES or journey.hold_id != hold_id:
            found.append(Discrepancy(account_id, journey_id, Mismatch.HOLD_NOT_OWNED, hold_id))
    return found


def _compare(
    journey_id: UUID, lines: list[LedgerLine], journey: Journey | None
) -> Iterable[Discrepancy]:
    account_id = lines[0].account_id
    recorded = set() if journey is None else set(journey.transfers)
    in_ledger: set[str] = set()
    for line in lines:
        transfer_id = _RECORDED_AS[line.kind](line.reference)
        in_ledger.add(transfer_id)
        if transfer_id not in recorded:
            yield Discrepancy(
                line.account_id,
                journey_id,
                Mismatch.NOT_RECORDED,
                transfer_id,
                line.posted_delta_vnd,
                line.pending_delta_vnd,
            )
    for transfer_id in sorted(recorded - in_ledger):
        if transfer_id.startswith(_LEDGER_PREFIXES):
            yield Discrepancy(account_id, journey_id, Mismatch.NOT_IN_LEDGER, transfer_id)
