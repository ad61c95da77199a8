"""The fare feed the settings name (TAPLEDGER_FARE_FEED_DIR), loaded and checked before anything
else starts: a process that cannot price a tap must not accept one."""

from __future__ import annotations

from tapledger.settings import Settings
from ticketing.fares.engine import FareEngine
from ticketing.fares.errors import FeedError
from ticketing.fares.loader import load_feed

SETTING = "TAPLEDGER_FARE_FEED_DIR"


class FareFeedUnusable(Exception):
    """The configured fare feed cannot be loaded; the message names the setting, the file, the
    line and the field, and says why."""

    code = "fare_feed_unusable"


def load_fares(settings: Settings) -> FareEngine:
    """A fare engine over the configured feed, or `FareFeedUnusable` saying what to mend."""
    directory = settings.fare_feed_dir
    if not directory.exists():
        raise FareFeedUnusable(f"{SETTING}: {directory} does not exist")
    if not directory.is_dir():
        raise FareFeedUnusable(f"{SETTING}: {directory} is not a directory")
    try:
        feed = load_feed(directory)
    except FeedError as error:
        # FeedError.row is the file's line number (the header is line 1); 0 means the whole file.
        line = f", line {error.row}" if error.row else ""
        field = f", field {error.field}" if error.field else ""
        where = f"{directory / error.file}{line}{field}"
        raise FareFeedUnusable(f"{SETTING}: {where}: {error.message}") from error
    return FareEngine(feed)
