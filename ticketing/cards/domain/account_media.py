"""The media an account is reachable by: Hanoi allows one active medium per person at a time.

One small aggregate per account, saved with the cards it binds and retires, so two phones
registering at once cannot both end up active: one save loses the version race and retries.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.AccountMedia"


class AccountMedia(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Started(Created):
        TOPIC = f"{TOPIC_PREFIX}.Started"
        account_id: UUID
        at: datetime

    class VirtualCardBound(Event):
        TOPIC = f"{TOPIC_PREFIX}.VirtualCardBound"
        card_id: UUID
        at: datetime

    class VirtualCardUnbound(Event):
        TOPIC = f"{TOPIC_PREFIX}.VirtualCardUnbound"
        card_id: UUID
        at: datetime

    @staticmethod
    def create_id(account_id: UUID) -> UUID:
        return url_uuid5(f"/tapledger/accounts/{account_id}/media")

    @event(Started)
    def __init__(self, account_id: UUID, at: datetime) -> None:
        self.account_id = account_id
        # Oldest first; card ids as str, as a snapshot would restore them.
        self.active_virtual_cards: list[str] = []

    def bind_virtual_card(self, *, card_id: UUID, active_max: int, at: datetime) -> list[UUID]:
        """Binds a new card; returns the cards it displaces (oldest first) to be retired."""
        displaced = [UUID(c) for c in self.active_virtual_cards]
        displaced = displaced[: max(0, len(displaced) - active_max + 1)]
        for card_id_old in displaced:
            self._unbound(card_id=card_id_old, at=at)
        self._bound(card_id=card_id, at=at)
        return displaced

    @event(VirtualCardBound)
    def _bound(self, card_id: UUID, at: datetime) -> None:
        self.active_virtual_cards.append(str(card_id))

    def unbind_virtual_card(self, *, card_id: UUID, at: datetime) -> None:
        if str(card_id) in self.active_virtual_cards:
            self._unbound(card_id=card_id, at=at)

    @event(VirtualCardUnbound)
    def _unbound(self, card_id: UUID, at: datetime) -> None:
        self.active_virtual_cards.remove(str(card_id))
