"""Physical cards in the backend: issue, reload exactly once, block, replace (use cases).

A reload spans two stores (the account ledger and the card's history) and a card that may leave
the field at any moment, so every step is idempotent and ordered so that a retry finishes it:
the account hold first (keyed by the reload id), then the card's record of the intent; at the end,
the purse the card shows decides whether the hold is posted or voided.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import PlaceHold, PostHold, TopUp, VoidHold
from ticketing.accounts.domain.errors import HoldAlreadyResolved
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.domain.smart_card import (
    CARD_NETWORK_ID_DEFAULT,
    ReloadOutcome,
    SmartCard,
    SmartCardAlreadyIssued,
    SmartCardNotFound,
    check_serial,
)
from ticketing.shared.optimistic import save_with_retries

# A reload's hold waits this long for the card to be seen again before the money is released.
RELOAD_HOLD_TTL_S = 24 * 3600
# Hanoi's card network on the card's environment record (see CARD_NETWORK_ID_DEFAULT).
NETWORK_ID_DEFAULT = CARD_NETWORK_ID_DEFAULT


def reload_hold_id(reload_id: str) -> str:
    return f"reload-{reload_id}"


class SmartCards:
    """Use cases on physical cards; their events live in the `Cards` application's store."""

    def __init__(self, cards: CardIssuer, ledger: Ledger) -> None:
        self.cards = cards
        self.ledger = ledger

    def now(self) -> datetime:
        return self.cards.now()

    def get(self, serial: str) -> SmartCard:
        serial = check_serial(serial)
        try:
            card: object = self.cards.repository.get(SmartCard.create_id(serial))
        except AggregateNotFoundError:
            raise SmartCardNotFound(serial) from None
        if not isinstance(card, SmartCard):
            raise SmartCardNotFound(serial)
        return card

    def issue(
        self, account_id: UUID, *, serial: str, network_id: int = NETWORK_ID_DEFAULT
    ) -> SmartCard:
        """Registers a card to an account; the terminal then writes its environment record."""
        account = self.ledger.get_account(account_id)
        account.check_open()
        card = SmartCard.issue(
            serial=serial,
            account_id=account_id,
            rider_category=int(account.rider_category),
            network_id=network_id,
            at=self.now(),
        )
        try:
            self.cards.save(card)
        except IntegrityError:
            raise SmartCardAlreadyIssued(card.serial) from None
        return card

    def start_reload(
        self, serial: str, *, reload_id: str, amount_vnd: int, purse_before_vnd: int
    ) -> None:
        """Holds the amount on the account and records the intent; safe to repeat."""
        card = self.get(serial)
        card.check_active()
        self.ledger.execute(
            PlaceHold(
                card.account_id,
                reload_hold_id(reload_id),
                amount_vnd,
                RELOAD_HOLD_TTL_S,
                f"reload of card {card.serial}",
            )
        )

        def change(card: SmartCard, at: datetime) -> None:
            card.start_reload(
                reload_id=reload_id, amount_vnd=amount_vnd, purse_before_vnd=purse_before_vnd, at=at
            )

        self._change(serial, change)

    def settle_reload(
        self, serial: str, *, reload_id: str, purse_after_vnd: int, transaction_counter: int
    ) -> ReloadOutcome:
        """Settles a reload from the purse a verified session shows afterwards: posts the
        hold when the card took the money, voids it when the card never did."""
        card = self.get(serial)
        outcome = card.reload_outcome(reload_id=reload_id, purse_after_vnd=purse_after_vnd)
        command = (
            PostHold(card.account_id, reload_hold_id(reload_id))
            if outcome is ReloadOutcome.LOADED
            else VoidHold(card.account_id, reload_hold_id(reload_id))
        )
        try:
            self.ledger.execute(command)
        except HoldAlreadyResolved as error:
            # A retry after the ledger step succeeded and the card's save did not.
            expected = "posted" if outcome is ReloadOutcome.LOADED else "voided"
            if error.outcome != expected:
                raise

        def change(card: SmartCard, at: datetime) -> None:
            if reload_id in card.open_reloads:
                card.settle_reload(reload_id=reload_id, purse_after_vnd=purse_after_vnd, at=at)
            if card.transaction_counter is None or transaction_counter < card.transaction_counter:
                card.see_purse(
                    purse_vnd=purse_after_vnd, transaction_counter=transaction_counter, at=at
                )

        self._change(serial, change)
        return outcome

    def record_session(self, serial: str, *, purse_vnd: int, transaction_counter: int) -> None:
        """Records the purse a verified validation session showed; a repeated counter is
        refused (a cloned or rolled-back card)."""
        self._change(
            serial,
            lambda card, at: card.see_purse(
                purse_vnd=purse_vnd, transaction_counter=transaction_counter, at=at
            ),
        )

    def record_validation(self, serial: str, *, purse_vnd: int, transaction_counter: int) -> bool:
        """Records the purse a verified tap's session left, once: the same session again, or
        one older than the last recorded, changes nothing. Returns whether it was recorded."""
        if not self._is_newer(serial, transaction_counter):
            return False
        recorded: list[bool] = []
        self._change(
            serial,
            lambda card, at: recorded.append(
                card.see_validation(
                    purse_vnd=purse_vnd, transaction_counter=transaction_counter, at=at
                )
            ),
        )
        return recorded[-1]

    def _is_newer(self, serial: str, transaction_counter: int) -> bool:
        known = self.get(serial).transaction_counter
        return known is None or transaction_counter < known

    def block(self, serial: str, *, reason: str) -> SmartCard:
        """Puts the card's serial on the deny list."""
        return self._change(serial, lambda card, at: card.block(reason=reason, at=at))

    def replace(self, serial: str, *, replacement_serial: str) -> SmartCard:
        """Replaces a lost card: its last known purse goes back to the account, the new card is
        registered to the same account, and the old serial is denied."""
        old = self.get(serial)
        carried = old.purse_vnd
        if carried:
            self.ledger.execute(TopUp(old.account_id, carried, f"carry-over-{old.serial}"))

        def attempt() -> SmartCard:
            old = self.get(serial)
            at = self.now()
            old.replace(replacement_serial=replacement_serial, at=at)
            new = SmartCard.issue(
                serial=replacement_serial,
                account_id=old.account_id,
                rider_category=old.rider_category,
                network_id=old.network_id,
                at=at,
            )
            try:
                self.cards.save(old, new)
            except IntegrityError:
                if SmartCard.create_id(new.serial) in self.cards.repository:
                    raise SmartCardAlreadyIssued(new.serial) from None
                raise  # the old card changed first: read it again
            return new

        return save_with_retries(attempt, what="the card")

    def _change(self, serial: str, change: Callable[[SmartCard, datetime], object]) -> SmartCard:
        def attempt() -> SmartCard:
            card = self.get(serial)
            change(card, self.now())
            self.cards.save(card)
            return card

        return save_with_retries(attempt, what="the card")
