"""Measures TLC1 card validations through real pcscd to the card emulator, and writes the figures.

    python -m loadtests.bench_card [--seconds N] [--vpcd HOST:PORT] [--slot N] [--out FILE]

The measurement is `tapledger.card_bench`, run as a program of its own: the import contract keeps
`loadtests` away from `hardware` and `validators`, and that module drives both (a Python import of
it, even through `tapledger`, is an indirect import the contract refuses). It prints its figures as
JSON; this script adds the machine and writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests import report

SECONDS_DEFAULT = 10.0
SECONDS_MIN = 1.0
SECONDS_MAX = 600.0
# Setting up (pcscd noticing the card, personalising, warming up) on top of --seconds.
SETUP_TIMEOUT_S = 60.0
VERSION_QUERY_TIMEOUT_S = 5.0
VPCD_DEFAULT = "127.0.0.1:35963"  # vpcd's first slot; the bench uses the one after it
SLOT_DEFAULT = 1
FIGURES_FORMAT = 1
# The goal on this path, and Calypso's budget for a whole card transaction.
GOAL_P99_MS = 50.0
CALYPSO_BUDGET_MS = 200.0
MARKER = "bench_card"
MARK_START, MARK_END = report.markers(MARKER)
DEBIAN_PACKAGES = ("pcscd", "vsmartcard-vpcd")


class BenchFailed(Exception):
    """The measuring program failed or printed something that is not its figures."""

    code = "card_bench_failed"


@dataclass(frozen=True)
class Measurement:
    count: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s


@dataclass(frozen=True)
class Setup:
    fare_vnd: int
    reload_vnd: int
    counter_start: int
    warmup_validations: int
    tap_interval_s: int
    shares: list[float]


@dataclass(frozen=True)
class Figures:
    reader: str
    vpcd: str
    card_seen_after_s: float
    apdus_per_validation: int
    reloads: int
    setup: Setup
    validation: Measurement
    tap: Measurement
    apdu: Measurement

    @classmethod
    def from_json(cls, text: str) -> Figures:
        try:
            document: dict[str, Any] = json.loads(text)
            if document["format"] != FIGURES_FORMAT:
                raise BenchFailed(f"figures format {document['format']}, not {FIGURES_FORMAT}")
            return cls(
                reader=str(document["reader"]),
                vpcd=str(document["vpcd"]),
                card_seen_after_s=float(document["card_seen_after_s"]),
                apdus_per_validation=int(document["apdus_per_validation"]),
                reloads=int(document["reloads"]),
                setup=Setup(**document["setup"]),
                validation=Measurement(**document["validation"]),
                tap=Measurement(**document["tap"]),
                apdu=Measurement(**document["apdu"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BenchFailed(f"not the card bench's figures: {error}") from None


def measure(args: argparse.Namespace) -> Figures:
    command = [sys.executable, "-m", "tapledger.card_bench", "--seconds", f"{args.seconds:g}"]
    command += ["--vpcd", args.vpcd, "--slot", str(args.slot)]
    # stderr is left to the terminal: the program shows its progress there.
    result = subprocess.run(  # noqa: S603  (our own interpreter and module, arguments we built)
        command,
        stdout=subprocess.PIPE,
        text=True,
        timeout=args.seconds + SETUP_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise BenchFailed(f"tapledger.card_bench exited with {result.returncode}")
    return Figures.from_json(result.stdout)


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


def rows(figures: Figures) -> list[tuple[str, Measurement]]:
    return [
        (
            f"validation, card connected ({figures.apdus_per_validation} APDUs)",
            figures.validation,
        ),
        ("tap: connect + validation + unpower", figures.tap),
        ("one APDU round trip (READ RECORD)", figures.apdu),
    ]


def markdown_table(figures: Figures) -> str:
    lines = ["| measurement | count | per second | p50 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, m in rows(figures):
        lines.append(
            f"| {name} | {m.count:,} | **{m.per_s:,.0f}** | {m.p50_ms:.2f} ms "
            f"| {m.p99_ms:.2f} ms | {m.max_ms:.2f} ms |"
        )
    return "\n".join(lines)


def goal_line(figures: Figures) -> str:
    p99_ms = figures.validation.p99_ms
    verdict = (
        f"met, {GOAL_P99_MS / p99_ms:,.0f} times under" if p99_ms <= GOAL_P99_MS else "**not met**"
    )
    return (
        f"**Goal: p99 ≤ {GOAL_P99_MS:g} ms per validation on this path.** Measured p99 "
        f"{p99_ms:.2f} ms ({figures.tap.p99_ms:.2f} ms for a whole tap): {verdict}. "
        f"Calypso's budget for the whole card transaction is {CALYPSO_BUDGET_MS:g} ms."
    )


def section(figures: Figures, args: argparse.Namespace, loads: tuple[str, str]) -> str:
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
  (`tapledger.card_bench`), so card and terminal share one GIL; a real card answers in parallel.
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


def console_table(figures: Figures) -> Table:
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
    parser.add_argument("--vpcd", default=VPCD_DEFAULT, help="vpcd's first slot, HOST:PORT")
    parser.add_argument("--slot", type=int, default=SLOT_DEFAULT, help="the vpcd slot to use")
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
        figures = measure(args)
    except (BenchFailed, subprocess.TimeoutExpired) as error:
        Console(stderr=True).print(f"[red]{error}[/red]")
        raise SystemExit(1) from None
    console.print(console_table(figures))
    console.print(goal_line(figures))
    report.write_section(
        args.out, section(figures, args, (load_before, report.load_average())), marker=MARKER
    )
    console.print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
