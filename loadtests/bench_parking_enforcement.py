"""Parking over HTTP: enforcement checks per second and their latency, then sessions started
and ended per second; writes them into docs/benchmarks.md.

    python -m loadtests.bench_parking_enforcement [--sessions 3000] [--unpaid 1000]
        [--seconds 15] [--connections 8] [--sessions-seconds 20] [--clients 8] [--out PATH]

One command, everything on 127.0.0.1 and bounded in time: a fresh PostgreSQL database and a
flushed Redis database; `tapledger serve --workers 2` with production settings; seeded over HTTP
with one always-open lot (Dong Da's table), `--sessions` open sessions (each its own plate) and
`--unpaid` plates with none; then wrk (`loadtests/enforcement.lua`) sends
`GET /v1/parking/enforcement?lot_id=&plate=` with an officer's token, each request a plate drawn
at random from both sets, after a few seconds of uncounted warm-up. The target is the issue's:
at least 3,000 checks/s with p99 at most 20 ms. Then, on the same server, `--clients` threads
each start a session for a plate of its own (a hold on its own account) and end it (the fee
posted from the hold, the record sealed), again and again for `--sessions-seconds`
(`loadtests/harness/parking_sessions.py`). Before the clock starts the followers' process
(`tapledger projections run`, as deployed) has built the enforcement index and marked it
complete, so the checks read Redis, not PostgreSQL.

Why 8 connections by default: wrk keeps every connection busy, so the server always has that
many checks in flight, however fast it answers. Officers' handhelds do not: each sends a check,
waits for the answer and moves on to the next car, so what a city's handhelds keep in flight is
their rate times the response time (Little's law): at 3,000 checks/s answered in about 2-3 ms,
6 to 9. 32 connections would mean each check waits behind 31 others (10.7 ms on average at
3,000/s) before any work is done on it, a backlog no fleet of handhelds presents unless the
server is already too slow; `--connections 32` measures that case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from loadtests import report
from loadtests.harness.parking_seed import LOT_PLACES, Seeded, seed_parking
from loadtests.harness.parking_sessions import SessionsResult, run_sessions
from loadtests.harness.server import WORKERS, Followers, Server, free_port, start_server
from loadtests.harness.services import REDIS_DB, redis_has_key, settle_database
from loadtests.harness.steps import Bench, bench_environment
from loadtests.harness.taps import seal_sam_keys
from loadtests.harness.wrk import WrkResult, cpu_seconds, cpu_used, postgres_pids, wrk_version

MARKER = "bench_parking_enforcement"
LUA = Path(__file__).resolve().with_name("enforcement.lua")
TARGET_CHECKS_PER_S = 3_000.0
TARGET_P99_MS = 20.0
WARMUP_S = 3
WRK_OVERRUN_S = 120
US_PER_MS, US_PER_S = 1e3, 1e6
SESSIONS_MAX, UNPAID_MAX = LOT_PLACES, 20_000
# The enforcement index's marker (`parking.domain.enforcement_index`): until its follower has
# written it, checks read PostgreSQL, so the clock starts after it.
INDEX_MARKER_PATTERN = "tapledger:enforcement:*:complete"
INDEX_WAIT_S = 120.0
INDEX_POLL_S = 0.2
SECONDS_MIN, SECONDS_MAX = 3, 120
CLIENTS_MAX = 64


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3_000, help="open sessions seeded")
    parser.add_argument("--unpaid", type=int, default=1_000, help="plates with no session")
    parser.add_argument("--seconds", type=int, default=15, help="the measured wrk run")
    parser.add_argument(
        "--connections", type=int, default=8, help="checks kept in flight (see above)"
    )
    parser.add_argument("--rate-limit", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    parser.add_argument("--sessions-seconds", type=int, default=20, help="0: no sessions run")
    parser.add_argument("--clients", type=int, default=8, help="threads starting and ending")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-work", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if not (0 < args.sessions <= SESSIONS_MAX and 0 <= args.unpaid <= UNPAID_MAX):
        parser.error(f"--sessions 1..{SESSIONS_MAX}, --unpaid 0..{UNPAID_MAX}")
    if not SECONDS_MIN <= args.seconds <= SECONDS_MAX:
        parser.error(f"--seconds {SECONDS_MIN}..{SECONDS_MAX}")
    if not (0 <= args.sessions_seconds <= SECONDS_MAX and 0 < args.clients <= CLIENTS_MAX):
        parser.error(f"--sessions-seconds 0..{SECONDS_MAX}, --clients 1..{CLIENTS_MAX}")
    return args


def write_paths(seeded: Seeded, path: Path) -> None:
    plates = seeded.with_session + seeded.without_session
    lines = [
        "/v1/parking/enforcement?" + urlencode({"lot_id": seeded.lot_id, "plate": plate})
        for plate in plates
    ]
    path.write_text("\n".join(lines) + "\n")


def wait_for_index() -> None:
    deadline = time.monotonic() + INDEX_WAIT_S
    while not redis_has_key(INDEX_MARKER_PATTERN):
        if time.monotonic() > deadline:
            raise SystemExit(f"the enforcement index was not built within {INDEX_WAIT_S:.0f} s")
        time.sleep(INDEX_POLL_S)


def run_wrk(
    server: Server, followers: int, paths: Path, token: str, *, connections: int, seconds: int
) -> tuple[WrkResult, float, float, float]:
    """The wrk figures, and the CPU µs a check cost the workers, PostgreSQL and the followers'
    process (`followers`, its pid) meanwhile."""
    env = os.environ | {"PATHS": str(paths), "TOKEN": token}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), server.base_url]
    workers = server.worker_pids()
    worker_before, postgres_before = cpu_seconds(workers), cpu_seconds(postgres_pids())
    followers_before = cpu_seconds([followers])
    done = subprocess.run(  # noqa: S603
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + WRK_OVERRUN_S,
        check=True,
    )
    worker_spent = cpu_used(worker_before, cpu_seconds(workers))
    postgres_spent = cpu_used(postgres_before, cpu_seconds(postgres_pids()))
    followers_spent = cpu_used(followers_before, cpu_seconds([followers]))
    match = re.search(r"WRK_JSON (\{.*\})", done.stdout)
    if match is None:
        raise SystemExit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(match.group(1))
    result = WrkResult(
        name="enforcement",
        connections=connections,
        requests=figures["requests"],
        seconds=figures["duration_us"] / US_PER_S,
        bodies=figures["requests"],
        taps_per_request=1,
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / US_PER_MS,
        p95_ms=figures["p95_us"] / US_PER_MS,
        p99_ms=figures["p99_us"] / US_PER_MS,
    )
    checks = max(1, result.requests)
    return (
        result,
        worker_spent / checks * US_PER_S,
        postgres_spent / checks * US_PER_S,
        followers_spent / checks * US_PER_S,
    )


def section(
    args: argparse.Namespace,
    started: datetime,
    loads: tuple[str, str],
    result: WrkResult,
    cpu_us: tuple[float, float, float],
    sessions: SessionsResult | None,
) -> str:
    met = result.req_per_s >= TARGET_CHECKS_PER_S and result.p99_ms <= TARGET_P99_MS
    software = report.machine(wrk_version(), "PostgreSQL (default config, same box)")
    start, end = report.markers(MARKER)
    return f"""{start}
## Parking over HTTP: enforcement checks, sessions started and ended

Written by `loadtests/bench_parking_enforcement.py` on {started:%Y-%m-%d %H:%M} UTC with:

    {report.command_line("loadtests.bench_parking_enforcement")}

Machine: {software}. Load average (1/5/15 min) {loads[0]} before and {loads[1]} after; wrk runs
on the same CPUs as the server and PostgreSQL.

| measure | load | throughput | p50 / p95 / p99 | failures | target | |
|---|---|---|---|---|---|---|
| `GET /v1/parking/enforcement` | wrk -t1 -c{result.connections}, {result.seconds:.0f} s | \
**{result.req_per_s:,.0f}** checks/s; CPU a check: workers {cpu_us[0]:,.0f} µs, PostgreSQL \
{cpu_us[1]:,.0f} µs, followers {cpu_us[2]:,.0f} µs | \
{result.p50_ms:.1f} / {result.p95_ms:.1f} / {result.p99_ms:.1f} ms | \
{result.non_2xx + result.socket_errors} | ≥ 3,000 checks/s, p99 ≤ 20 ms | \
{"met" if met else "**not met**"} |
{_session_rows(sessions)}
* **Server**: `tapledger serve --workers {WORKERS}` on 127.0.0.1,
  `TAPLEDGER_ENVIRONMENT=production`, a fresh PostgreSQL database, Redis db {REDIS_DB} flushed,
  the rate limit raised to {args.rate_limit:,} requests a minute (the Redis-backed limiter still
  runs on every request); the followers in a process of their own (`tapledger projections
  run`), as deployed. A check reads the enforcement index in Redis (one round trip from the
  event loop), which the index's follower builds from the log and every save keeps up; the
  clock starts once the index is marked complete (before that, checks read PostgreSQL).
* **Data**: one always-open lot, {args.sessions:,} sessions open (each its own plate, started
  over HTTP by staff) and {args.unpaid:,} plates with none; each request checks a plate drawn at
  random from both, with an operator token, {result.connections} checks kept in flight (8 by
  default: what handhelds present at 3,000 checks/s answered in 2-3 ms; the script's docstring
  says why). {WARMUP_S} s of the same load before, not counted; the database vacuumed and
  checkpointed before both.
{_sessions_note(sessions)}{end}"""


def _session_rows(r: SessionsResult | None) -> str:
    if r is None:
        return ""
    load = f"{r.clients} clients, {r.seconds:.0f} s"
    return (
        f"| sessions: `POST /sessions` | {load} | **{r.per_s:,.1f}** sessions started and "
        f"ended/s | {r.summary(r.start_ms)} | 0 | | |\n"
        f"| sessions: `POST /sessions/{{id}}/end` | (same run) | {r.sessions:,} ended and "
        f"settled | {r.summary(r.end_ms)} | 0 | | |\n"
    )


def _sessions_note(r: SessionsResult | None) -> str:
    if r is None:
        return ""
    return f"""* **Sessions**: after the checks, on the same server, {r.clients} client threads
  (Python, httpx, on the same CPUs), each with its own funded account and plate, start a
  session paid two hours ahead (a hold) and end it at once (the fee posted from the hold, the
  rest released, the record sealed), one after the other; staff token. Latencies are per
  request, as the client saw them.
"""


def measure(
    args: argparse.Namespace, bench: Bench, server: Server, followers: Followers
) -> tuple[WrkResult, tuple[float, float, float], SessionsResult | None]:
    """Seeds, waits for the enforcement index, runs wrk (warm-up, then measured) and the
    sessions."""
    admin = {"Authorization": f"Bearer {bench.admin_token}"}
    began = time.monotonic()
    seeded = seed_parking(server.base_url, admin, args.sessions, args.unpaid)
    print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)
    paths = bench.work / "paths.txt"
    write_paths(seeded, paths)
    settle_database(bench.database_url)
    wait_for_index()
    token, pid = seeded.officer_token, followers.pid
    run_wrk(server, pid, paths, token, connections=args.connections, seconds=WARMUP_S)
    result, *cpu = run_wrk(
        server, pid, paths, token, connections=args.connections, seconds=args.seconds
    )
    sessions = None
    if args.sessions_seconds:
        sessions = run_sessions(
            server.base_url, admin, clients=args.clients, seconds=args.sessions_seconds
        )
    return result, (cpu[0], cpu[1], cpu[2]), sessions


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    started, load_before = datetime.now(UTC), report.load_average()
    with bench_environment(args.rate_limit, keep_work=args.keep_work) as bench:
        seal_sam_keys(bench.env)
        server = start_server(bench.env, free_port(), bench.work / "server.log")
        try:
            with Followers(bench.env, bench.work / "followers.log") as followers:
                result, cpu, sessions = measure(args, bench, server, followers)
        finally:
            server.stop()
    print(
        f"enforcement: {result.req_per_s:,.0f} checks/s, p50/p95/p99 {result.p50_ms:.1f}/"
        f"{result.p95_ms:.1f}/{result.p99_ms:.1f} ms, non-2xx {result.non_2xx}, "
        f"socket errors {result.socket_errors}; CPU a check: workers {cpu[0]:,.0f} µs, "
        f"PostgreSQL {cpu[1]:,.0f} µs, followers {cpu[2]:,.0f} µs",
        flush=True,
    )
    if sessions is not None:
        print(
            f"sessions: {sessions.per_s:,.1f} started and ended/s ({sessions.sessions:,}); "
            f"start {sessions.summary(sessions.start_ms)}, end {sessions.summary(sessions.end_ms)}",
            flush=True,
        )
    if not args.no_write:
        loads = (load_before, report.load_average())
        text = section(args, started, loads, result, cpu, sessions)
        report.write_section(args.out, text, marker=MARKER)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
