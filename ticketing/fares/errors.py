"""Typed errors of the fare engine: a bad feed, and each reason a journey cannot be priced.

Every refusal has a stable `code` a validator or an app can show the rider, and a `reason` in words.
A fare is never silently 0: when the engine cannot price a journey, it raises one of these.
"""

from __future__ import annotations


class FeedError(Exception):
    """A fare feed file breaks the GTFS-Fares v2 rules or our extension: names file, row and field.

    `row` is the line number as a spreadsheet shows it (the header is line 1); 0 means the whole
    file.
    """

    code = "fare_feed_invalid"

    def __init__(self, file: str, row: int, field: str, message: str) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.message = message
        where = f"{file}, row {row}" if row else file
        super().__init__(f"{where}, field {field or '-'}: {message}")


class FareRefused(Exception):
    """The engine cannot price this journey; `reason` says why in words the rider can be told."""

    code = "fare_refused"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InvalidJourney(FareRefused):
    """The journey itself is malformed: no legs, naive times, legs out of order, too many legs."""

    code = "invalid_journey"


class UnknownFare(FareRefused):
    """No fare leg rule matches a leg: the feed does not say what this travel costs."""

    code = "unknown_fare"


class UnknownStop(UnknownFare):
    code = "unknown_stop"


class UnknownNetwork(UnknownFare):
    code = "unknown_network"


class UnknownRoute(UnknownFare):
    """The route is not in the feed, or the feed puts it in another network than the leg says."""

    code = "unknown_route"


class UnknownRiderCategory(UnknownFare):
    code = "unknown_rider_category"


class UnknownFareMedium(UnknownFare):
    code = "unknown_fare_medium"


class NoProductForRider(UnknownFare):
    """A rule matched, but its fare product is not sold to this rider category on this medium."""

    code = "no_product_for_rider"
