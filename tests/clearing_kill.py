"""A clearing run killed with SIGKILL at a chosen step, for the fault tests.

`python -m tests.clearing_kill <data dir> <day> <step>` builds the product on the SQLite store
in `<data dir>` (as `tapledger clearing run` does) and runs the day's cycle with its ports
wrapped so the process kills itself, with SIGKILL, at `step`:

| step | where the run dies |
|---|---|
| `after-open` | the cycle and the book saved as opened, nothing else |
| `mid-lines` | inside the transaction keeping the lines, after `MID_LINES` of them |
| `after-lines` | the lines kept, the cycle not closed |
| `after-close` | the cycle and the book saved as closed, no file written |
| `mid-files` | the line files renamed into place, the positions written, the rest not |
| `none` | nowhere: the run ends normally |

Nothing here is in the product: the kill points are wrappers around the ports it is built
from, so the code under test is the code that runs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import clearing.adapters.cycle_files as cycle_files
from clearing.application.ports import LineStore
from clearing.domain.cycle_lines import CycleLine
from tapledger.bootstrap import bootstrap
from tests.builders.settings import ExplicitSettings

STEPS = ("after-open", "mid-lines", "after-lines", "after-close", "mid-files", "none")
MID_LINES = 3


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingLines:
    """The line store, with the process killed midway through or just after keeping lines."""

    def __init__(self, inner: LineStore, step: str) -> None:
        self.inner = inner
        self.step = step

    def replace_lines(self, day: date, lines: Iterable[CycleLine]) -> None:
        self.inner.replace_lines(day, self._lines(lines))
        if self.step == "after-lines":
            die()

    def _lines(self, lines: Iterable[CycleLine]) -> Iterator[CycleLine]:
        for n, line in enumerate(lines, start=1):
            yield line
            if self.step == "mid-lines" and n == MID_LINES:
                die()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def main(data_dir: Path, day: date, step: str) -> None:
    if step not in STEPS:
        raise SystemExit(f"step is one of {', '.join(STEPS)}")
    container = bootstrap(ExplicitSettings(environment="local", data_dir=data_dir))
    cycles = container.clearing
    store_save = cycles.store.save
    saves = 0

    def save(*aggregates: Any, **kwargs: Any) -> Any:
        nonlocal saves
        saves += 1
        recordings = store_save(*aggregates, **kwargs)
        if (step, saves) in {("after-open", 1), ("after-close", 2)}:
            die()
        return recordings

    cycles.store.save = save  # type: ignore[method-assign]
    replaced = 0
    replace_file = cycle_files._replace

    def replace_then_die(path: Path, data: bytes) -> None:
        nonlocal replaced
        replace_file(path, data)
        replaced += 1
        if step == "mid-files" and replaced == 1:
            die()

    cycle_files._replace = replace_then_die
    lines: LineStore = KillingLines(cycles.lines, step)
    cycles = replace(cycles, lines=lines)
    try:
        cycles.run(day)
    finally:
        container.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), date.fromisoformat(sys.argv[2]), sys.argv[3])
