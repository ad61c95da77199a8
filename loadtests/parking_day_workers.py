"""The planned day applied by several worker processes at once, as a city's servers apply the
uploads of many handhelds: each worker builds the product from its composition root on the same
PostgreSQL database and applies the uploads of its own lots, one after the other.

The workers start together (once each has built the product and said so), and the run lasts
from then until the last one has applied its last upload. What each worker measured (its CPU,
the latency of each upload, what each action was answered) comes back to this process, which
checks the money against the store.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from uuid import UUID

from loadtests.parking_day_drive import DayRun, SteppedClock, build, run_day
from loadtests.parking_day_plan import Step
from tapledger.collector import tune_collector

# How long a worker may take to build the product and reach the start line.
WORKER_READY_TIMEOUT_S = 300.0
PROGRESS_POLL_S = 0.2


def run_workers(
    database_url: str,
    data_dir: Path,
    share: list[list[list[Step]]],
    accounts: Sequence[UUID],
    start: datetime,
    progress: Callable[[int], None],
) -> DayRun:
    """The day applied by one process per share of the uploads; their runs together."""
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    go = context.Event()
    results: Any = context.Queue()
    applied = context.Value("i", 0)
    workers = [
        context.Process(
            target=_work,
            args=(
                database_url,
                data_dir,
                start,
                uploads,
                list(accounts),
                (ready, go),
                results,
                applied,
            ),
            daemon=True,
        )
        for uploads in share
    ]
    for worker in workers:
        worker.start()
    _wait_ready(workers, ready)
    go.set()
    began = time.perf_counter()
    runs: list[DayRun] = []
    reported = 0
    while len(runs) < len(workers):
        try:
            runs.append(results.get(timeout=PROGRESS_POLL_S))
        except queue.Empty:
            _check_alive(workers, len(runs))
        reported = _report(applied.value, reported, progress)
    elapsed_s = time.perf_counter() - began
    _report(applied.value, reported, progress)
    for worker in workers:
        worker.join()
    return _together(runs, elapsed_s)


def _work(
    database_url: str,
    data_dir: Path,
    start: datetime,
    uploads: list[list[Step]],
    accounts: list[UUID],
    start_line: tuple[Any, Event],
    results: Any,
    applied: Any,
) -> None:
    clock = SteppedClock(start)
    container = build(database_url, data_dir, clock, create_schema=False)
    tune_collector()  # as an API worker does once it is built
    try:
        ready, go = start_line
        ready.put(True)
        go.wait()

        def advance(actions: int) -> None:
            with applied.get_lock():
                applied.value += actions

        results.put(run_day(container, clock, uploads, accounts, advance))
    finally:
        container.close()


def _wait_ready(workers: list[Any], ready: Any) -> None:
    """Until every worker has built the product; a worker that died first fails the run."""
    waited_s, count = 0.0, 0
    while count < len(workers):
        try:
            ready.get(timeout=PROGRESS_POLL_S)
            count += 1
        except queue.Empty:
            _check_alive(workers, 0)
            waited_s += PROGRESS_POLL_S
            if waited_s > WORKER_READY_TIMEOUT_S:
                raise RuntimeError("the workers did not get ready in time") from None


def _check_alive(workers: list[Any], finished: int) -> None:
    dead = [worker for worker in workers if worker.exitcode not in (None, 0)]
    if dead:
        raise RuntimeError(f"a worker died (exit {dead[0].exitcode}) after {finished} finished")


def _report(applied: int, reported: int, progress: Callable[[int], None]) -> int:
    if applied > reported:
        progress(applied - reported)
    return applied


def _together(runs: list[DayRun], elapsed_s: float) -> DayRun:
    together = DayRun(elapsed_s=elapsed_s)
    for run in runs:
        together.cpu_s += run.cpu_s
        together.latencies_ms += run.latencies_ms
        together.actions += run.actions
        for name, count in run.refused.items():
            together.refused[name] += count
        together.ended.update(run.ended)
    return together
