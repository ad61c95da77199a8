"""When an attendant's action happened: now, or the time a handheld queued it while offline."""

from __future__ import annotations

from datetime import datetime

from parking.domain.errors import ActionTimeOutOfRange
from parking.domain.limits import HANDHELD_CLOCK_SKEW_MAX, HANDHELD_OFFLINE_MAX


def acted_at(stamped: datetime | None, now: datetime) -> datetime:
    """The time an action takes effect: its stamp when it is in [now - the offline limit, now]
    (a stamp a little ahead of now, within the clock skew, counts as now), else refused."""
    if stamped is None:
        return now
    if stamped > now + HANDHELD_CLOCK_SKEW_MAX:
        raise ActionTimeOutOfRange(f"{stamped.isoformat()} is later than now")
    if stamped < now - HANDHELD_OFFLINE_MAX:
        raise ActionTimeOutOfRange(
            f"{stamped.isoformat()} is more than {HANDHELD_OFFLINE_MAX} ago: too old to apply"
        )
    return min(stamped, now)
