"""A card re-tap after a tear, and the tap it recovers, as the journey follower books them.

A card torn from the field between its CLOSE and the ratifying READ paid, but the rider never saw
the green light; the re-tap is let through free at any validator of the network, and its session
proves the torn one again (spec/CARD.md, "Ratification"; `card_purses.card_payment`). The two
taps are one payment and one tap of a journey, whichever reaches the backend first: a session
one of the rider's journeys already holds changes nothing, and a re-tap whose torn tap is not
held stands for it, at the time and validator its card event names (`taps.apply_tap`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

from ticketing.cards.application.card_purses import CardPayment
from ticketing.journeys.domain.journey import Journey
from ticketing.journeys.domain.rider_journeys import RiderJourneys


def session_held(
    payment: CardPayment, book: RiderJourneys, load: Callable[[UUID], Journey | None]
) -> bool:
    """Whether one of the rider's journeys a tap can still reach holds the card session that
    `payment` proves: then the tap is that session again (a torn tap and its re-tap, a second
    re-tap, or a tap applied again). The torn tap is within seconds of its re-tap, so its
    journey is one the book points at: open, last ended, correctable or waiting for an entry."""
    proof = payment.proof
    if proof is None:
        return False
    return any(j.proves(proof) for j in _reachable(book, load))


def tap_held(tap: str, book: RiderJourneys, load: Callable[[UUID], Journey | None]) -> bool:
    """Whether one of the rider's journeys a tap can still reach has the tap `tap` among its
    legs: then the tap was applied already, and applying it again must change nothing. The
    Taps log holds each tap once and the pricing lock lets one follower apply it, so this is
    the last line: were a tap ever applied again on top of its own effects, its money steps
    would be computed from another state, under other ids, and charge twice."""
    return any(j.has_tap(tap) for j in _reachable(book, load, waiting=False))


def _reachable(
    book: RiderJourneys, load: Callable[[UUID], Journey | None], *, waiting: bool = True
) -> Iterator[Journey]:
    """The journeys a tap can still reach; `waiting` adds the exits waiting for their entry,
    which may be hundreds for one rider (`PENDING_EXITS_MAX`): too many to read for every tap,
    and an exit applied again while it waits would start the same journey (its id comes from
    the tap), which the store refuses to create twice, moving no money."""
    keys = [book.open_journey, book.last_ended, *book.correctable]
    if waiting:
        keys.extend(book.pending_exits)
    for key in dict.fromkeys(keys):
        if key is not None and (journey := load(UUID(key))) is not None:
            yield journey
