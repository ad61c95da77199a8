"""The demo's last scene: once the simulated day is over, its clearing cycle runs, writes its
files under ./var/clearing/<date>/ and shows every party's position."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from clearing.adapters.cycle_files import DirectoryCycleFiles
from clearing.domain.business_day import business_day_of, day_end
from tapledger.bootstrap import Container
from tapledger.clearing_tables import positions_table
from tapledger.demo_clock import SimClock

# The cycle runs a few minutes into the next day, once the day's last movements are in.
RUN_AFTER_MIDNIGHT_MIN = 5


def clearing_scene(
    container: Container, clock: SimClock, console: Console, files_root: Path
) -> bool:
    """Runs the day's cycle into `files_root`; returns whether its positions add up to 0 VND
    and nothing of the day is left in suspense."""
    day = business_day_of(clock.now)
    container.catch_up()  # the journeys' last charges of the day
    clock.now = day_end(day) + timedelta(minutes=RUN_AFTER_MIDNIGHT_MIN)
    console.print(f"\n{clock.label()} the day is over: its clearing cycle runs")
    # The demo's store is its own (var/demo), but its cycle's files go where the product's do.
    cycles = replace(container.clearing, files=DirectoryCycleFiles(files_root))
    run = cycles.run(day)
    summary = run.cycle.summary
    if summary is None:
        return False
    console.print(positions_table(run.cycle))
    for path in run.files:
        console.print(f"  wrote {path}", markup=False, highlight=False)
    float_vnd = -(summary.revenue_vnd + summary.suspense_vnd)
    total = sum(o.net_vnd for o in summary.operators) + summary.suspense_vnd
    total += summary.commission_vnd + float_vnd
    console.print(
        f"positions add up to {total:,} VND; {summary.top_ups_vnd:,} VND of top-ups held for"
        f" riders, not revenue; {summary.suspense_lines} lines in suspense"
    )
    return total == 0 and summary.suspense_lines == 0
