"""Measures TLC1 card validations through real pcscd to the card emulator, and writes the figures.

    python -m loadtests.bench_card [--seconds N] [--vpcd HOST:PORT] [--slot N] [--out FILE]

The measurement is `loadtests/card_path.py`; this script shows its progress, adds the machine
and writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hardware.emulator.vpcd import DEFAULT_HOST, DEFAULT_PORT, parse_address
from hardware.emulator.vpcd_slot import VpcdSlot, VpcdSlotError
from hardware.reader import ReaderError
from loadtests import report
from loadtests.card_path import (
    BENCH_SLOT,
    SECONDS_DEFAULT,
    SECONDS_MAX,
    SECONDS_MIN,
    CardBenchFigures,
    run_card_bench,
)
from loadtests.latency import BenchError, Measurement

VERSION_QUERY_TIMEOUT_S = 5.0
# The goal on this path, and Calypso's budget for a whole card transaction.
GOAL_P99_MS = 50.0
CALYPSO_BUDGET_MS = 200.0
MARKER = "bench_card"
MARK_START, MARK_END = report.markers(MARKER)
DEBIAN_PACKAGES = ("pcscd", "vsmartcard-vpcd")


def measure(args: argparse.Namespace, console: Console) -> CardBenchFigures:
    host, first_port = args.vpcd
    with console.status("starting") as status:
        return run_card_bench(
            args.seconds, VpcdSlot(host, first_port, args.slot), progress=status.update
        )


def debian_versions() -> str:
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return "package versions unknown (no dpkg-query)"
    result = subprocess.run(  # noqa: S603  (a fixed query of two package names)
        [dpkg_query, "-W", "-f", "${Package} ${Version}, ", *DEBIAN_PACKAGES],
        capture_output=True,
        text=True,
        timeout=VERSION_QUERY_TIMEOUT_S,
        check=False,
    )
    return result.stdout.rstrip(", ") or "package versions unknown"


def machine() -> str:
    try:
        pyscard = version("pyscard")
    except PackageNotFoundError:
        pyscard = "not installed"
    return report.machine(f"pyscard {pyscard}", debian_versions())


def rows(figures: CardBenchFigures) -> list[tuple[str, Measurement]]:
    return [
        (
            f"validation, card connected ({figures.apdus_per_validation} APDUs)",
            figures.validation,
        ),
        ("tap: connect + validation + unpower", figures.tap),
        ("one APDU round trip (READ RECORD)", figures.apdu),
    ]


def markdown_table(figures: CardBenchFigures) -> str:
    lines = ["| measurement | count | per second | p50 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, m in rows(figures):
        lines.append(
            f"| {name} | {m.count:,} | **{m.per_s:,.0f}** | {m.p50_ms:.2f} ms "
            f"| {m.p99_ms:.2f} ms | {m.max_ms:.2f} ms |"
        )
    return "\n".join(lines)


def goal_line(figures: CardBenchFigures) -> str:
    p99_ms = figures.validation.p99_ms
    verdict = (
        f"met, {GOAL_P99_MS / p99_ms:,.0f} times under" if p99_ms <= GOAL_P99_MS else "**not met**"
    )
    return (
        f"**Goal: p99 ≤ {GOAL_P99_MS:g} ms per validation on this path.** Measured p99 "
        f"{p99_ms:.2f} ms ({figures.tap.p99_ms:.2f} ms for a whole tap): {verdict}. "
        f"Calypso's budget for the whole card transaction is {CALYPSO_BUDGET_MS:g} ms."
    )


def section(figures: CardBenchFigures, args: argparse.Namespace, loads: tuple[str, str]) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    v, setup = figures.validation, figures.setup
    shares = " / ".join(f"{100 * share:g}" for share in setup.shares)
    return f"""{MARK_START}
## TLC1 card validation through pcscd

Written by `loadtests/bench_card.py` on {stamp} UTC with:

    {report.command_line("loadtests.bench_card")}

Machine: {machine()}.
Load average (1/5/15 min) {loads[0]} before and {loads[1]} after.

{markdown_table(figures)}

{goal_line(figures)}

* **Path**: `CardValidator` → `Terminal` → `PcscReader` → pyscard → pcscd → vpcd driver → TCP
  loopback → `VpcdLink` → `EmulatedCard`, on vpcd's reader "{figures.reader}" ({figures.vpcd}),
  leaving the first slot to a developer. The card runs in a thread of the measuring process
  (`loadtests/card_path.py`), so card and terminal share one GIL; a real card answers in parallel.
* **Validation**: `CardValidator.validate()` with the card already connected: SELECT, OPEN
  reading the environment, READ the last event, DECREASE {setup.fare_vnd:,} VND, APPEND the
  event, CLOSE, the ratifying READ, and the software SAM's MACs. {v.count:,} validations
  in {v.elapsed_s:.1f} s after {setup.warmup_validations} not counted; each is dated
  {setup.tap_interval_s} s after the last, so none is a passback.
* **Tap**: what a validator does for each rider once the card is in its field: `SCardConnect`
  (pcscd powers the card), the validation, and `SCardDisconnect` unpowering it. Not included:
  the card entering the field and pcscd noticing it, up to one presence poll (400 ms); here
  pcscd showed the card {figures.card_seen_after_s:.2f} s after the emulator started to connect.
* **APDU round trip**: one READ RECORD of the purse outside a session, sent and answered.
* The purse was reloaded with {setup.reload_vnd:,} VND whenever it could not pay a fare
  ({figures.reloads} reloads, not timed). The bench card's transaction counter starts at
  {setup.counter_start:,}, not a real card's 1,000, so that no run exhausts it.
* `--seconds {args.seconds:g}` is shared {shares} % between the three rows; latency is per
  operation, timed with `perf_counter_ns`.
* The link sets `TCP_NODELAY` and re-arms `TCP_QUICKACK` before every `recv` (shared/DESIGN.md);
  without the quick ACK, each APDU waits about 40 ms for vpcd's delayed ACK.
{MARK_END}"""


def console_table(figures: CardBenchFigures) -> Table:
    table = Table(title=f"TLC1 card validation through pcscd ({figures.reader})")
    for column in ("measurement", "count", "per second", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for name, m in rows(figures):
        table.add_row(
            name,
            f"{m.count:,}",
            f"{m.per_s:,.0f}",
            f"{m.p50_ms:.2f}",
            f"{m.p99_ms:.2f}",
            f"{m.max_ms:.2f}",
        )
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=SECONDS_DEFAULT)
    parser.add_argument(
        "--vpcd",
        type=parse_address,
        default=(DEFAULT_HOST, DEFAULT_PORT),
        help="vpcd's first slot, HOST:PORT",
    )
    parser.add_argument("--slot", type=int, default=BENCH_SLOT, help="the vpcd slot to use")
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    args = parser.parse_args(argv)
    if not SECONDS_MIN <= args.seconds <= SECONDS_MAX:
        parser.error(f"--seconds must be in {SECONDS_MIN:g}..{SECONDS_MAX:g}")
    if args.slot < 0:
        parser.error("--slot is a vpcd slot index, 0 or more")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    load_before = report.load_average()
    try:
        figures = measure(args, console)
    except (VpcdSlotError, BenchError, ReaderError) as error:
        code = getattr(error, "code", "reader_error")
        Console(stderr=True).print(f"[red]{code}: {error}[/red]")
        raise SystemExit(1) from None
    console.print(console_table(figures))
    console.print(goal_line(figures))
    report.write_section(
        args.out, section(figures, args, (load_before, report.load_average())), marker=MARKER
    )
    console.print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
