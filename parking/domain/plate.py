"""Vietnamese licence plates, read from whatever an attendant typed or a scanner produced.

A plate is a province code (two digits, 11..99), a series and a number of 4 (older plates) or
5 digits. A car's series is one or two letters (`29A-123.45`, `30LD-123.45`, `Đ` read as `D`);
a motorbike's is a letter and a digit (`29-B1 123.45`) or two letters. Spaces, hyphens and dots
are ignored, except that one right after a letter and a digit (`29-B1 1234`, `29B1-1234`) says
that digit belongs to the series; without such a separator, a letter followed by five digits is
read as a car plate (`29B11234` is `29B-112.34`), the form every new plate takes. Accepted forms
are listed in `docs/parking-tariffs.md`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parking.domain.errors import PlateUnreadable
from parking.domain.limits import PLATE_TEXT_MAX_CHARS

SEPARATORS = " -."
PROVINCE_MIN = 11
# Province, series letters, then every digit left (the series digit and the number together).
_COMPACT = re.compile(r"(\d{2})([A-Z]{1,2})(\d{4,6})")
# A letter and one digit closed by a separator: the digit is the series's (`29-B1 1234`).
_SERIES_DIGIT_MARKED = re.compile(r"\d{2}[ .-]*[A-Z]\d[ .-]")
_TWO_LETTERS_AND_DIGIT_MARKED = re.compile(r"\d{2}[ .-]*[A-Z]{2}\d[ .-]")


@dataclass(frozen=True, slots=True)
class Plate:
    province: str
    series: str
    number: str

    @property
    def compact(self) -> str:
        """The key a plate is known by: `29A12345`, `29B112345`."""
        return f"{self.province}{self.series}{self.number}"

    @property
    def display(self) -> str:
        """As printed on one line: `29A-123.45`, `29-B1 123.45`, `29A-1234`."""
        number = self.number if len(self.number) == 4 else f"{self.number[:3]}.{self.number[3:]}"
        if self.series[-1].isdigit():
            return f"{self.province}-{self.series} {number}"
        return f"{self.province}{self.series}-{number}"

    def __str__(self) -> str:
        return self.display


def normalise_plate(text: str) -> Plate:
    """Read a plate, or raise `PlateUnreadable` saying why."""
    if len(text) > PLATE_TEXT_MAX_CHARS:
        raise PlateUnreadable(text, f"longer than {PLATE_TEXT_MAX_CHARS} characters")
    # Joint-venture series are written "LĐ" as often as "LD"; the key spells it D.
    upper = text.strip().upper().replace("Đ", "D")
    compact = "".join(char for char in upper if char not in SEPARATORS)
    if not compact:
        raise PlateUnreadable(text, "it is empty")
    if not (compact.isascii() and compact.isalnum()):
        raise PlateUnreadable(text, "only letters, digits, spaces, hyphens and dots may appear")
    matched = _COMPACT.fullmatch(compact)
    if matched is None:
        raise PlateUnreadable(text, "expected a province code, a series and a 4- or 5-digit number")
    if _TWO_LETTERS_AND_DIGIT_MARKED.match(upper) is not None:
        raise PlateUnreadable(text, "a series is two letters or a letter and a digit, not both")
    province, letters, digits = matched.groups()
    if int(province) < PROVINCE_MIN:
        raise PlateUnreadable(text, f"province code {province} is not in {PROVINCE_MIN}..99")
    series_digit = len(letters) == 1 and (
        len(digits) == 6 or (len(digits) == 5 and _SERIES_DIGIT_MARKED.match(upper) is not None)
    )
    if series_digit:
        letters, digits = letters + digits[0], digits[1:]
    if len(digits) == 6:
        raise PlateUnreadable(text, "a two-letter series is followed by 4 or 5 digits, not 6")
    return Plate(province, letters, digits)
