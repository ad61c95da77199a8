"""Reading one feed file: CSV text to rows, and typed field readers that raise `FeedError`.

GTFS files are comma-separated with a header line; values are trimmed, an empty value is absent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import TypeVar

from ticketing.fares.errors import FeedError

FEED_ROWS_MAX = 200_000
FIELD_CHARS_MAX = 255
HEADER_LINE = 1
GTFS_DATE_FORMAT = "%Y%m%d"
TIME_PARTS = 3
TIME_OF_DAY_MAX_S = 24 * 3600
SEXAGESIMAL_MAX = 59

E = TypeVar("E", bound=Enum)


@dataclass(frozen=True)
class Row:
    file: str
    line: int
    values: dict[str, str]

    def error(self, field: str, message: str) -> FeedError:
        return FeedError(self.file, self.line, field, message)

    def optional(self, field: str) -> str | None:
        value = self.values.get(field, "")
        if len(value) > FIELD_CHARS_MAX:
            raise self.error(field, f"longer than {FIELD_CHARS_MAX} characters")
        return value or None

    def required(self, field: str) -> str:
        value = self.optional(field)
        if value is None:
            raise self.error(field, "is required and empty")
        return value

    def integer(self, field: str, minimum: int | None = None) -> int | None:
        text = self.optional(field)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise self.error(field, f"{text!r} is not an integer") from None
        if minimum is not None and value < minimum:
            raise self.error(field, f"{value} is below {minimum}")
        return value

    def enum(self, field: str, kind: type[E]) -> E | None:
        text = self.optional(field)
        if text is None:
            return None
        for member in kind:
            if str(member.value) == text:
                return member
        allowed = ", ".join(str(m.value) for m in kind)
        raise self.error(field, f"{text!r} is not one of {allowed}")

    def flag(self, field: str) -> bool:
        text = self.optional(field)
        if text not in (None, "0", "1"):
            raise self.error(field, f"{text!r} is not 0, 1 or empty")
        return text == "1"

    def date(self, field: str) -> date:
        text = self.required(field)
        try:
            return datetime.strptime(text, GTFS_DATE_FORMAT).date()
        except ValueError:
            raise self.error(field, f"{text!r} is not a YYYYMMDD date") from None

    def time_of_day_s(self, field: str, default_s: int) -> int:
        """A local time H:MM:SS as seconds after midnight; the spec forbids values past 24:00:00."""
        text = self.optional(field)
        if text is None:
            return default_s
        parts = text.split(":")
        if len(parts) != TIME_PARTS or not all(p.isdigit() for p in parts):
            raise self.error(field, f"{text!r} is not a time HH:MM:SS")
        hours, minutes, seconds = (int(p) for p in parts)
        if minutes > SEXAGESIMAL_MAX or seconds > SEXAGESIMAL_MAX:
            raise self.error(field, f"{text!r} is not a time HH:MM:SS")
        value = hours * 3600 + minutes * 60 + seconds
        if value > TIME_OF_DAY_MAX_S:
            raise self.error(field, f"{text!r} is after 24:00:00")
        return value


@dataclass(frozen=True)
class Table:
    file: str
    columns: frozenset[str]
    rows: tuple[Row, ...]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


def parse_table(file: str, text: str | None, required_columns: tuple[str, ...]) -> Table:
    """Parse a file's text; a missing file (None) is an empty table."""
    if text is None:
        return Table(file, frozenset(), ())
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = [name.strip() for name in next(reader, [])]
    if len(set(header)) != len(header):
        raise FeedError(file, HEADER_LINE, "", "a column name appears twice")
    for column in required_columns:
        if column not in header:
            raise FeedError(file, HEADER_LINE, column, "required column is missing")
    rows: list[Row] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) >= FEED_ROWS_MAX:
            raise FeedError(file, reader.line_num, "", f"more than {FEED_ROWS_MAX} rows")
        if len(cells) != len(header):
            raise FeedError(
                file, reader.line_num, "", f"{len(cells)} values for {len(header)} columns"
            )
        values = {name: cell.strip() for name, cell in zip(header, cells, strict=True)}
        rows.append(Row(file, reader.line_num, values))
    return Table(file, frozenset(header), tuple(rows))
