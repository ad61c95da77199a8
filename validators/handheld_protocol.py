"""The handheld's line protocol on stdin: one command a line, as an attendant types it and a
keyboard-wedge scanner types a code (the code's text, then Enter).

    start <plate> <class> <hours> [<TL1 code>]   start a session paid for <hours> by the code
    end <plate>                                  end the plate's open session in the lot
    check <plate>                                is the plate paid here now? (asked, not queued)
    flush                                        send the queued actions now
    TL1:...                                      a code scanned on its own line: the next
                                                 `start` without a code is paid by it
    help                                         this list

Words are separated by spaces; a plate may hold spaces (`29 A 123 45`), since it is what lies
between the command and the words after it. A code is everything from `TL1:` to the end of the
line, as the scanner typed it (its Base45 may hold spaces). Commands are case-insensitive;
blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ticketing.tl1.layout import TEXT_PREFIX

# A line longer than any command with a code (a TL1 text is 298 characters) is not one.
LINE_MAX_CHARS = 512
# The backend's bound on a plate's text (parking.domain.limits.PLATE_TEXT_MAX_CHARS).
PLATE_MAX_CHARS = 20
# The vehicle classes parking prices (parking.domain.tariff.VehicleClass); the backend decides.
VEHICLE_CLASSES = ("motorbike", "car", "large")
HOURS_MAX = 24
# A start names a plate (one word or more), a class and hours.
START_WORDS_MIN = 3
MINUTES_PER_HOUR = 60
USAGE = (
    "start <plate> <motorbike|car|large> <hours> [<TL1 code>] · end <plate> · check <plate>"
    " · flush · a TL1 code alone on a line is kept for the next start"
)


@dataclass(frozen=True)
class Start:
    plate: str
    vehicle_class: str
    minutes: int
    code: str | None  # None: the code scanned on its own line before


@dataclass(frozen=True)
class End:
    plate: str


@dataclass(frozen=True)
class Check:
    plate: str


@dataclass(frozen=True)
class Scanned:
    code: str


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Help:
    pass


Command = Start | End | Check | Scanned | Flush | Help


class BadLine(Exception):
    """A line that is no command; nothing is queued for it. `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_line(line: str) -> Command | None:
    """The command on one line of stdin, None for a blank or comment line; raises `BadLine`."""
    text = line.rstrip("\r\n")
    if len(text) > LINE_MAX_CHARS:
        raise BadLine("line_too_long", f"a line holds at most {LINE_MAX_CHARS} characters")
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith(TEXT_PREFIX):
        return Scanned(stripped)
    verb, _, rest = stripped.partition(" ")
    verb = verb.lower()
    if verb == "start":
        return _start(rest)
    if verb in ("end", "check"):
        plate = _plate(rest.split())
        return End(plate) if verb == "end" else Check(plate)
    if verb == "flush" and not rest.strip():
        return Flush()
    if verb == "help" and not rest.strip():
        return Help()
    raise BadLine("unknown_command", f"not a command: {verb!r}; {USAGE}")


def _start(rest: str) -> Start:
    head, marker, code = rest.partition(TEXT_PREFIX)
    words = head.split()
    if len(words) < START_WORDS_MIN:
        raise BadLine("start_incomplete", "start <plate> <class> <hours> [<TL1 code>]")
    *plate_words, vehicle_class, hours = words
    vehicle_class = vehicle_class.lower()
    if vehicle_class not in VEHICLE_CLASSES:
        raise BadLine(
            "vehicle_class_unknown", f"class {vehicle_class!r} is not one of {VEHICLE_CLASSES}"
        )
    return Start(
        _plate(plate_words),
        vehicle_class,
        _minutes(hours),
        (marker + code).strip() if marker else None,
    )


def _plate(words: list[str]) -> str:
    plate = " ".join(words)
    if not plate:
        raise BadLine("plate_missing", "a plate is needed")
    if len(plate) > PLATE_MAX_CHARS or not plate.isprintable():
        raise BadLine("plate_unreadable", f"a plate is 1..{PLATE_MAX_CHARS} printable characters")
    return plate


def _minutes(hours: str) -> int:
    try:
        amount = Decimal(hours)
    except InvalidOperation:
        raise BadLine("hours_invalid", f"hours {hours!r} is not a number") from None
    if not amount.is_finite() or not 0 < amount <= HOURS_MAX:
        raise BadLine("hours_invalid", f"hours must be more than 0 and at most {HOURS_MAX}")
    minutes = int((amount * MINUTES_PER_HOUR).to_integral_value())
    if minutes < 1:
        raise BadLine("hours_invalid", "a stay is at least a minute")
    return minutes
