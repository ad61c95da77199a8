"""The fare steps of applying a tap: a journey priced and charged once its leg ends, or priced
again after its legs were paired again or joined, the difference settled on the ledger."""

from __future__ import annotations

from datetime import datetime

from ticketing.fares.errors import FareRefused
from ticketing.fares.journey import Fare
from ticketing.journeys.application.pricing import covering_passes
from ticketing.journeys.application.standalone_fares import StandaloneFares
from ticketing.journeys.application.tap_work import TapWork
from ticketing.journeys.domain.journey import Journey


def charge(work: TapWork, journey: Journey, fare: Fare, *, closed: bool) -> None:
    """Charges a journey whose last leg just ended its fare; a journey the day-end close
    charged the maximum is corrected to it, the difference refunded."""
    at = work.tap.at
    if closed:
        journey.correct(fare_vnd=fare.total_vnd, at=at)
    record_fare(journey, fare, at, work.pricing.standalone_fares())
    if closed:
        refund_vnd = journey.charged_vnd - fare.total_vnd
        work.charger.refund(journey, refund_vnd, at)
    else:
        step = f"leg:{len(journey.legs) - 1}"
        work.charger.settle(journey, fare.total_vnd, step, at)
    work.charger.refund_purse(journey, at)


def reprice(work: TapWork, journey: Journey, before_vnd: int | None, *, step: str = "") -> bool:
    """Prices a journey whose legs were paired again or joined, its complete legs when the
    last is open, and settles the difference under ledger step `step` (by default the
    journey's repair count); False when the engine refused it."""
    complete = journey.legs if journey.complete else journey.legs[:-1]
    if not complete:
        return True
    at = work.tap.at
    try:
        fare = work.pricing.price(journey, complete)
    except FareRefused as error:
        work.charger.void(journey, at)
        journey.refuse(code=error.code, reason=error.reason, at=at)
        return False
    record_fare(journey, fare, at, work.pricing.standalone_fares())
    work.charger.adjust(journey, fare.total_vnd, step or f"repair:{journey.repairs}", at)
    work.charger.refund_purse(journey, at)
    work.pricing.count(journey, before_vnd, at)
    return True


def record_fare(journey: Journey, fare: Fare, at: datetime, standalone: StandaloneFares) -> None:
    """Records the journey's fare, with each leg's standalone fare (what clearing splits its
    money by) and the feed that priced them."""
    journey.price(
        fare_vnd=fare.total_vnd,
        reference_vnd=fare.reference_total_vnd,
        transfer_discount_vnd=fare.transfer_discount_vnd,
        at=at,
        pass_product_ids=covering_passes(fare),
        cap_id=fare.cap_id,
        leg_fares=standalone.leg_fares(journey.legs, journey.rider_category, journey.fare_media),
        feed_version=standalone.feed_version,
    )
