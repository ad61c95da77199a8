"""Measures presentation to decision on a validator, per kind and medium, against the budgets.

    python -m loadtests.bench_decisions [--seconds N] [--vpcd HOST:PORT] [--slot N] [--out FILE]

Cards go through real pcscd to the card emulator on a vpcd slot; QR codes come from a phone
signing them as the app does. Every decision is committed to the device's outbox file (fsync)
before it counts. The measurement is `loadtests/decision_path.py`; this script adds the machine
and the load, checks the budgets, and writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hardware.emulator.vpcd import DEFAULT_HOST, DEFAULT_PORT, parse_address
from hardware.emulator.vpcd_slot import VpcdSlot, VpcdSlotError, presented_card
from hardware.reader import ReaderError
from loadtests import report
from loadtests.bench_card import machine
from loadtests.card_path import BENCH_SLOT
from loadtests.decision_path import (
    WARMUP_DECISIONS,
    Cell,
    bench_card,
    measure_card,
    measure_qr,
)
from loadtests.latency import BenchError

SECONDS_DEFAULT = 5.0
SECONDS_MIN = 1.0
SECONDS_MAX = 300.0
# Issue 16: p99 from presentation to decision, outbox commit included.
BUDGET_P99_MS = {"card": 200.0, "qr": 300.0}
MEDIUM_NAMES = {"card": "card (pcscd)", "qr": "QR"}
MARKER = "bench_decisions"
MARK_START, MARK_END = report.markers(MARKER)
FSYNC_PROBES = 50
FSYNC_BLOCK = bytes(4096)


def fsync_p50_ms() -> float:
    """The median time to write and fsync 4 KiB in the temp dir, where the outboxes are kept."""
    with tempfile.TemporaryFile(prefix="tl_decisions_fsync_") as probe:
        took = []
        for _ in range(FSYNC_PROBES):
            started = time.perf_counter()
            probe.write(FSYNC_BLOCK)
            probe.flush()
            os.fsync(probe.fileno())
            took.append(time.perf_counter() - started)
    return statistics.median(took) * 1e3


def met(cell: Cell) -> bool:
    return cell.measurement.p99_ms <= BUDGET_P99_MS[cell.medium]


def verdict(cell: Cell) -> str:
    return "met" if met(cell) else "**not met**"


def markdown_table(cells: Sequence[Cell]) -> str:
    lines = [
        "| medium | kind | decision | count | p50 | p99 | max | budget (p99) | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        m = cell.measurement
        lines.append(
            f"| {MEDIUM_NAMES[cell.medium]} | {cell.kind} | {cell.reason} | {m.count:,} "
            f"| {m.p50_ms:.2f} ms | **{m.p99_ms:.2f} ms** | {m.max_ms:.2f} ms "
            f"| ≤ {BUDGET_P99_MS[cell.medium]:g} ms | {verdict(cell)} |"
        )
    return "\n".join(lines)


def section(cells: Sequence[Cell], reader: str, loads: tuple[str, str], fsync_ms: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    all_met = all(met(cell) for cell in cells)
    return f"""{MARK_START}
## Decision budgets: presentation to decision, outbox commit included

Written by `loadtests/bench_decisions.py` on {stamp} UTC with:

    {report.command_line("loadtests.bench_decisions")}

Machine: {machine()}.
Load average (1/5/15 min) {loads[0]} before and {loads[1]} after (a shared machine);
a 4 KiB write + fsync in the temp dir took {fsync_ms:.2f} ms (median), and every decision
waits for one.

{markdown_table(cells)}

**Budgets (issue 16): p99 ≤ {BUDGET_P99_MS["card"]:g} ms for a card, ≤ {BUDGET_P99_MS["qr"]:g} ms
for a QR code: {"all met" if all_met else "**not all met**"}.**

* **Card**: `CardStation.tap_once()` of the device with the card already in the field of
  "{reader}": pcscd's presence check, `SCardConnect`, the validation (every APDU through pyscard →
  pcscd → vpcd → TCP → `VpcdLink` → `EmulatedCard`, and the software SAM's MACs),
  `SCardDisconnect`, then `Gate.present_card` committing the tap to the outbox. Not timed: the
  card entering the field and pcscd noticing it (up to one 400 ms presence poll on vpcd; a real
  reader's field detection is its own), and the rider taking the card away after the decision.
  The emulated card runs in a thread of the measuring process, sharing its GIL.
* **QR**: `Gate.present_qr(text)`: the TL1 verification and the outbox commit. Every rider is a
  new phone, so no gate has the certificate cached and each code pays the certificate's parsing,
  its Ed25519 check, the P-256 decompression and the ECDSA check: the worst case. The phone signs
  each code before the clock starts; the camera and the scanner's decoding are not timed.
* **Kinds**: a bus validator charges the flat fare; a metro entry gate charges the dearest ride
  from there; a metro exit gate finds the entry the card's last event records and charges
  nothing (`paid_at_entry`). Entry and exit alternate, one card tapping in then out. A QR code
  carries no journey and the gate keeps none (the backend pairs entry and exit), so a QR exit is
  verified like any code; the same phone shows a code at the entry gate first.
* **Outbox**: each kind is its own device, with its own `Outbox` file (SQLite, WAL,
  synchronous FULL) in a temp dir on the same disk; the decision returns after the commit.
* Each cell: {WARMUP_DECISIONS} decisions of warm-up not counted, then `--seconds` of taps
  (the metro pair shares its `--seconds`); every timed decision is an acceptance. Latency per
  decision, timed with `perf_counter_ns`.
{MARK_END}"""


def console_table(cells: Sequence[Cell]) -> Table:
    table = Table(title="Presentation to decision, outbox commit included")
    for column in ("medium", "kind", "decision", "count", "p50 ms", "p99 ms", "max ms", "budget"):
        table.add_column(column, justify="right" if "ms" in column or column == "count" else "left")
    for cell in cells:
        m = cell.measurement
        table.add_row(
            MEDIUM_NAMES[cell.medium],
            cell.kind,
            cell.reason,
            f"{m.count:,}",
            f"{m.p50_ms:.2f}",
            f"{m.p99_ms:.2f}",
            f"{m.max_ms:.2f}",
            f"≤ {BUDGET_P99_MS[cell.medium]:g} ms: {'met' if met(cell) else 'NOT MET'}",
        )
    return table


def measure(args: argparse.Namespace, console: Console) -> tuple[list[Cell], str]:
    host, first_port = args.vpcd
    card, master_keys = bench_card()
    slot = VpcdSlot(host, first_port, args.slot)
    with (
        console.status(f"cards through pcscd: {2 * args.seconds:g} s"),
        presented_card(card, slot) as presented,
    ):
        presented.reader.power_off()  # the station powers the card on for each tap
        try:
            cells = measure_card(presented.reader, master_keys, args.seconds)
        finally:
            presented.reader.power_on()  # as presented_card leaves it, to power it off
        reader = presented.reader.name
    with console.status(f"QR codes: {2 * args.seconds:g} s"):
        cells += measure_qr(args.seconds)
    return cells, reader


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=SECONDS_DEFAULT, help="per bus cell and per metro pair"
    )
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
    fsync_ms = fsync_p50_ms()
    try:
        cells, reader = measure(args, console)
    except (VpcdSlotError, BenchError, ReaderError) as error:
        code = getattr(error, "code", "reader_error")
        Console(stderr=True).print(f"[red]{code}: {error}[/red]")
        raise SystemExit(1) from None
    console.print(console_table(cells))
    text = section(cells, reader, (load_before, report.load_average()), fsync_ms)
    report.write_section(args.out, text, marker=MARKER)
    console.print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
