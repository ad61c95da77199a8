"""The ledger's money movements of one clearing cycle, in the event store's order.

A cycle holds every money event the ledger committed after the previous cycle's cut-off (its
position, exclusive) up to its own cut-off (inclusive), by notification id: never by wall
clock, so an event committed after the cut lands in the next cycle whatever time it carries.
Each event is decoded with the ledger's own mapper, turned into a `Movement` and classified.
A movement the money map has no place for is yielded too, as suspense with its reason: it is
never dropped, and never taken for revenue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from clearing.domain.classification import Classification, Movement, classify
from clearing.domain.errors import CutOffBeyondHead, InvalidAmount, UnclassifiedMovement
from clearing.domain.movements import MONEY_EVENTS, LedgerEntry, ledger_entry, movement_of
from ticketing.shared.domain.invariants import InvariantViolated, require

# Notifications read in one query: the notification log's own section size (eventsourcing
# refuses more), a few hundred kilobytes of money events.
LEDGER_SECTION_MAX = 500
MONEY_TOPICS = tuple(sorted(get_topic(cls) for cls in MONEY_EVENTS))


@dataclass(frozen=True, slots=True)
class ClassifiedMovement:
    """One ledger movement of a cycle: its place in the money map, or why it has none."""

    notification_id: int
    movement: Movement
    classification: Classification | None  # None: in suspense
    suspense_reason: str = ""
    at: datetime | None = None  # when the ledger recorded it; None in tests of the rules alone

    def __post_init__(self) -> None:
        require(
            (self.classification is None) == bool(self.suspense_reason),
            "a movement is classified or in suspense with a reason, never both",
        )


def ledger_movements(
    ledger: Application[UUID], after: int, cut_off: int, *, section_max: int = LEDGER_SECTION_MAX
) -> Iterator[ClassifiedMovement]:
    """The money movements with notification ids in `after` < id <= `cut_off`, in id order.

    `CutOffBeyondHead` when the store has not committed `cut_off` yet."""
    require(0 <= after <= cut_off, "a cycle's position is at or below its cut-off")
    require(0 < section_max <= LEDGER_SECTION_MAX, "a section is bounded")
    head = ledger.recorder.max_notification_id() or 0
    if cut_off > head:
        raise CutOffBeyondHead(cut_off, head)
    start = after
    while start < cut_off:
        notifications = ledger.notification_log.select(
            start=start + 1, limit=section_max, stop=cut_off, topics=MONEY_TOPICS
        )
        for notification in notifications:
            require(start < notification.id <= cut_off, "notifications come in id order")
            start = notification.id
            event = ledger.mapper.to_domain_event(notification)
            entry = _money_entry(notification.id, event)
            yield _classified(notification.id, movement_of(entry), entry.at)
        if len(notifications) < section_max:
            return


def _money_entry(notification_id: int, event: object) -> LedgerEntry:
    entry = ledger_entry(notification_id, event)
    if entry is None:
        raise InvariantViolated("a notification of a money topic decodes to a money event")
    return entry


def _classified(notification_id: int, movement: Movement, at: datetime) -> ClassifiedMovement:
    try:
        return ClassifiedMovement(notification_id, movement, classify(movement), at=at)
    except UnclassifiedMovement as error:
        return ClassifiedMovement(notification_id, movement, None, error.reason, at)
    except InvalidAmount as error:
        return ClassifiedMovement(notification_id, movement, None, str(error), at)
