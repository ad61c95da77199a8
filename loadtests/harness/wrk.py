"""wrk runs over a file of pre-built bodies (`loadtests/taps.lua`): the figures it prints, and
the CPU time the server's workers and PostgreSQL spent meanwhile, read from /proc."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtests.harness.server import Server

TAPS_LUA = Path(__file__).resolve().parents[1] / "taps.lua"
# A request unanswered for this long counts as a socket error in wrk's figures.
REQUEST_TIMEOUT = "10s"
# Beyond its run, how long wrk may take to start and to print before it is given up on.
WRK_OVERRUN_S = 120
US_PER_MS = 1e3
US_PER_S = 1e6


@dataclass(frozen=True)
class WrkResult:
    name: str
    connections: int
    requests: int
    seconds: float
    bodies: int
    taps_per_request: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # CPU time per tap while the row ran: the server's workers, and PostgreSQL's processes.
    worker_cpu_us: float | None = None
    postgres_cpu_us: float | None = None

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def taps_per_s(self) -> float:
        return self.req_per_s * self.taps_per_request

    @property
    def wrapped(self) -> bool:
        return self.requests > self.bodies


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """User and system CPU time so far of each process still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        # After the command's closing parenthesis, utime and stime are the 12th and 13th fields.
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings (a process started meanwhile counts from 0)."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def run_wrk_measured(
    server: Server,
    name: str,
    bodies: Path,
    count: int,
    *,
    connections: int,
    seconds: int,
    taps_per_request: int,
    delay_ms: int = 0,
) -> WrkResult:
    """`run_wrk` with the CPU time the workers and PostgreSQL spent per tap meanwhile."""
    workers = server.worker_pids()
    worker_before, postgres_before = cpu_seconds(workers), cpu_seconds(postgres_pids())
    result = run_wrk(
        name,
        server.base_url,
        bodies,
        count,
        connections=connections,
        seconds=seconds,
        taps_per_request=taps_per_request,
        delay_ms=delay_ms,
    )
    worker_after = cpu_seconds(workers)
    worker_spent = cpu_used(worker_before, worker_after)
    each = " / ".join(
        f"{spent - worker_before.get(pid, 0.0):.1f}" for pid, spent in worker_after.items()
    )
    postgres_spent = cpu_used(postgres_before, cpu_seconds(postgres_pids()))
    taps = max(1, result.requests * result.taps_per_request)
    measured = dataclasses.replace(
        result,
        worker_cpu_us=worker_spent / taps * US_PER_S,
        postgres_cpu_us=postgres_spent / taps * US_PER_S,
    )
    print(
        f"    CPU per tap: workers {measured.worker_cpu_us:.0f} µs, "
        f"PostgreSQL {measured.postgres_cpu_us:.0f} µs; CPU s of each worker {each}",
        flush=True,
    )
    return measured


def run_wrk(
    name: str,
    base_url: str,
    bodies: Path,
    count: int,
    *,
    connections: int,
    seconds: int,
    taps_per_request: int,
    delay_ms: int = 0,
) -> WrkResult:
    env = os.environ | {"BODIES": str(bodies), "DELAY_MS": str(delay_ms)}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", REQUEST_TIMEOUT]
    command += ["-s", str(TAPS_LUA), base_url]
    done = subprocess.run(  # noqa: S603
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + WRK_OVERRUN_S,
        check=True,
    )
    match = re.search(r"WRK_JSON (\{.*\})", done.stdout)
    if match is None:
        raise SystemExit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(match.group(1))
    result = WrkResult(
        name=name,
        connections=connections,
        requests=figures["requests"],
        seconds=figures["duration_us"] / US_PER_S,
        bodies=count,
        taps_per_request=taps_per_request,
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / US_PER_MS,
        p95_ms=figures["p95_us"] / US_PER_MS,
        p99_ms=figures["p99_us"] / US_PER_MS,
    )
    print(
        f"  {name}: {result.req_per_s:,.0f} req/s, {result.taps_per_s:,.0f} taps/s, "
        f"p50/p99 {result.p50_ms:.1f}/{result.p99_ms:.1f} ms, non-2xx {result.non_2xx}"
        + (" (WRAPPED: bodies re-sent)" if result.wrapped else ""),
        flush=True,
    )
    return result


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk"
