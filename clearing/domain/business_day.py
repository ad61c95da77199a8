"""A clearing cycle's business day: a calendar day in Vietnam's time (Asia/Ho_Chi_Minh).

The day ends at the next local midnight. The cycle's cut-off is found from that instant (the
first money movement the ledger recorded at or after it opens the next cycle), but what a
cycle holds is then decided by the store's order alone: see `clearing/application/cycle_scan.py`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ticketing.shared.domain.invariants import require

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def day_start(day: date) -> datetime:
    """The business day's first instant: local midnight."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_ZONE)


def day_end(day: date) -> datetime:
    """The instant the business day ends: the next local midnight (exclusive)."""
    return day_start(day + timedelta(days=1))


def business_day_of(instant: datetime) -> date:
    """The business day an aware instant falls in."""
    require(instant.utcoffset() is not None, "an instant with no time zone has no business day")
    return instant.astimezone(LOCAL_ZONE).date()
