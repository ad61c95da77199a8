"""What the clearing use cases need from outside: where lines are kept, where files go, and one
run at a time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Protocol

from clearing.domain.cycle import ClearingCycle
from clearing.domain.cycle_lines import CycleLine


class LineStore(Protocol):
    def replace_lines(self, day: date, lines: Iterable[CycleLine]) -> None:
        """Keeps `lines` as the cycle's lines, in place of any kept before, in one
        transaction (a run killed midway leaves the previous lines or none)."""

    def lines(self, day: date, operator_id: str | None = None) -> Iterator[CycleLine]:
        """The cycle's lines in order; of one operator (or suspense: "") when given."""

    def line(self, day: date, line_no: int) -> CycleLine | None:
        """One line of a cycle, or None."""

    def open_suspense(self, before: date, most: int) -> list[tuple[date, CycleLine]]:
        """The suspense lines of earlier cycles no later line settles, with their days."""

    def search(
        self,
        day: date,
        *,
        operator_id: str | None,
        text: str = "",
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[CycleLine]]:
        """One page of the cycle's lines whose transaction id or reference holds `text`, and
        how many match in all."""


class CycleFiles(Protocol):
    def write(self, cycle: ClearingCycle, lines: Iterable[CycleLine]) -> list[Path]:
        """Writes the closed cycle's files from its kept lines, the same bytes every time;
        their paths."""

    def names(self, day: date) -> list[str]:
        """The names of the files the day's cycle has written, sorted; none before its run."""

    def path(self, day: date, name: str) -> Path:
        """Where the file `name` of `names(day)` is; a name not listed is a bug."""


class RunLock(Protocol):
    def acquire(self, *, wait_s: float) -> bool: ...

    def release(self) -> None: ...
