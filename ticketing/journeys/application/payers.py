"""Who pays for a tap: the account behind its medium, and whether the card's purse paid.

A virtual card and a smart card are issued to one account and never move to another, and an
account's rider category is fixed when it opens, so each is read from its store once per process
(bounded by `PAYERS_CACHED_MAX`). Only the account's id and rider category are used here: a
balance read from the cached account would be stale, and nothing reads one.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.account import TransportAccount
from ticketing.cards.application.card_issuer import CardIssuer
from ticketing.cards.application.smart_cards import SmartCards
from ticketing.journeys.domain.journey_status import PaidFrom

# Media and accounts remembered per process; past it, the memory starts again empty.
PAYERS_CACHED_MAX = 100_000
# Card taps the card itself paid for (validators.card_validation.Outcome): charged to its purse
# there, paid at the metro entry the exit closes, paid before a tear, or covered by a pass held
# on the card (its contract was sold and paid for at the desk, so the ride costs the account
# nothing; the journey is priced and records a purse payment of 0).
PURSE_PAID_DEVICE_REASONS = frozenset(
    {"charged", "paid_at_entry", "retap_after_tear", "paid_by_contract"}
)

K = TypeVar("K")
V = TypeVar("V")


class Payers:
    def __init__(self, cards: CardIssuer, smart_cards: SmartCards, ledger: Ledger) -> None:
        self.cards = cards
        self.smart_cards = smart_cards
        self.ledger = ledger
        self._media: dict[object, UUID] = {}
        self._accounts: dict[UUID, TransportAccount] = {}

    def payer(self, tap: Any) -> tuple[TransportAccount, PaidFrom]:
        """The account and how it pays; raises a `LedgerError` when the medium has none."""
        if tap.medium == "qr":
            paid_from = PaidFrom.ACCOUNT
        elif tap.device_reason in PURSE_PAID_DEVICE_REASONS:
            paid_from = PaidFrom.CARD_PURSE
        else:
            paid_from = PaidFrom.ACCOUNT
        return self._account(self._account_id(tap)), paid_from

    def _account_id(self, tap: Any) -> UUID:
        key: object = tap.card_id if tap.medium == "qr" else ("serial", tap.serial)
        if key not in self._media:
            if tap.medium == "qr":
                account_id = self.cards.get_virtual_card(tap.card_id).account_id
            else:
                account_id = self.smart_cards.get(tap.serial).account_id
            _bounded(self._media)[key] = account_id
        return self._media[key]

    def _account(self, account_id: UUID) -> TransportAccount:
        if account_id not in self._accounts:
            _bounded(self._accounts)[account_id] = self.ledger.get_account(account_id)
        return self._accounts[account_id]


def _bounded(memory: dict[K, V]) -> dict[K, V]:
    if len(memory) >= PAYERS_CACHED_MAX:
        memory.clear()
    return memory
