"""A ride and its transfer that reached the backend out of order, found when a journey ends:
the later journey's legs move into the earlier one, which the feed's transfer rules then price
as one journey; the later one's charges go back to the account and it is left `merged`. Two
journeys with a tap of the rider's between them (a ride never tapped off, an exit whose entry
never came) are not a ride and its transfer: the tap between was the rider's next move.

The later journey may still be open: on its next bus ride (a bus validator uploaded before the
metro gates did), or in a metro trip whose tap-off before it came late. An account-paid one
moves too (a trip's hold voided, and placed again on the earlier journey at its transfer
fare), and the earlier journey stays open on that leg, charged when it ends or at day end."""

from __future__ import annotations

from ticketing.journeys.application.charges import transfer_id, unused_step
from ticketing.journeys.application.fare_steps import reprice
from ticketing.journeys.application.order import transfer_between
from ticketing.journeys.application.tap_work import TRANSFER_JOIN_S, TapWork
from ticketing.journeys.domain.journey import JOURNEY_LEGS_MAX, Journey
from ticketing.journeys.domain.journey_status import JourneyStatus, PaidFrom


def merge_transfer(work: TapWork, journey: Journey) -> list[Journey]:
    """When this ended journey and another ended one of the rider are a ride and its
    transfer (the later began within `TRANSFER_JOIN_S` after the earlier ended) that reached
    the backend out of order, moves the later one's legs into the earlier one, so the feed's
    transfer rules price them together. The later journey's charges go back to the account
    and the earlier one charges the whole; the later is left `merged`."""
    if journey.status is not JourneyStatus.ENDED and not _open_on_last_leg(journey):
        return []  # (an open one has just taken a later journey's open leg)
    book = work.book
    keys = [book.last_ended, book.open_journey, *reversed(book.correctable)]
    for other in work.journeys(
        [k for k in dict.fromkeys(keys) if k not in (None, str(journey.id))]
    ):
        if (
            other.status not in (JourneyStatus.ENDED, JourneyStatus.OPEN)
            or other.paid_from is not journey.paid_from
            or other.fare_media != journey.fare_media
            or len(other.legs) + len(journey.legs) > JOURNEY_LEGS_MAX
        ):
            continue
        for earlier, later in ((other, journey), (journey, other)):
            # An account's later journey may still be open (a bus ride, or a trip and its
            # hold): the earlier then takes that leg too and stays open on it.
            movable = later.status is JourneyStatus.ENDED or _open_on_last_leg(later)
            if (
                earlier.status is JourneyStatus.ENDED
                and movable
                and transfer_between(earlier, later, TRANSFER_JOIN_S)
                and not _tapped_between(work, earlier, later)
            ):
                merged = _merge(work, earlier, later)
                # The joined journey may be the ride before another transfer in its turn.
                return [*merged, *(merge_transfer(work, earlier) if merged else [])]
    return []


def _merge(work: TapWork, earlier: Journey, later: Journey) -> list[Journey]:
    at = work.tap.at
    later_fare_vnd = later.fare_vnd
    # An open trip's hold is placed again on the journey that takes the trip, as its transfer.
    work.charger.void(later, at)
    work.charger.refund(later, later.charged_vnd, at, "merged")
    if later.charged_vnd != 0 or later.hold_id is not None:
        return []  # the ledger refused the void or the refund; the journeys stay as they are
    before_vnd = earlier.fare_vnd
    earlier.join_legs(later, at=at)
    later.merge_into(earlier.id, at=at)
    work.pricing.count(later, later_fare_vnd, at)
    reprice(work, earlier, before_vnd, step=f"merge:{len(earlier.legs)}")
    if not earlier.complete and earlier.last_leg.mode == "metro":
        most = work.pricing.max_fare(earlier)
        named = lambda step: transfer_id(earlier, step)  # noqa: E731
        step = unused_step(earlier, f"hold:{len(earlier.legs) - 1}", named)
        work.charger.hold(earlier, most.total_vnd - earlier.charged_vnd, step, at)
    gone, key = str(later.id), str(earlier.id)
    book = work.book
    correctable = list(book.correctable)
    if earlier.complete:
        open_journey = None if book.open_journey == gone else book.open_journey
        last_ended: str | None = key
    else:
        # It took the later one's open leg: it is the rider's open journey now, and one
        # open before stays known among those left open.
        open_journey = key
        last_ended = None if book.last_ended in (gone, key) else book.last_ended
        left = book.open_journey
        if left not in (None, gone, key) and left not in correctable:
            correctable.append(left)
    work.point(
        open_journey=open_journey,
        pending_exits=[k for k in book.pending_exits if k != gone],
        last_ended=last_ended,
        correctable=[k for k in correctable if k not in (gone, key)],
    )
    return [earlier, later]


def _tapped_between(work: TapWork, earlier: Journey, later: Journey) -> bool:
    """Whether the rider tapped between the end of `earlier` and the start of `later` (a bus
    boarding never tapped off, a metro exit waiting for its entry): then `later` is no transfer
    from `earlier`'s last ride, and the two are priced apart."""
    ended = earlier.last_leg.arrival
    began = later.legs[0].departure or later.legs[0].arrival
    return ended is not None and began is not None and work.tapped_within(ended, began)


def _open_on_last_leg(journey: Journey) -> bool:
    """Whether an account-paid journey is open on its last leg (only the last may be open),
    begun and not yet ended: a bus ride, which holds nothing, or a metro trip and its hold."""
    last = journey.last_leg
    return (
        journey.status is JourneyStatus.OPEN
        and journey.paid_from is PaidFrom.ACCOUNT
        and last.entry_tap is not None
        and last.exit_tap is None
    )
