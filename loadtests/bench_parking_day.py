"""A day of parking sessions on PostgreSQL through the handhelds' batch use case: every start,
extension and end of the day, uploaded a hundred actions at a time, and the money checked.

Riders' accounts are opened and funded first (not timed), the day is planned (`parking_day_plan`:
four Hanoi lots, a share of stays extended, a few overstaying), then applied upload by upload
through `ActionBatches.apply` in this process on a fresh PostgreSQL database. Written to
docs/benchmarks.md between its markers: throughput (sessions and actions a second), the
process's CPU time a session, p50/p99 latency of an upload, and peak memory. The run fails
(exit 1) when any session's money does not add up.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from loadtests import report
from loadtests.parking_day_drive import (
    LOTS,
    DayRun,
    SteppedClock,
    build,
    check_money,
    day_start,
    drop_database,
    fresh_database,
    open_riders,
    register_lots,
)
from loadtests.parking_day_plan import DayShape, plan_day, shares, steps_of, uploads
from loadtests.parking_day_workers import run_workers
from parking.application.batch_actions import PARKING_ACTIONS_MAX

SESSIONS_DEFAULT = 100_000
# One worker process a core, as `tapledger serve` starts them on this machine's two cores.
WORKERS_DEFAULT = 2
SESSIONS_MAX = 500_000
EXTENDED_SHARE_DEFAULT = 0.3
TARGET_S = 60.0
DAY = date(2026, 12, 7)
SEED = 20261207
POSTGRES_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_DEFAULT = "tl_bench_parking_day"
MARKER = "bench_parking_day"
MARK_START, MARK_END = report.markers(MARKER)
KIB = 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


HEADER = [
    "sessions (extended)",
    "workers",
    "actions",
    "uploads of",
    "run",
    "sessions/s",
    "actions/s",
    "CPU a session",
    "upload p50 / p99",
    "peak RSS",
    "target",
    "",
]


def _table(shape: DayShape, run: DayRun, batch: int, workers: int, peak_mib: float) -> str:
    if shape.sessions < SESSIONS_DEFAULT:
        projected_s = run.elapsed_s * SESSIONS_DEFAULT / shape.sessions
        met = f"not judged at this size ({projected_s:.0f} s for 100,000 at this rate)"
    else:
        met = "**met**" if run.elapsed_s <= TARGET_S else "**not met**"
    p50 = statistics.median(run.latencies_ms)
    p99 = percentile(run.latencies_ms, 0.99)
    row = [
        f"{shape.sessions:,} ({run.extended:,})",
        str(workers),
        f"{run.actions:,}",
        str(batch),
        f"{run.elapsed_s:.1f} s",
        f"**{shape.sessions / run.elapsed_s:,.0f}**",
        f"{run.actions / run.elapsed_s:,.0f}",
        f"{run.cpu_s * 1000 / shape.sessions:.2f} ms",
        f"{p50:.0f} / {p99:.0f} ms",
        f"{peak_mib:.0f} MiB",
        f"100,000 within {TARGET_S:.0f} s",
        met,
    ]
    lines = [HEADER, ["---"] * len(HEADER), row]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def section(
    shape: DayShape,
    run: DayRun,
    batch: int,
    workers: int,
    peak_mib: float,
    command: str,
    loads: tuple[str, str],
) -> str:
    software = f"eventsourcing {version('eventsourcing')}, psycopg {version('psycopg')}"
    return f"""{MARK_START}
## Parking: a day of sessions on PostgreSQL, in batches

Written by `loadtests/bench_parking_day.py` with:

    {command}

Machine: {report.machine(software)}. Load average (1/5/15 min) {loads[0]} before and
{loads[1]} after; PostgreSQL (default config) on the same CPUs.

{_table(shape, run, batch, workers, peak_mib)}

* **Day**: {shape.riders:,} riders, one car each, five stays a day in turn over {len(LOTS)} lots
  (two on Dong Da's hourly table, two on iParking's turns); {shape.extended_share:.0%} of the
  stays extended once, about 5 % overstaying what they paid; every stay ended and settled.
* **Uploads**: each lot's handhelds send its steps in time order, {batch} at a time; each
  worker process applies the uploads of its own lots.
* **Run**: `ActionBatches.apply` in {workers} worker process(es) at once (each the product
  built by `tapledger.bootstrap`, no followers, its cycle collector tuned as an API worker's),
  one upload after the other, each at the time of its last action; the run is timed from the
  moment all are ready to the last upload's answer.
  **CPU** is the workers' together, PostgreSQL's not counted; **peak RSS** is the largest
  worker's. Accounts opened and funded before, not timed.
* **Checked** after the run: every session's fee as the tariff prices it, paid in full from
  its holds (the rest released) or debited; the holds of a sample read back from the ledger;
  one detail record per session in the store; every account's balance, nothing pending.
{MARK_END}"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=SESSIONS_DEFAULT)
    parser.add_argument("--batch", type=int, default=PARKING_ACTIONS_MAX)
    parser.add_argument("--workers", type=int, default=WORKERS_DEFAULT)
    parser.add_argument("--extended-share", type=float, default=EXTENDED_SHARE_DEFAULT)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL_DEFAULT)
    parser.add_argument("--database", default=DATABASE_DEFAULT)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= SESSIONS_MAX:
        parser.error(f"--sessions must be between 1 and {SESSIONS_MAX}")
    if not 1 <= args.batch <= PARKING_ACTIONS_MAX:
        parser.error(f"--batch must be between 1 and {PARKING_ACTIONS_MAX}")
    if not 1 <= args.workers <= len(LOTS):
        parser.error(f"--workers must be between 1 and {len(LOTS)} (a lot goes to one worker)")
    if not 0 <= args.extended_share <= 1:
        parser.error("--extended-share must be between 0 and 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console(stderr=True)
    shape = DayShape(args.sessions, tuple(LOTS), args.extended_share, SEED)
    planned = plan_day(shape, DAY)
    day_uploads = uploads(steps_of(planned), args.batch)
    database_url = fresh_database(args.postgres_url, args.database)
    start = day_start(planned)
    with tempfile.TemporaryDirectory(prefix="parking-day-") as data_dir:
        try:
            container = build(database_url, Path(data_dir), SteppedClock(start))
            try:
                register_lots(container)
                console.print(f"opening {shape.riders:,} riders' accounts (not timed)")
                accounts = open_riders(container, shape.riders, start)
            finally:
                container.close()
            loads = [report.load_average()]
            with Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
            ) as progress:
                actions = sum(len(upload) for upload in day_uploads)
                task = progress.add_task(f"{shape.sessions:,} sessions", total=actions)
                run = run_workers(
                    database_url,
                    Path(data_dir),
                    shares(day_uploads, tuple(LOTS), args.workers),
                    accounts,
                    start,
                    lambda applied: progress.advance(task, applied),
                )
            loads.append(report.load_average())
            run.extended = sum(1 for session in planned if session.extend_at is not None)
            console.print("checking the money (not timed)")
            container = build(database_url, Path(data_dir), SteppedClock(start))
            try:
                problems = check_money(container, planned, run, accounts)
            finally:
                container.close()
        finally:
            if not args.keep_database:
                drop_database(args.postgres_url, args.database)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / KIB
    command = report.command_line("loadtests.bench_parking_day")
    text = section(shape, run, args.batch, args.workers, peak_mib, command, (loads[0], loads[1]))
    print(text)
    for problem in problems[:20]:
        console.print(f"[red]{problem}[/red]")
    if problems:
        console.print(f"[red]{len(problems)} problems: nothing written[/red]")
        sys.exit(1)
    if not args.no_write:
        report.write_section(args.out, text, marker=MARKER)


if __name__ == "__main__":
    main()
