"""A tap ready to store: verified, its event's state checked and encoded, its answer decided.

The tap path writes a tap's event from its checked state (`tap.recorded_state`), the bytes the
library's mapper would write for the `Tap.Recorded` object, without making the object; it then
only changes its mind about a tap when the store shows the tap's number or its use was taken
(`duplicate`, `used_twice`, `conflict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from ticketing.taps.domain.tap import (
    CODE_REPLAYED,
    RECORDED_VERSION,
    CardRefusal,
    Medium,
    Tap,
    Verdict,
    recorded_state,
    tap_id,
)
from ticketing.taps.domain.tap_conflict import TapConflict
from ticketing.taps.domain.tap_facts import TapFacts, tap_facts


class TapStatus(StrEnum):
    ACCEPTED = "accepted"  # recorded, and the backend verified it
    REFUSED = "refused"  # recorded, with the reason the backend refused it
    DUPLICATE = "duplicate"  # recorded before: this upload changed nothing
    # Another tap holds this number: this one is kept for review (`TapConflict`), not recorded.
    SEQ_CONFLICT = "seq_conflict"


@dataclass(frozen=True)
class TapResult:
    seq: int
    status: TapStatus
    tap_id: UUID
    reason: str | None = None  # why the backend refused it
    # A seq_conflict's `tap_id` is its `TapConflict`'s id, and this the tap holding the number.
    conflicts_with: UUID | None = None
    # This tap used up its QR code or card session (its first sighting): no tap can use it again.
    code_consumed: bool = False


Encode = Callable[[dict[str, Any]], bytes]
RECORDED_TOPIC = get_topic(Tap.Recorded)


@dataclass(frozen=True, slots=True)
class PreparedTap:
    """A verified tap: its event as the store keeps it, the use it claims (if any) and what the
    device is told. The event is written from its checked state (`recorded_state`), the bytes
    the library's mapper would write for the `Tap.Recorded` object, without making the object."""

    state: dict[str, Any]
    stored: StoredEvent
    use_id: UUID | None
    result: TapResult

    @classmethod
    def of(cls, facts: TapFacts, use_id: UUID | None, encode: Encode) -> PreparedTap:
        state = recorded_state(facts)
        tap = tap_id(state["validator_id"], state["seq"], state["epoch"])
        stored = StoredEvent(
            originator_id=tap,
            originator_version=RECORDED_VERSION,
            topic=RECORDED_TOPIC,
            state=encode(state),
        )
        refused = state["verification"] == Verdict.REFUSED.value
        result = TapResult(
            seq=state["seq"],
            status=TapStatus.REFUSED if refused else TapStatus.ACCEPTED,
            tap_id=tap,
            reason=state["refusal_reason"],
            code_consumed=use_id is not None,
        )
        return cls(state, stored, use_id, result)

    @property
    def tap_id(self) -> UUID:
        return self.result.tap_id

    def duplicate(self, claimed: Mapping[UUID, UUID]) -> TapResult:
        """This tap recorded before; `claimed` (use id -> tap) tells whether it used its code."""
        consumed = self.use_id is not None and claimed.get(self.use_id) == self.tap_id
        return TapResult(self.result.seq, TapStatus.DUPLICATE, self.tap_id, code_consumed=consumed)

    def used_twice(self, encode: Encode) -> PreparedTap:
        """The same tap refused because another tap already used its code or card session."""
        reason = (
            CODE_REPLAYED
            if self.state["medium"] == Medium.QR.value
            else CardRefusal.TRANSACTION_COUNTER_REPLAYED.value
        )
        facts = replace(
            tap_facts(self.state), verification=Verdict.REFUSED.value, refusal_reason=reason
        )
        return PreparedTap.of(facts, None, encode)

    def conflict(self, holder: UUID, mapper: Mapper[UUID]) -> PreparedTap:
        """This tap kept for review, since `holder`, another tap, holds its number."""
        conflict = TapConflict.record(
            self.state, conflicts_with=holder, recorded_at=self.state["recorded_at"]
        )
        (event,) = conflict.collect_events()
        result = TapResult(
            self.result.seq, TapStatus.SEQ_CONFLICT, conflict.id, conflicts_with=holder
        )
        return PreparedTap(vars(event), mapper.to_stored_event(event), None, result)

    @property
    def is_conflict(self) -> bool:
        return self.result.status is TapStatus.SEQ_CONFLICT
