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

from clearing.adapters.log_reads import log_events, log_fields
from clearing.domain.classification import Classification, Movement, MovementKind, classify
from clearing.domain.errors import CutOffBeyondHead, InvalidAmount, UnclassifiedMovement
from clearing.domain.movements import MONEY_EVENTS, entry_fields, entry_of, movement_of
from ticketing.journeys.domain.journey import Journey
from ticketing.shared.domain.invariants import InvariantViolated, require

# Notifications read in one query from a notification log: its own section size (eventsourcing
# refuses more), a few hundred kilobytes of money events. PostgreSQL is read in larger pages.
LEDGER_SECTION_MAX = 500
MONEY_TOPICS = tuple(sorted(get_topic(cls) for cls in MONEY_EVENTS))
PURSE_TOPICS = (get_topic(Journey.PursePaid),)


@dataclass(frozen=True, slots=True)
class ClassifiedMovement:
    """One ledger movement of a cycle: its place in the money map, or why it has none."""

    notification_id: int
    movement: Movement
    classification: Classification | None  # None: in suspense
    suspense_reason: str = ""
    at: datetime | None = None  # when the ledger recorded it; None in tests of the rules alone
    # The journey a card purse's payment belongs to (purse payments are the journeys' events).
    journey_id: UUID | None = None

    def __post_init__(self) -> None:
        require(
            (self.classification is None) == bool(self.suspense_reason),
            "a movement is classified or in suspense with a reason, never both",
        )


def ledger_movements(
    ledger: Application[UUID], after: int, cut_off: int, *, section_max: int = LEDGER_SECTION_MAX
) -> Iterator[ClassifiedMovement]:
    """The money movements with notification ids in `after` < id <= `cut_off`, in id order.

    `CutOffBeyondHead` when the store has not committed `cut_off` yet. Only the fields an
    entry is made of are decoded (`entry_fields`): a day has millions of money events."""
    _check_range(ledger, after, cut_off, section_max)
    money = log_fields(ledger, after, cut_off, MONEY_TOPICS, section_max, _money_fields)
    for notification_id, account_id, cls, state in money:
        entry = entry_of(notification_id, MONEY_EVENTS[cls], account_id, state)
        yield _classified(notification_id, movement_of(entry), entry.at)


def selected(
    app: Application[UUID],
    after: int,
    cut_off: int,
    topics: tuple[str, ...],
    section_max: int = LEDGER_SECTION_MAX,
) -> Iterator[tuple[int, object]]:
    """The events of `topics` in `app`'s log with ids in `after` < id <= `cut_off`, in id
    order, decoded, a page at a time (`log_reads`). `CutOffBeyondHead` when the log has not
    reached `cut_off`."""
    _check_range(app, after, cut_off, section_max)
    yield from log_events(app, after, cut_off, topics, section_max)


def _check_range(app: Application[UUID], after: int, cut_off: int, section_max: int) -> None:
    require(0 <= after <= cut_off, "a cycle's position is at or below its cut-off")
    require(0 < section_max <= LEDGER_SECTION_MAX, "a section is bounded")
    head = app.recorder.max_notification_id() or 0
    if cut_off > head:
        raise CutOffBeyondHead(cut_off, head)


def _money_fields(cls: type[object]) -> tuple[str, ...]:
    kind = MONEY_EVENTS.get(cls)
    if kind is None:
        raise InvariantViolated("a notification of a money topic decodes to a money event")
    return entry_fields(kind)


def _classified(
    notification_id: int, movement: Movement, at: datetime, journey_id: UUID | None = None
) -> ClassifiedMovement:
    try:
        classification = classify(movement)
    except UnclassifiedMovement as error:
        return ClassifiedMovement(notification_id, movement, None, error.reason, at, journey_id)
    except InvalidAmount as error:
        return ClassifiedMovement(notification_id, movement, None, str(error), at, journey_id)
    return ClassifiedMovement(notification_id, movement, classification, "", at, journey_id)


def purse_movements(
    journeys: Application[UUID], after: int, cut_off: int
) -> Iterator[ClassifiedMovement]:
    """The card purses' payments at validators (`Journey.PursePaid`) in the journeys' log,
    with ids in `after` < id <= `cut_off`: money that left a card, not an account, so the
    ledger never sees it. Its movement's account id is the journey's id (a purse payment
    names no account), and the journey it belongs to is carried for its attribution."""
    for notification_id, event in selected(journeys, after, cut_off, PURSE_TOPICS):
        if not isinstance(event, Journey.PursePaid):
            raise InvariantViolated("a notification of the purse topic decodes to a payment")
        journey_id = event.originator_id
        movement = Movement(
            journey_id, MovementKind.PURSE_PAID, f"purse:{event.tap_id}", event.amount_vnd
        )
        yield _classified(notification_id, movement, event.at, journey_id)
