"""Where a journey stands, and what pays for it."""

from __future__ import annotations

from enum import StrEnum


class JourneyStatus(StrEnum):
    OPEN = "open"  # a leg waits for its exit (or alighting)
    EXIT_PENDING = "exit_pending"  # an exit arrived before its entry
    ENDED = "ended"  # every leg is complete and the fare charged
    CLOSED = "closed"  # the service day ended with a leg open: charged the maximum fare
    REFUSED = "refused"  # the fare engine could not price it; `reason` says why
    UNPAID = "unpaid"  # priced, but the ledger refused the charge; `reason` says why
    MERGED = "merged"  # a transfer found late: its legs moved into the journey before it


# A journey whose legs may move into the one before it (its transfer found late): an ended one,
# or one open on a leg that holds nothing yet (a bus ride not tapped off).
MOVES_FROM = frozenset({JourneyStatus.ENDED, JourneyStatus.OPEN})


class PaidFrom(StrEnum):
    ACCOUNT = "account"  # the transport account pays in the backend
    CARD_PURSE = "card_purse"  # the card's purse paid at the validator: priced, never posted
