"""Measures the ledger's top-up + hold + post rate: one command per transaction, and batched.

    python -m loadtests.bench_ledger [--seconds N] [--postgres-url URL] [--out docs/benchmarks.md]

Every cell (store x mode) runs in its own spawned process on a fresh database, so each cell starts
from the same empty store and its peak RSS (`ru_maxrss`) is its own, not the high-water mark of the
cells before it. The ledger is built from `Settings(...).event_store_env()`, the product's real
store configuration, without the read-model follower, so the figures are the ledger's alone.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from loadtests import report
from tapledger.settings import Settings
from ticketing.accounts.application.ledger import Ledger
from ticketing.accounts.domain.commands import Command, PlaceHold, PostHold, TopUp
from ticketing.accounts.domain.errors import LedgerError
from ticketing.shared.domain.invariants import require

BENCH_SECONDS_DEFAULT = 8.0
BENCH_SECONDS_MIN = 1.0
BENCH_SECONDS_MAX = 600.0
# Long enough to fill the connection pool and the CPU caches; its operations are not counted.
WARMUP_S = 1.0
ACCOUNTS = 200
# Commands in one `execute_batch`, each on a different account (well under LEDGER_BATCH_MAX).
BATCH_SIZE = 100
OPENING_BALANCE_VND = 200_000
# Top-up, hold and post move the same amount, so a balance stays put however long the run.
CYCLE_AMOUNT_VND = 10_000
HOLD_TTL_S = 3600
POSTGRES_ADMIN_URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_CONNECT_TIMEOUT_S = 3
PROGRESS_POLL_S = 0.2
# A commit waits for fsync, so the disk's fsync latency is printed beside the figures.
FSYNC_PROBE_WRITES = 50
FSYNC_PROBE_BYTES = 4096
# An account's events: Opened and the opening TopUp, then one event for every op on it.
SETUP_EVENTS_PER_ACCOUNT = 2
MARKER = "bench_ledger"
MARK_START, MARK_END = report.markers(MARKER)

SQLITE = "SQLite (WAL, file)"
POSTGRES = "PostgreSQL"
SINGLE = "one per transaction"
BATCHED = f"batched ({BATCH_SIZE} commands)"
CELLS = [(store, mode) for store in (SQLITE, POSTGRES) for mode in (SINGLE, BATCHED)]

Step = Callable[[], int]


@dataclass(frozen=True)
class Sample:
    ops: int
    elapsed_s: float
    latencies_ns: list[int]


@dataclass(frozen=True)
class Conditions:
    """What else the machine was doing: other work on its CPUs and disk skews every figure."""

    fsync_p50_ms: float
    load_before: str
    load_after: str


@dataclass(frozen=True)
class CellResult:
    store: str
    mode: str
    ops: int = 0
    ops_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    rss_start_kib: int = 0
    rss_peak_kib: int = 0
    account_events_avg: float = 0.0
    skipped: str = ""


# The workload


def cycle(account_id: UUID, tag: str) -> tuple[TopUp, PlaceHold, PostHold]:
    """One rider's top-up, then a hold (a ride starts), then its post (the ride ends)."""
    hold_id = f"bench-hold-{tag}"
    return (
        TopUp(account_id, CYCLE_AMOUNT_VND, payment_reference=f"bench-{tag}"),
        PlaceHold(account_id, hold_id, CYCLE_AMOUNT_VND, ttl_s=HOLD_TTL_S),
        PostHold(account_id, hold_id, CYCLE_AMOUNT_VND),
    )


def single_commands(accounts: Sequence[UUID]) -> Iterator[Command]:
    """Cycles on one account at a time, rotating through the pool."""
    for n in itertools.count():
        yield from cycle(accounts[n % len(accounts)], tag=str(n))


def batched_commands(accounts: Sequence[UUID]) -> Iterator[list[Command]]:
    """Three batches per group of BATCH_SIZE accounts: the top-ups, the holds, the posts."""
    groups = [accounts[i : i + BATCH_SIZE] for i in range(0, len(accounts), BATCH_SIZE)]
    for n in itertools.count():
        group = groups[n % len(groups)]
        cycles = [cycle(account, tag=f"{n}.{j}") for j, account in enumerate(group)]
        for phase in range(3):
            yield [commands[phase] for commands in cycles]


def open_accounts(ledger: Ledger) -> list[UUID]:
    accounts = [ledger.open_account(rider_category=0).id for _ in range(ACCOUNTS)]
    top_ups = [TopUp(a, OPENING_BALANCE_VND, f"open-{i}") for i, a in enumerate(accounts)]
    check_all_done(ledger.execute_batch(top_ups))
    return accounts


def check_all_done(results: Sequence[object]) -> None:
    refused = [r for r in results if isinstance(r, LedgerError)]
    require(not refused, f"the benchmark's commands are all valid, yet {refused[:1]!r}")


def single_step(ledger: Ledger, accounts: Sequence[UUID]) -> Step:
    commands = single_commands(accounts)

    def step() -> int:
        ledger.execute(next(commands))
        return 1

    return step


def batched_step(ledger: Ledger, accounts: Sequence[UUID]) -> Step:
    batches = batched_commands(accounts)

    def step() -> int:
        batch = next(batches)
        check_all_done(ledger.execute_batch(batch))
        return len(batch)

    return step


def timed(step: Step, seconds: float) -> Sample:
    """Runs `step` until `seconds` pass; one latency per step (an op, or a whole batch)."""
    latencies_ns: list[int] = []
    ops = 0
    start_ns = now_ns = time.perf_counter_ns()
    deadline_ns = start_ns + int(seconds * 1e9)
    while now_ns < deadline_ns:
        ops += step()
        after_ns = time.perf_counter_ns()
        latencies_ns.append(after_ns - now_ns)
        now_ns = after_ns
    return Sample(ops=ops, elapsed_s=(now_ns - start_ns) / 1e9, latencies_ns=latencies_ns)


# One cell, in its own process


@contextmanager
def sqlite_store() -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="tl_bench_") as data_dir:
        yield Settings(data_dir=Path(data_dir), database_url=None)


@contextmanager
def postgres_store(admin_url: str) -> Iterator[Settings]:
    """A fresh database on the admin URL's server, dropped afterwards even if still in use."""
    name = f"tl_bench_{secrets.token_hex(6)}"
    run_admin(admin_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Settings(database_url=urlsplit(admin_url)._replace(path=f"/{name}").geturl())
    finally:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        run_admin(admin_url, drop)


def run_admin(admin_url: str, statement: sql.Composed) -> None:
    # CREATE and DROP DATABASE refuse to run inside a transaction.
    with psycopg.connect(
        admin_url, autocommit=True, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S
    ) as admin:
        admin.execute(statement)


def store_for(store: str, admin_url: str) -> AbstractContextManager[Settings]:
    return postgres_store(admin_url) if store == POSTGRES else sqlite_store()


def rss_kib() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_cell(store: str, mode: str, seconds: float, admin_url: str) -> CellResult:
    rss_start_kib = rss_kib()
    with store_for(store, admin_url) as settings:
        ledger = Ledger(settings.event_store_env())
        try:
            accounts = open_accounts(ledger)
            make_step = single_step if mode == SINGLE else batched_step
            step = make_step(ledger, accounts)
            warmup = timed(step, WARMUP_S)
            sample = timed(step, seconds)
        finally:
            ledger.close()
    # Every op appends one event to its account, and an account is replayed on every op, from
    # its last snapshot: the longer the run, the longer the replays.
    events_avg = SETUP_EVENTS_PER_ACCOUNT + (warmup.ops + sample.ops) / ACCOUNTS
    return summarise(store, mode, sample, rss_start_kib, events_avg)


def summarise(
    store: str, mode: str, sample: Sample, rss_start_kib: int, events_avg: float
) -> CellResult:
    require(len(sample.latencies_ns) >= 2, "a cell runs long enough for two steps")
    cuts = statistics.quantiles(sample.latencies_ns, n=100, method="inclusive")
    return CellResult(
        store=store,
        mode=mode,
        ops=sample.ops,
        ops_per_s=sample.ops / sample.elapsed_s,
        p50_ms=cuts[49] / 1e6,
        p99_ms=cuts[98] / 1e6,
        rss_start_kib=rss_start_kib,
        rss_peak_kib=rss_kib(),
        account_events_avg=events_avg,
    )


# The run, in the parent


def fsync_p50_ms() -> float:
    """The median time to write and fsync a small block where the SQLite cells keep their file."""
    with tempfile.TemporaryFile(prefix="tl_bench_fsync_") as probe:
        times_ns = []
        for _ in range(FSYNC_PROBE_WRITES):
            start_ns = time.perf_counter_ns()
            probe.write(b"x" * FSYNC_PROBE_BYTES)
            probe.flush()
            os.fsync(probe.fileno())
            times_ns.append(time.perf_counter_ns() - start_ns)
    return statistics.median(times_ns) / 1e6


def postgres_unreachable(admin_url: str) -> str:
    """Why PostgreSQL cannot be used, or "" when it can."""
    try:
        with psycopg.connect(admin_url, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S):
            return ""
    except psycopg.OperationalError as error:
        return f"unreachable at {urlsplit(admin_url).netloc}: {str(error).strip().splitlines()[0]}"


def run_all(seconds: float, admin_url: str, console: Console) -> list[CellResult]:
    pg_problem = postgres_unreachable(admin_url)
    if pg_problem:
        console.print(f"[yellow]PostgreSQL skipped: {pg_problem}")
    results: list[CellResult] = []
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        for store, mode in CELLS:
            if store == POSTGRES and pg_problem:
                results.append(CellResult(store=store, mode=mode, skipped=pg_problem))
                continue
            task = progress.add_task(f"{store}, {mode}", total=WARMUP_S + seconds)
            results.append(run_in_child(store, mode, seconds, admin_url, progress, task))
    return results


def run_in_child(
    store: str, mode: str, seconds: float, admin_url: str, progress: Progress, task: TaskID
) -> CellResult:
    # The bar follows the clock: setup and teardown show as a full bar still ticking.
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(run_cell, store, mode, seconds, admin_url)
        started = time.monotonic()
        while not future.done():
            progress.update(task, completed=time.monotonic() - started)
            time.sleep(PROGRESS_POLL_S)
        result = future.result()
    progress.update(task, completed=WARMUP_S + seconds)
    return result


# The report


def table(results: Sequence[CellResult]) -> str:
    lines = [
        "| store | mode | ops counted | ops/s | p50 | p99 | peak RSS (at start) "
        "| account events at end, mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.skipped:
            lines.append(f"| {r.store} | {r.mode} | not run: {r.skipped} | | | | | |")
            continue
        unit = "op" if r.mode == SINGLE else "batch"
        lines.append(
            f"| {r.store} | {r.mode} | {r.ops:,} | **{r.ops_per_s:,.0f}** "
            f"| {r.p50_ms:.2f} ms/{unit} | {r.p99_ms:.2f} ms/{unit} "
            f"| {r.rss_peak_kib / 1024:.0f} MiB ({r.rss_start_kib / 1024:.0f} MiB) "
            f"| {r.account_events_avg:.0f} |"
        )
    return "\n".join(lines)


def section(
    results: Sequence[CellResult], conditions: Conditions, seconds: float, command: str
) -> str:
    return f"""{MARK_START}
## Ledger: top-up + hold + post

Written by `loadtests/bench_ledger.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:

    {command}

Machine: {report.machine(with_cpu_model=False)},
eventsourcing {version("eventsourcing")}, psycopg {version("psycopg")}.
While it ran: load average (1/5/15 min) {conditions.load_before} before and
{conditions.load_after} after; a 4 KiB write + fsync in the temp dir took
{conditions.fsync_p50_ms:.2f} ms (median), and every commit waits for one.

{table(results)}

* **Op**: one `TopUp`, `PlaceHold` or `PostHold`, each {CYCLE_AMOUNT_VND:,} VND; a rider's cycle is
  all three. Each op reads the account and a transfer record and saves both.
* **One per transaction**: `Ledger.execute(command)` on one account at a time, rotating through
  {ACCOUNTS} accounts; latency is per op.
* **Batched**: `Ledger.execute_batch` of {BATCH_SIZE} commands on {BATCH_SIZE} different accounts
  (their top-ups, then their holds, then their posts), one transaction each; **latency is per
  batch**, ops/s counts commands.
* Each cell: a fresh store (a temp SQLite file, or a new PostgreSQL database `tl_bench_<hex>`
  dropped afterwards), {ACCOUNTS} accounts opened and topped up, {WARMUP_S:g} s of warm-up not
  counted, then {seconds:g} s timed, in one process of its own.
* **Peak RSS** is `ru_maxrss` of that process (KiB on Linux, shown in MiB); in brackets, the same
  figure before the store was opened (interpreter and imports). Not tracemalloc.
* The store is configured by `Settings(...).event_store_env()`, as the product is; the read-model
  follower is not running.
* **Account events at end**: an account's length when the cell ended (each op appends one event).
  Every op replays its account from the last snapshot (one every 100 events), so throughput falls
  as accounts grow, and a faster cell replays longer accounts.
{MARK_END}"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=BENCH_SECONDS_DEFAULT)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL_DEFAULT)
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    args = parser.parse_args(argv)
    if not BENCH_SECONDS_MIN <= args.seconds <= BENCH_SECONDS_MAX:
        parser.error(f"--seconds must be in {BENCH_SECONDS_MIN:g}..{BENCH_SECONDS_MAX:g}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    load_before = report.load_average()
    fsync_ms = fsync_p50_ms()
    results = run_all(args.seconds, args.postgres_url, console)
    conditions = Conditions(fsync_ms, load_before, load_after=report.load_average())
    console.print(table(results))
    report.write_section(
        args.out,
        section(results, conditions, args.seconds, report.command_line("loadtests.bench_ledger")),
        marker=MARKER,
    )
    console.print(f"Written to {args.out}")


if __name__ == "__main__":
    main()
