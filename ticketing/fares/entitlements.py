"""Our extension at pricing time: which held pass covers a fare leg, how a cap limits a journey,
and the validity a pass product gets when bought (EXTENSION.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ticketing.fares.feed import CapPeriod, FareCap, Feed, PassPeriod, RouteScope
from ticketing.fares.journey import HeldPass
from ticketing.fares.matching import FareLeg

MONTHS_PER_YEAR = 12


def covering_pass(feed: Feed, leg: FareLeg, held: Sequence[HeldPass]) -> HeldPass | None:
    """The first held pass valid at the leg's departure on every network (and route) of the leg."""
    for candidate in held:
        product = feed.passes.get(candidate.fare_product_id)
        if product is None or not candidate.valid_from <= leg.departure < candidate.valid_until:
            continue
        if not all(part.network_id in product.network_ids for part in leg.legs):
            continue
        if product.route_scope is RouteScope.ONE and any(
            part.route_id != candidate.route_id for part in leg.legs
        ):
            continue
        return candidate
    return None


def apply_caps(
    caps: Sequence[FareCap], rider_category_id: str, amount_vnd: int, spent: Mapping[CapPeriod, int]
) -> tuple[int, str | None]:
    """The amount after the tightest cap of the rider's category, and that cap's id if it bit."""
    limiting: str | None = None
    for cap in caps:
        if cap.rider_category_id not in (None, rider_category_id):
            continue
        remaining = max(0, cap.cap_vnd - spent.get(cap.period, 0))
        if remaining < amount_vnd:
            amount_vnd, limiting = remaining, cap.cap_id
    return amount_vnd, limiting


def pass_validity(
    feed: Feed, fare_product_id: str, bought_at: datetime, timezone: ZoneInfo | None = None
) -> tuple[datetime, datetime]:
    """Valid from purchase to the end of the local calendar day (day pass) or month (month pass).

    Local is the feed's timezone (agency.txt). A `timezone` given replaces it; it is kept for
    callers written when every feed was on Hanoi time, and should be left out.
    """
    product = feed.passes[fare_product_id]
    local = bought_at.astimezone(ZoneInfo(feed.timezone) if timezone is None else timezone)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if product.period is PassPeriod.DAY:
        end = (day_start + timedelta(days=1)).replace(hour=0)
        return bought_at, end
    month_start = day_start.replace(day=1)
    if month_start.month == MONTHS_PER_YEAR:
        end = month_start.replace(year=month_start.year + 1, month=1)
    else:
        end = month_start.replace(month=month_start.month + 1)
    return bought_at, end
