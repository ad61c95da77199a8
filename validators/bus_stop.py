"""Where a bus is when a rider taps: the stop its validator names with each tap.

A bus validator is registered at one stop, but the bus moves. The stop it is at comes from the
bus: the driver's console or the GPS unit writes the fare feed's id of the stop it is at (or
last passed) to a small file, one line, replacing it whole (write a new file, then rename it
over the old one, so a tap never reads half an id). The validator reads the file at each tap,
again only when it changed, and uploads the stop with the tap; the backend prices the leg from
there (`ticketing.journeys.application.tap_work.tap_stop`). With no file, an empty one, or one
that holds no stop id, the tap names no stop and the registration's stop stands.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ticketing.taps.domain.tap import STOP_ID_MAX_CHARS, STOP_ID_PATTERN

# More than any stop id and its line end; a longer file is not a stop file.
STOP_FILE_BYTES_MAX = 256

StopSource = Callable[[], "str | None"]


def no_stop() -> str | None:
    """A validator told nothing of where it is: its registration says it."""
    return None


class StopFile:
    """The stop in `path`, re-read when the file changes; None while it names none."""

    def __init__(self, path: Path, *, on_error: Callable[[str], None]) -> None:
        self._path = path
        self._on_error = on_error
        self._seen: tuple[int, int, int] | None = None
        self._stop: str | None = None

    def __call__(self) -> str | None:
        try:
            status = os.stat(self._path)
        except OSError:
            self._seen, self._stop = None, None
            return None
        seen = (status.st_ino, status.st_mtime_ns, status.st_size)
        if seen != self._seen:
            self._seen = seen
            self._stop = self._read()
        return self._stop

    def _read(self) -> str | None:
        try:
            with open(self._path, "rb") as file:
                raw = file.read(STOP_FILE_BYTES_MAX + 1)
        except OSError as error:
            self._on_error(f"stop file {self._path}: {error}")
            return None
        text = raw.decode("ascii", errors="replace").strip()
        if not text:
            return None
        if (
            len(raw) > STOP_FILE_BYTES_MAX
            or len(text) > STOP_ID_MAX_CHARS
            or not STOP_ID_PATTERN.fullmatch(text)
        ):
            self._on_error(
                f"stop file {self._path} holds no stop id (1..{STOP_ID_MAX_CHARS} printable"
                " characters without spaces); taps name no stop until it does"
            )
            return None
        return text
