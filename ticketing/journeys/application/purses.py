"""The purses a section of card taps left, recorded on the cards' records in one save.

Recording each card tap's purse in a transaction of its own cost the journey follower a read and
a write of the card per tap, three times the cost of pricing the tap. A section's purses are
instead recorded together, after its ledger batch committed and before its tracking save: a
crash in between applies the section again, which records nothing twice (`see_validation` keys
the record by the session's counter), and a section the ledger refused records nothing, since it
is thrown away before this point.

The cards are remembered between sections (`LogCheckedCache` over the card store, so a card
another writer changed is read again). A writer that changes one of the section's cards after
it was read (a top-up at a desk, a block) makes the one save fail on the store's optimistic
check; each card of the section is then recorded alone, re-reading it and retrying under
contention (`SmartCards.record_validation`), so no purse is lost and the follower goes on.
"""

from __future__ import annotations

import logging
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ticketing.accounts.domain.errors import LedgerError
from ticketing.cards.application.card_purses import PurseObservation, SectionPurses
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.shared.log_checked_cache import LogCheckedCache

# Cards remembered between sections (a few hundred bytes each).
PURSE_CARDS_CACHED_MAX = 20_000

log = logging.getLogger(__name__)


class PurseRecorder:
    """Records the newest purse of each card of a section, once."""

    def __init__(
        self, smart_cards: SmartCards, *, cached_max: int = PURSE_CARDS_CACHED_MAX
    ) -> None:
        self._smart_cards = smart_cards
        self._cache = LogCheckedCache(smart_cards.cards, size_max=cached_max)

    def record(self, purses: SectionPurses) -> int:
        """Records what `purses` holds that is newer than each card's record, in one save of
        the card store; returns how many cards' purses were recorded."""
        if not len(purses):
            return 0
        self._cache.refresh()
        observations = purses.newest()
        changed = self._see_all(observations)
        if not changed:
            return 0
        try:
            recordings = self._smart_cards.cards.save(*changed)
        except IntegrityError:
            # Another writer changed one of these cards since it was read.
            self._cache.forget(card.id for card in changed)
            return self._record_each(observations)
        except BaseException:
            self._cache.forget(card.id for card in changed)
            raise
        self._cache.saved(recordings)
        return len(changed)

    def _see_all(self, observations: list[PurseObservation]) -> list[SmartCard]:
        """The cards whose record the observations make newer, changed in memory."""
        at = self._smart_cards.now()
        changed: list[SmartCard] = []
        for observation in observations:
            card = self._card(observation.serial)
            if card is None:
                # A card the backend verified is always issued; keep going, loudly.
                log.warning("purse of card %s not recorded: no such card", observation.serial)
                continue
            if card.see_validation(
                purse_vnd=observation.purse_vnd,
                transaction_counter=observation.transaction_counter,
                at=at,
            ):
                changed.append(card)
        return changed

    def _record_each(self, observations: list[PurseObservation]) -> int:
        recorded = 0
        for observation in observations:
            try:
                recorded += self._smart_cards.record_validation(
                    observation.serial,
                    purse_vnd=observation.purse_vnd,
                    transaction_counter=observation.transaction_counter,
                )
            except LedgerError as error:
                log.warning("purse of card %s not recorded: %s", observation.serial, error)
        return recorded

    def _card(self, serial: str) -> SmartCard | None:
        found = self._cache.get(SmartCard.create_id(serial), self._load)
        return found if isinstance(found, SmartCard) else None

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            found: Aggregate = self._smart_cards.cards.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found
