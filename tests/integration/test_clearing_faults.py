"""A clearing run killed with SIGKILL at each of its steps, in a real process on a SQLite store,
then run again: the files are the same bytes as an uninterrupted run's, the ledger is as it
was (clearing never writes to it), and the cycle and the book hold each event once."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from clearing.application.ledger_movements import ledger_movements
from clearing.domain.cycle import cycle_id
from tapledger.bootstrap import Container
from tests.builders.clearing_day import a_day
from tests.builders.journeys import register_validators
from tests.builders.parking import MORNING, parking_world
from tests.builders.product import local_product
from tests.clearing_kill import STEPS

DAY = MORNING.date()
ROOT = Path(__file__).parents[2]
# A run is a second or two; a hung one fails the test instead of hanging the suite.
RUN_TIMEOUT_S = 120


@dataclass(frozen=True)
class Outcome:
    files: dict[str, str]  # name -> SHA-256, the files of the day's directory
    ledger_movements: tuple[tuple[int, str, int], ...]  # id, reference, amount of each
    cycle_version: int
    book_version: int
    kept_lines: int


def run(data_dir: Path, step: str) -> int:
    """Runs the day's cycle in its own process, killed at `step`; its exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.clearing_kill", str(data_dir), DAY.isoformat(), step],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode in (0, -signal.SIGKILL), done.stderr.decode()
    return done.returncode


def money_moved(container: Container) -> tuple[tuple[int, str, int], ...]:
    """Every money movement on the ledger (the other applications share its log's ids)."""
    ledger = container.ledger
    head = ledger.recorder.max_notification_id() or 0
    return tuple(
        (item.notification_id, item.movement.reference, item.movement.amount_vnd)
        for item in ledger_movements(ledger, 0, head)
    )


def outcome(data_dir: Path) -> Outcome:
    directory = data_dir / "clearing" / DAY.isoformat()
    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.iterdir())
        if not path.name.startswith(".")  # a killed write's temporary file
    }
    with local_product(data_dir) as container:
        cycle = container.clearing.cycle(DAY)
        assert cycle is not None
        book = container.clearing.store.book()
        total, _ = container.clearing.lines.search(DAY, operator_id=None, limit=1)
        assert container.clearing.store.repository.get(cycle_id(DAY)).version == cycle.version
        return Outcome(
            files=files,
            ledger_movements=money_moved(container),
            cycle_version=cycle.version,
            book_version=book.version,
            kept_lines=total,
        )


@pytest.fixture(scope="module")
def a_day_stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome]:
    """The store of a day, before any clearing; and the outcome of one run that nothing cut."""
    template = tmp_path_factory.mktemp("day") / "data"
    with parking_world(template) as world:
        register_validators(world.container.taps)
        a_day(world)
    clean = template.parent / "clean"
    shutil.copytree(template, clean)
    assert run(clean, "none") == 0
    return template, outcome(clean)


# What a kill at each step leaves: the cycle's state, lines kept, files in place.
LEFT_BY_KILL = {
    "after-open": ("open", 0, set()),
    "mid-lines": ("open", 0, set()),  # the lines' transaction never committed
    "after-lines": ("open", 9, set()),
    "after-close": ("closed", 9, set()),
    "mid-files": ("closed", 9, {"lines-hanoi-metro.csv", "positions.csv"}),
}


def left_by_kill(data_dir: Path) -> tuple[str, int, set[str]]:
    directory = data_dir / "clearing" / DAY.isoformat()
    names = {p.name for p in directory.iterdir()} if directory.exists() else set()
    with local_product(data_dir) as container:
        cycle = container.clearing.cycle(DAY)
        assert cycle is not None
        total, _ = container.clearing.lines.search(DAY, operator_id=None, limit=1)
    return cycle.state.value, total, names


@pytest.mark.parametrize("step", [step for step in STEPS if step != "none"])
def test_a_run_killed_at_any_step_and_run_again_ends_as_one_run(
    a_day_stored: tuple[Path, Outcome], tmp_path: Path, step: str
) -> None:
    template, clean = a_day_stored
    data_dir = tmp_path / "data"
    shutil.copytree(template, data_dir)
    with local_product(data_dir) as container:
        moved_before = money_moved(container)

    assert run(data_dir, step) == -signal.SIGKILL
    state, kept, names = left_by_kill(data_dir)
    expected_state, expected_kept, expected_names = LEFT_BY_KILL[step]
    assert (state, kept) == (expected_state, expected_kept)
    assert expected_names <= names
    assert "SHA256SUMS" not in names
    assert run(data_dir, "none") == 0

    after = outcome(data_dir)
    assert after == clean
    assert after.ledger_movements == moved_before  # clearing never posts to the ledger
    assert (after.cycle_version, after.book_version) == (2, 3)  # opened, closed; each once


def test_a_run_that_finished_run_again_changes_nothing(
    a_day_stored: tuple[Path, Outcome], tmp_path: Path
) -> None:
    template, clean = a_day_stored
    data_dir = tmp_path / "data"
    shutil.copytree(template, data_dir)

    assert run(data_dir, "none") == 0
    assert run(data_dir, "none") == 0

    assert outcome(data_dir) == clean
