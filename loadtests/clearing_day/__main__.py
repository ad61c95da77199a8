"""Clearing's benchmark: a city day generated into PostgreSQL, then cleared by the product.

    python -m loadtests.clearing_day --journeys 1000000 --sessions 100000 --top-ups 200000
    python -m loadtests.clearing_day --quick          # a small day, for a smoke run

The day is written once into a database of its own (`tl_clearing_day_<size>`, kept for the
next run with `--reuse`); each timed cycle runs on a fresh copy of it. `--scales 1,0.25` also
clears a day a quarter the size, to show the run's memory does not grow with the day. With
`--out`, the figures replace this script's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psycopg
from rich.console import Console

from loadtests import report
from loadtests.clearing_day.cycle import CycleFigures, run_cycle
from loadtests.clearing_day.database import (
    SERVER_URL_DEFAULT,
    create_database,
    database_url,
    drop_database,
)
from loadtests.clearing_day.generate import Generated, generate
from loadtests.clearing_day.plan import DAY, DaySize
from loadtests.clearing_day.writer import Written

QUICK = DaySize(journeys=2_000, sessions=200, top_ups=400)
MARKER = "clearing_day"
MIB = 1024

console = Console()


@dataclass(frozen=True)
class Scaled:
    size: DaySize
    generated: Generated | None  # None: the day was reused
    cycle: CycleFigures


def main() -> None:
    args = _parser().parse_args()
    base = QUICK if args.quick else DaySize(args.journeys, args.sessions, args.top_ups)
    results: list[Scaled] = []
    for scale in (float(s) for s in args.scales.split(",")):
        size = DaySize(
            int(base.journeys * scale), int(base.sessions * scale), int(base.top_ups * scale)
        )
        scaled = _one_size(args.server, size, reuse=args.reuse, clear=not args.generate_only)
        if scaled is not None:
            results.append(scaled)
    if args.out is not None and results:
        report.write_section(args.out, _section(results), marker=MARKER)
        console.print(f"wrote {args.out}")


def _one_size(server: str, size: DaySize, *, reuse: bool, clear: bool) -> Scaled | None:
    template = f"tl_clearing_day_{size.journeys}_{size.sessions}_{size.top_ups}"
    generated = None
    if not (reuse and _exists(server, template)):
        url = create_database(server, template)
        with (
            tempfile.TemporaryDirectory() as data_dir,
            console.status(f"writing the day into {template}") as status,
        ):

            def progress(written: Written) -> None:
                status.update(
                    f"{template}: {written.riders:,} riders, {written.movements:,} movements"
                )

            generated = generate(url, Path(data_dir), size, DAY, progress)
        console.print(
            f"generated {template}: {generated.movements:,} movements in {generated.seconds:,.0f} s"
        )
    if not clear:
        return None
    run_name = f"tl_clearing_run_{secrets.token_hex(4)}"
    url = create_database(server, run_name, template=template)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            figures = run_cycle(url, Path(data_dir), DAY)
    finally:
        drop_database(server, run_name)
    console.print(
        f"cleared {figures.result['movements']:,} movements in {figures.run_s:.1f} s "
        f"({figures.movements_per_s:,.0f}/s), process {figures.wall_s:.1f} s, "
        f"peak RSS {figures.peak_rss_kib / MIB:,.0f} MiB, lines_sha256 "
        f"{figures.result['lines_sha256']}"
    )
    return Scaled(size, generated, figures)


def _exists(server: str, name: str) -> bool:
    with psycopg.connect(database_url(server, "postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def _section(results: list[Scaled]) -> str:
    start, end = report.markers(MARKER)
    rows = []
    for r in results:
        c = r.cycle
        generated = f"{r.generated.seconds:,.0f} s" if r.generated else "reused"
        rows.append(
            f"| {r.size.journeys:,} / {r.size.sessions:,} / {r.size.top_ups:,} "
            f"| {c.result['movements']:,} | {c.result['lines']:,} | {c.run_s:,.1f} s "
            f"| **{c.movements_per_s:,.0f}** | {c.wall_s:,.1f} s | {c.peak_rss_kib / MIB:,.0f} MiB "
            f"| {generated} |"
        )
    return "\n".join(
        [
            start,
            "## Clearing: a city day's cycle on PostgreSQL",
            "",
            f"Written by `loadtests/clearing_day` on {_now()} with:",
            "",
            f"    {report.command_line('loadtests.clearing_day')}",
            "",
            "Machine: "
            + report.machine(
                f"eventsourcing {version('eventsourcing')}", f"psycopg {version('psycopg')}"
            )
            + ".",
            f"Load average (1/5/15 min) at the end: {report.load_average()}; the machine is",
            "shared, and the figures move with its load.",
            "",
            "| journeys / parking sessions / top-ups | movements | lines | run | movements/s "
            "| process | peak RSS | generation (not timed) |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "* **Run**: `ClearingCycles.run(day)` on a fresh copy of the generated database, in a",
            "  process of its own started as `python -c` on the composition root; **process** is",
            "  that process's wall time (interpreter, imports, bootstrap and the run).",
            "* **Peak RSS**: `Maximum resident set size` of that process by `/usr/bin/time -v`.",
            "* **Movements**: the ledger's money events of the day the cycle read; **lines**: the",
            "  revenue and suspense lines it kept (a journey over two operators gives two).",
            end,
        ]
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.clearing_day", description=__doc__)
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--top-ups", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="a small day, for a smoke run")
    parser.add_argument("--scales", default="1", help="day sizes to clear, e.g. 1,0.25")
    parser.add_argument("--reuse", action="store_true", help="clear a day generated before")
    parser.add_argument("--generate-only", action="store_true", help="write the day, no cycle")
    parser.add_argument("--server", default=SERVER_URL_DEFAULT, help="PostgreSQL server URL")
    parser.add_argument("--out", type=Path, default=None, help="e.g. docs/benchmarks.md")
    return parser


if __name__ == "__main__":
    main()
