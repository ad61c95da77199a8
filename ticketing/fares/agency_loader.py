"""The feed's local time: the `agency_timezone` of agency.txt, which every agency must share.

The engine reads timeframes and pass validity on this clock and shows it as
`FareEngine.timezone`, for the code that cuts service days and cap periods. A feed without
agency.txt is in `DEFAULT_TIMEZONE`, the zone of the built-in Hanoi feed.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketing.fares.errors import FeedError
from ticketing.fares.feed import DEFAULT_TIMEZONE
from ticketing.fares.tables import Row, Table

AGENCY_FILE = "agency.txt"
COLUMNS: dict[str, tuple[str, ...]] = {AGENCY_FILE: ("agency_timezone",)}


def timezone(table: Table) -> str:
    """The IANA timezone name every agency of the feed gives."""
    if not table.columns:
        return DEFAULT_TIMEZONE
    found: str | None = None
    for row in table:
        name = row.required("agency_timezone")
        if found is None:
            _check_zone(row, name)
            found = name
        elif name != found:
            raise row.error(
                "agency_timezone",
                f"{name!r} differs from {found!r}: every agency of a feed has the same timezone",
            )
    if found is None:
        raise FeedError(AGENCY_FILE, 0, "agency_timezone", "lists no agency")
    return found


def _check_zone(row: Row, name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: a key shaped like a path ("/etc/localtime", "../x") is no zone name.
        raise row.error("agency_timezone", f"{name!r} is not an IANA timezone") from None
