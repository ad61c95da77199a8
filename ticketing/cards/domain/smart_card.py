"""A physical TLC1 card (spec/CARD.md) as the backend knows it: whose it is, and its purse.

The purse lives on the card; the backend keeps the last state a verified session proved, and
every reload as an intent settled once: the money leaves the account only if the card took it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as BaseSnapshot
from eventsourcing.utils import register_topic

from ticketing.shared.domain.errors import DomainError
from ticketing.shared.domain.ids import url_uuid5

TOPIC_PREFIX = "ticketing.SmartCard"
SERIAL_HEX_CHARS = 16
# The card network a card is personalised into when the issuer names none: 0x0101, the network
# id the card format's own personalisation writes into the environment record (the trace of
# spec/card-vectors.json). A validator accepts only cards of its own card network, so this is
# also the default of a validator's registration. It is the card scheme's number (one for every
# bus route and metro line that takes the cards), not a fare feed network: see
# docs/validator-integration.md, "Card network and fare networks".
CARD_NETWORK_ID_DEFAULT = 0x0101
RELOADS_OPEN_MAX = 4


class SmartCardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    REPLACED = "replaced"


class ReloadOutcome(StrEnum):
    LOADED = "loaded"  # the card committed the INCREASE: post the account hold
    NOT_LOADED = "not_loaded"  # the card never did: void the hold


def check_serial(serial_hex: str) -> str:
    serial = serial_hex.lower()
    if len(serial) != SERIAL_HEX_CHARS or any(c not in "0123456789abcdef" for c in serial):
        raise InvalidSerial(serial_hex)
    return serial


class SmartCard(Aggregate):
    TOPIC = TOPIC_PREFIX

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC_PREFIX}.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = f"{TOPIC_PREFIX}.Created"

    class Issued(Created):
        TOPIC = f"{TOPIC_PREFIX}.Issued"
        serial: str
        account_id: UUID
        rider_category: int
        network_id: int
        at: datetime

    class PurseSeen(Event):
        TOPIC = f"{TOPIC_PREFIX}.PurseSeen"
        purse_vnd: int
        transaction_counter: int
        at: datetime

    class ReloadStarted(Event):
        TOPIC = f"{TOPIC_PREFIX}.ReloadStarted"
        reload_id: str
        amount_vnd: int
        purse_before_vnd: int
        at: datetime

    class ReloadSettled(Event):
        TOPIC = f"{TOPIC_PREFIX}.ReloadSettled"
        reload_id: str
        outcome: str
        purse_after_vnd: int
        at: datetime

    class Blocked(Event):
        TOPIC = f"{TOPIC_PREFIX}.Blocked"
        reason: str
        at: datetime

    class Replaced(Event):
        TOPIC = f"{TOPIC_PREFIX}.Replaced"
        replacement_serial: str
        carried_over_vnd: int
        at: datetime

    class Snapshot(BaseSnapshot):
        TOPIC = f"{TOPIC_PREFIX}.Snapshot"

    @staticmethod
    def create_id(serial: str) -> UUID:
        return url_uuid5(f"/tapledger/smart-cards/{serial.lower()}")

    @event(Issued)
    def __init__(
        self, serial: str, account_id: UUID, rider_category: int, network_id: int, at: datetime
    ) -> None:
        self.serial = serial
        self.account_id = account_id
        self.rider_category = rider_category
        self.network_id = network_id
        self.status_code = SmartCardStatus.ACTIVE.value
        self.purse_vnd = 0  # the last purse value a verified session showed
        self.transaction_counter: int | None = None
        # reload id -> {"amount_vnd", "purse_before_vnd"}: started, not yet settled.
        self.open_reloads: dict[str, dict[str, Any]] = {}

    @classmethod
    def issue(
        cls, *, serial: str, account_id: UUID, rider_category: int, network_id: int, at: datetime
    ) -> SmartCard:
        return cls(
            serial=check_serial(serial),
            account_id=account_id,
            rider_category=rider_category,
            network_id=network_id,
            at=at,
        )

    @property
    def status(self) -> SmartCardStatus:
        return SmartCardStatus(self.status_code)

    def see_purse(self, *, purse_vnd: int, transaction_counter: int, at: datetime) -> None:
        """Records a purse value proved by a verified session (a reload or a validation)."""
        if self.transaction_counter is not None and transaction_counter >= self.transaction_counter:
            # The counter only goes down; the same or a higher one is a replayed or cloned card.
            raise TransactionCounterReplayed(self.serial, transaction_counter)
        self._purse_seen(purse_vnd=purse_vnd, transaction_counter=transaction_counter, at=at)

    def see_validation(self, *, purse_vnd: int, transaction_counter: int, at: datetime) -> bool:
        """Records the purse a verified validation session left, unless this session is not
        newer than the last one recorded: taps reach the backend late and in any order, and a
        tap applied again brings its counter again. Returns whether it was recorded.

        Unlike `see_purse`, an old counter is no alarm here: the tap's verification already
        refused a replayed session, so an old counter is only a late upload."""
        if self.transaction_counter is not None and transaction_counter >= self.transaction_counter:
            return False
        self._purse_seen(purse_vnd=purse_vnd, transaction_counter=transaction_counter, at=at)
        return True

    @event(PurseSeen)
    def _purse_seen(self, purse_vnd: int, transaction_counter: int, at: datetime) -> None:
        self.purse_vnd = purse_vnd
        self.transaction_counter = transaction_counter

    def start_reload(
        self, *, reload_id: str, amount_vnd: int, purse_before_vnd: int, at: datetime
    ) -> None:
        self.check_active()
        if reload_id in self.open_reloads:
            return  # the same reload asked again: already started, one effect
        if len(self.open_reloads) >= RELOADS_OPEN_MAX:
            raise TooManyOpenReloads(self.serial)
        self._reload_started(
            reload_id=reload_id, amount_vnd=amount_vnd, purse_before_vnd=purse_before_vnd, at=at
        )

    @event(ReloadStarted)
    def _reload_started(
        self, reload_id: str, amount_vnd: int, purse_before_vnd: int, at: datetime
    ) -> None:
        self.open_reloads[reload_id] = {
            "amount_vnd": amount_vnd,
            "purse_before_vnd": purse_before_vnd,
        }

    def reload_outcome(self, *, reload_id: str, purse_after_vnd: int) -> ReloadOutcome:
        """Whether the card took the reload, from the purse it shows afterwards: the full
        amount added means it did, an unchanged purse means it did not."""
        reload = self.open_reloads.get(reload_id)
        if reload is None:
            raise ReloadNotOpen(reload_id)
        before, amount = reload["purse_before_vnd"], reload["amount_vnd"]
        if purse_after_vnd == before + amount:
            return ReloadOutcome.LOADED
        if purse_after_vnd == before:
            return ReloadOutcome.NOT_LOADED
        raise PurseUnexplained(self.serial, before, amount, purse_after_vnd)

    def settle_reload(self, *, reload_id: str, purse_after_vnd: int, at: datetime) -> ReloadOutcome:
        outcome = self.reload_outcome(reload_id=reload_id, purse_after_vnd=purse_after_vnd)
        self._reload_settled(
            reload_id=reload_id, outcome=outcome.value, purse_after_vnd=purse_after_vnd, at=at
        )
        return outcome

    @event(ReloadSettled)
    def _reload_settled(
        self, reload_id: str, outcome: str, purse_after_vnd: int, at: datetime
    ) -> None:
        del self.open_reloads[reload_id]
        self.purse_vnd = purse_after_vnd

    def block(self, *, reason: str, at: datetime) -> None:
        self.check_active()
        self._blocked(reason=reason[:140], at=at)

    @event(Blocked)
    def _blocked(self, reason: str, at: datetime) -> None:
        self.status_code = SmartCardStatus.BLOCKED.value

    def replace(self, *, replacement_serial: str, at: datetime) -> int:
        """Retires a lost card; returns the purse value carried over to the account."""
        if self.status is SmartCardStatus.REPLACED:
            raise SmartCardNotActive(self.serial, self.status)
        if self.open_reloads:
            raise ReloadsStillOpen(self.serial)
        carried = self.purse_vnd
        self._replaced(
            replacement_serial=check_serial(replacement_serial), carried_over_vnd=carried, at=at
        )
        return carried

    @event(Replaced)
    def _replaced(self, replacement_serial: str, carried_over_vnd: int, at: datetime) -> None:
        self.status_code = SmartCardStatus.REPLACED.value

    def check_active(self) -> None:
        if self.status is not SmartCardStatus.ACTIVE:
            raise SmartCardNotActive(self.serial, self.status)


register_topic(SmartCard.Snapshot.TOPIC, SmartCard.Snapshot)


class InvalidSerial(DomainError):
    code = "invalid_card_serial"

    def __init__(self, serial: str) -> None:
        super().__init__(f"card serial {serial[:40]!r} is not 8 bytes of hex")


class SmartCardNotFound(DomainError):
    code = "smart_card_not_found"

    def __init__(self, serial: str) -> None:
        super().__init__(f"no card with serial {serial}")


class SmartCardAlreadyIssued(DomainError):
    code = "smart_card_already_issued"

    def __init__(self, serial: str) -> None:
        super().__init__(f"card {serial} is already issued")


class SmartCardNotActive(DomainError):
    code = "smart_card_not_active"

    def __init__(self, serial: str, status: SmartCardStatus) -> None:
        super().__init__(f"card {serial} is {status}")


class TransactionCounterReplayed(DomainError):
    code = "transaction_counter_replayed"

    def __init__(self, serial: str, counter: int) -> None:
        super().__init__(f"card {serial} showed transaction counter {counter} again: cloned?")


class TooManyOpenReloads(DomainError):
    code = "too_many_open_reloads"

    def __init__(self, serial: str) -> None:
        super().__init__(f"card {serial} has reloads waiting to be settled")


class ReloadNotOpen(DomainError):
    code = "reload_not_open"

    def __init__(self, reload_id: str) -> None:
        super().__init__(f"reload {reload_id!r} is not waiting to be settled")


class ReloadsStillOpen(DomainError):
    code = "reloads_still_open"

    def __init__(self, serial: str) -> None:
        super().__init__(f"card {serial} has reloads to settle before it can be replaced")


class PurseUnexplained(DomainError):
    code = "purse_unexplained"

    def __init__(self, serial: str, before: int, amount: int, after: int) -> None:
        super().__init__(
            f"card {serial}: purse {after:,} VND is neither {before:,} nor {before + amount:,}"
        )
