"""News that a cached decision is wrong: a token revoked, a card denied, the issuer keys changed.

Every worker caches what it checks most (a token's principal, the issuer keys, the deny list) so
a tap costs no query. Those caches lag a revocation until they expire, unless the process that
commits the change tells every other process at once. This module names the messages and the
port that carries them; `tapledger.invalidation` has the adapters (PostgreSQL LISTEN/NOTIFY
across processes, or in-process on the embedded SQLite store). The caches' own timers remain the
fallback when a message is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from ticketing.cards.adapters.card_views import SMART_CARD_DENY_S
from ticketing.cards.application.card_issuer import CERTIFICATE_LIFETIME_S
from ticketing.cards.domain.issuer_keys import IssuerKeyRing
from ticketing.cards.domain.smart_card import SmartCard
from ticketing.cards.domain.virtual_card import VirtualCard

# A card denied now has no certificate valid beyond the longest a certificate lives, so its
# pushed entry may be dropped after that; a physical card's lasts as long as the deny list
# serves it.
VIRTUAL_CARD_DENY_PUSHED_S = CERTIFICATE_LIFETIME_S
SMART_CARD_DENY_PUSHED_S = SMART_CARD_DENY_S
# Token ids named in one message; a device has few tokens, and a revocation names one.
TOKEN_IDS_PER_MESSAGE_MAX = 100


@dataclass(frozen=True)
class TokensRevoked:
    token_ids: tuple[str, ...]


@dataclass(frozen=True)
class CardDenied:
    """A card put on the deny list; its taps made at or after `listed_at` are refused."""

    card_id: UUID
    serial: str | None  # physical cards: what a validator reads from the card
    listed_at: datetime
    until: datetime


@dataclass(frozen=True)
class IssuerKeysChanged:
    """A key was added, retired or revoked: the key set must be read again before the next tap."""


@dataclass(frozen=True)
class MessagesMayBeLost:
    """The channel lost its connection: messages sent meanwhile never arrived, so every cache
    must be read again. Raised by the channel itself, never sent by a change."""


Invalidation = TokensRevoked | CardDenied | IssuerKeysChanged | MessagesMayBeLost
Subscriber = Callable[[Invalidation], None]


class InvalidationChannel(Protocol):
    """Carries invalidations to every subscriber of every process on the same store."""

    def publish(self, message: Invalidation) -> None:
        """Delivers to this process's subscribers before returning, and to the others' soon
        after (within milliseconds, from the same commit order)."""
        ...

    def subscribe(self, subscriber: Subscriber) -> None: ...


class LocalChannel:
    """One process's subscribers, called in the publisher's thread: the embedded SQLite store
    has one machine and, in `serve`, one process that answers requests."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, message: Invalidation) -> None:
        self.deliver(message)

    def deliver(self, message: Invalidation) -> None:
        for subscriber in self._subscribers:
            subscriber(message)


def encode(message: Invalidation) -> dict[str, Any]:
    if isinstance(message, TokensRevoked):
        return {"kind": "tokens_revoked", "token_ids": list(message.token_ids)}
    if isinstance(message, CardDenied):
        return {
            "kind": "card_denied",
            "card_id": str(message.card_id),
            "serial": message.serial,
            "listed_at": message.listed_at.isoformat(),
            "until": message.until.isoformat(),
        }
    if isinstance(message, IssuerKeysChanged):
        return {"kind": "issuer_keys_changed"}
    return {"kind": "messages_may_be_lost"}


def decode(text: str) -> Invalidation:
    """The message in `text`; raises `MalformedInvalidation` on anything else."""
    try:
        data = json.loads(text)
        kind = data["kind"]
        if kind == "tokens_revoked":
            return TokensRevoked(tuple(str(t) for t in data["token_ids"]))
        if kind == "card_denied":
            return CardDenied(
                card_id=UUID(data["card_id"]),
                serial=None if data["serial"] is None else str(data["serial"]),
                listed_at=datetime.fromisoformat(data["listed_at"]),
                until=datetime.fromisoformat(data["until"]),
            )
        if kind == "issuer_keys_changed":
            return IssuerKeysChanged()
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedInvalidation(str(error)) from None
    raise MalformedInvalidation(f"unknown kind {kind!r}")


def card_invalidations(
    events: Iterable[object], serial_of: Callable[[UUID], str]
) -> list[Invalidation]:
    """What the card issuer's committed events make stale: each denied card, and the key set
    once if any key changed. `serial_of` names a physical card's serial (its events do not)."""
    found: list[Invalidation] = []
    keys_changed = False
    for e in events:
        if isinstance(e, VirtualCard.Blocked | VirtualCard.Retired):
            listed_at: datetime = e.at
            until = listed_at + timedelta(seconds=VIRTUAL_CARD_DENY_PUSHED_S)
            found.append(CardDenied(e.originator_id, None, listed_at, until))
        elif isinstance(e, SmartCard.Blocked | SmartCard.Replaced):
            until = e.at + timedelta(seconds=SMART_CARD_DENY_PUSHED_S)
            serial = serial_of(e.originator_id).lower()
            found.append(CardDenied(e.originator_id, serial, e.at, until))
        elif isinstance(e, IssuerKeyRing.Event):
            keys_changed = True
    if keys_changed:
        found.append(IssuerKeysChanged())
    return found


class MalformedInvalidation(ValueError):
    code = "malformed_invalidation"
