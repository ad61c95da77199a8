"""Loads the tap path of a real server and writes the figures into docs/benchmarks.md.

    python -m loadtests.run_taps [--seconds 60] [--wrk-seconds 10] [--profile] [--out PATH]

One command, everything on 127.0.0.1 and bounded in time:

1. a fresh PostgreSQL database `tl_taps_<hex>` and a flushed Redis database; `tapledger serve`
   with 2 workers and production settings (secrets drawn for the run, a sealed SAM key file so
   card MACs are re-verified); waits for `/healthz`;
2. seeds validators, accounts, virtual cards (a P-256 key per simulated phone) and smart cards
   over HTTP, then builds every tap before any clock starts: TL1 codes signed on all cores,
   card session proofs from `tapledger.load_fixtures` (run as a program: it needs `hardware`);
3. (a) wrk ceilings, after a few seconds of uncounted warm-up and with the database vacuumed
   before each: batched QR taps, batched card taps, single taps at saturation, and single
   taps paced to about 500 req/s (wrk with a random delay before each request: a closed loop,
   so a slow answer delays that connection's next request; the rate is what wrk measured);
   (b) Locust, headless, the scenario mix of `loadtests/locustfile.py`, with the followers
   (`tapledger projections run`) running beside the server, as deployed;
   (c) the followers alone for a bounded time on the taps the load left: taps priced per second;
   (d) raw `eventsourcing` appends on the same database, same batch size, 2 processes;
4. stops the server, drops the database, flushes the Redis database, writes its section.

`--profile` adds a batched-QR wrk run with `py-spy` sampling one worker and prints where the
time goes. `--quick` runs the wrk ceilings and the followers only and writes nothing (with
`--profile`, every ceiling is sampled).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from loadtests import raw_appends, report
from ticketing.tl1.device import sign_code

MARKER = "bench_taps"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
REDIS_DB = 14
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
HOST = "127.0.0.1"
WORKERS = 2
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
BATCH = 100
PHONES = 300
CARDS = 200
LOCUST_VALIDATORS = 24
LOCUST_GATES = 8
LOCUST_TAPS_PER_VALIDATOR_S = 80  # an upper bound of what a ValidatorUser sends
LOCUST_GATE_TAPS_PER_S = 6
WRK_VALIDATORS = 8
# Sizing: each wrk pool holds this many seconds at these rates, so no body is sent twice.
QR_POOL_RATE = 15_000
CARD_POOL_RATE = 26_000
SINGLE_POOL_RATE = 4_000
PACED_RATE = 500
PACED_CONNECTIONS = 50
BATCH_CONNECTIONS = 8
SINGLE_CONNECTIONS = 50
FORGED_SHARE = 0.005
QR_SHARE_BUS = 0.6
QR_SHARE_METRO = 0.5
RAW_SECONDS = 8.0
FOLLOW_WARMUP_S = 5.0
FOLLOW_SECONDS = 20.0
PROFILE_SECONDS = 15
# Batched QR taps sent before the ceilings and not counted: the server's pools, caches and
# threads are then as a running server's are, not as a just-started one's.
WARMUP_SECONDS = 3
PROFILE_RATE = 100
TARGETS = {
    "qr": 7_000.0,
    "card": 12_000.0,
    "single": 2_000.0,
    "paced_p99_ms": 25.0,
    "ratio": 0.6,
}

Tap = dict[str, Any]


# Processes and the store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def create_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle_database(database_url: str) -> None:
    """What the last run left for PostgreSQL to do in the background (vacuuming the rows it
    inserted, writing back dirty pages), done now, so each run starts from the same state and
    is not charged for the one before it; pgbench vacuums before each run for the same reason."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def worker_pids(self) -> list[int]:
        """The uvicorn workers: the serve process's children that run `spawn_main`."""
        pids = []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in children.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in cmdline:
                pids.append(int(pid))
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(env: dict[str, str], port: int, log: Path) -> Server:
    command = [
        str(Path(sys.executable).with_name("tapledger")),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, f"http://{HOST}:{port}", log)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: see {log}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                # Both workers answer before the clock starts.
                time.sleep(1.0)
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise SystemExit(f"the server did not answer /healthz within {HEALTH_TIMEOUT_S:.0f} s")


class Followers:
    """`tapledger projections run` in its own process while the block runs."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Followers:
        command = [str(Path(sys.executable).with_name("tapledger")), "projections", "run"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass(frozen=True)
class FollowResult:
    applied: int  # taps the journeys follower applied in the window
    seconds: float
    behind: int  # taps still to apply when the window closed

    @property
    def per_s(self) -> float:
        return self.applied / self.seconds


def journeys_position(database_url: str) -> tuple[int, int]:
    """(the journeys follower's position in the Taps log, the log's head)."""
    with psycopg.connect(database_url) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taps_events")
        tracked = conn.execute(
            "SELECT coalesce(max(notification_id), 0) FROM journeys_tracking "
            "WHERE application_name = 'Taps'"
        )
        return int(tracked.fetchone()[0]), int(head.fetchone()[0])  # type: ignore[index]


def measure_followers(env: dict[str, str], database_url: str, log: Path) -> FollowResult:
    """How fast the followers, in their own process, work through the taps the load left."""
    with Followers(env, log):
        time.sleep(FOLLOW_WARMUP_S)
        start, _ = journeys_position(database_url)
        began = time.monotonic()
        time.sleep(FOLLOW_SECONDS)
        end, head = journeys_position(database_url)
        seconds = time.monotonic() - began
    return FollowResult(end - start, seconds, head - end)


# Seeding over HTTP


@dataclass
class Device:
    validator_id: int
    kind: str
    token: str


@dataclass
class World:
    phones: list[tuple[int, bytes]] = field(default_factory=list)  # (scalar, certificate)
    cards: list[dict[str, str]] = field(default_factory=list)  # serial, account_id
    devices: dict[str, list[Device]] = field(default_factory=dict)


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise SystemExit(f"seeding failed: {response.request.url} {response.text}")
    body: dict[str, Any] = response.json()
    return body


# Places of the built-in Hanoi fare feed, by validator kind.
PLACES = {
    "bus": {"stop_id": "bus-kim-ma", "route_id": "01"},
    "metro_gate": {"stop_id": "2A-01", "route_id": "2A", "direction": "entry"},
}


def seed(client: httpx.Client, admin: dict[str, str], groups: dict[str, list[str]]) -> World:
    world = World()
    next_id = 1
    for group, kinds in groups.items():
        devices = []
        for kind in kinds:
            body = {"validator_id": next_id, "kind": kind, "network_id": 1, "location": 32}
            body |= PLACES.get(kind, {})  # registration refuses a place the feed cannot price
            registered = _ok(client.post("/v1/validators", json=body, headers=admin))
            devices.append(Device(next_id, kind, registered["token"]))
            next_id += 1
        world.devices[group] = devices
    base_scalar = secrets.randbelow(1 << 200) + (1 << 100)
    for index in range(PHONES):
        account_id = _ok(client.post("/v1/accounts", json={}, headers=admin))["id"]
        scalar = base_scalar + index
        key = ec.derive_private_key(scalar, ec.SECP256R1())
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        card = _ok(
            client.post(
                f"/v1/accounts/{account_id}/virtual-cards",
                json={"device_key": base64.b64encode(public).decode()},
                headers=admin,
            )
        )
        world.phones.append((scalar, base64.b64decode(card["certificate"])))
        if index < CARDS:
            serial = secrets.token_hex(8)
            _ok(
                client.post(
                    "/v1/cards", json={"serial": serial, "account_id": account_id}, headers=admin
                )
            )
            world.cards.append({"serial": serial, "account_id": account_id})
    return world


# Taps, built before any clock starts


def _sign(job: tuple[int, bytes, int, list[int]]) -> list[str]:
    scalar, certificate, generated_at, counters = job
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    return [
        sign_code(
            certificate=certificate,
            device_private_key=key,
            generated_at=generated_at,
            counter=counter,
        )
        for counter in counters
    ]


def sign_codes(world: World, count: int, generated_at: int) -> list[str]:
    """`count` distinct codes, spread over the phones, signed on every core."""
    per_phone = math.ceil(count / len(world.phones))
    jobs = [
        (scalar, certificate, generated_at, list(range(per_phone)))
        for scalar, certificate in world.phones
    ]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        by_phone = list(pool.map(_sign, jobs, chunksize=8))
    # Interleave the phones, so any slice of the pool holds many riders.
    codes = [by_phone[p][i] for i in range(per_phone) for p in range(len(by_phone))]
    return codes[:count]


def card_proofs(world: World, per_card: int, at: int, work: Path, env: dict[str, str]) -> list[Tap]:
    cards_file = work / "cards.json"
    cards_file.write_text(json.dumps(world.cards))
    out = work / "proofs.json"
    subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "tapledger.load_fixtures",
            "--cards",
            str(cards_file),
            "--proofs-per-card",
            str(per_card),
            "--key-file",
            env["TAPLEDGER_SAM_KEY_FILE"],
            "--out",
            str(out),
            "--at",
            str(at),
        ],
        env=env,
        check=True,
    )
    by_card: dict[str, list[dict[str, Any]]] = json.loads(out.read_text())
    serials = list(by_card)
    return [
        {"serial": serial, "proof": by_card[serial][i]}
        for i in range(per_card)
        for serial in serials
    ]


def forge(code: str) -> str:
    """The same code with one character of its signature changed."""
    last = code[-2]
    return code[:-2] + ("0" if last != "0" else "1") + code[-1]


class TapMaker:
    """Turns codes and proofs into the taps a validator uploads, with device sequences."""

    def __init__(self, codes: list[str], proofs: list[Tap], tapped_at: int) -> None:
        self.codes = iter(codes)
        self.proofs = iter(proofs)
        self.tapped_at = tapped_at
        self.seqs: Counter[int] = Counter()
        self.rng = random.Random(7)
        self.forged = 0

    def qr(self, validator_id: int) -> Tap:
        self.seqs[validator_id] += 1
        code = next(self.codes)
        tap: Tap = {
            "medium": "qr",
            "seq": self.seqs[validator_id],
            "tapped_at": self.tapped_at,
            "device_decision": "accepted",
            "device_reason": "accepted",
            "code": code,
        }
        if self.rng.random() < FORGED_SHARE:
            self.forged += 1
            tap |= {"code": forge(code), "device_decision": "refused", "device_reason": "bad_sig"}
        return tap

    def card(self, validator_id: int) -> Tap:
        self.seqs[validator_id] += 1
        proof = next(self.proofs)
        return {
            "medium": "card",
            "seq": self.seqs[validator_id],
            "tapped_at": self.tapped_at,
            "device_decision": "accepted",
            "device_reason": "charged",
            **proof,
        }

    def mixed(self, device: Device) -> Tap:
        share = QR_SHARE_BUS if device.kind == "bus" else QR_SHARE_METRO
        return (
            self.qr(device.validator_id)
            if self.rng.random() < share
            else self.card(device.validator_id)
        )


def bodies_file(path: Path, lines: Iterator[tuple[str, str, dict[str, Any]]]) -> int:
    count = 0
    with path.open("w") as out:
        for route, token, body in lines:
            out.write(f"{route}\t{token}\t{json.dumps(body, separators=(',', ':'))}\n")
            count += 1
    return count


def batch_bodies(
    devices: list[Device], make: Any, batches: int
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for index in range(batches):
        device = devices[index % len(devices)]
        taps = [make(device.validator_id) for _ in range(BATCH)]
        yield "/v1/taps/batch", device.token, {"validator_id": device.validator_id, "taps": taps}


def single_bodies(
    devices: list[Device], maker: TapMaker, count: int
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for index in range(count):
        device = devices[index % len(devices)]
        yield (
            "/v1/taps",
            device.token,
            {"validator_id": device.validator_id, "tap": maker.mixed(device)},
        )


# Measuring


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


def run_wrk_measured(server: Server, name: str, bodies: Path, count: int, **wrk: Any) -> WrkResult:
    """`run_wrk` with the CPU time the workers and PostgreSQL spent per tap meanwhile."""
    workers = server.worker_pids()
    worker_before, postgres_before = cpu_seconds(workers), cpu_seconds(postgres_pids())
    result = run_wrk(name, server.base_url, bodies, count, **wrk)
    worker_after = cpu_seconds(workers)
    worker_spent = cpu_used(worker_before, worker_after)
    each = " / ".join(
        f"{spent - worker_before.get(pid, 0.0):.1f}" for pid, spent in worker_after.items()
    )
    postgres_spent = cpu_used(postgres_before, cpu_seconds(postgres_pids()))
    taps = max(1, result.requests * result.taps_per_request)
    measured = dataclasses.replace(
        result,
        worker_cpu_us=worker_spent / taps * 1e6,
        postgres_cpu_us=postgres_spent / taps * 1e6,
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
    script = Path(__file__).with_name("taps.lua")
    env = os.environ | {"BODIES": str(bodies), "DELAY_MS": str(delay_ms)}
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url,
    ]
    done = subprocess.run(  # noqa: S603
        command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=True
    )
    match = re.search(r"WRK_JSON (\{.*\})", done.stdout)
    if match is None:
        raise SystemExit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(match.group(1))
    result = WrkResult(
        name=name,
        connections=connections,
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        bodies=count,
        taps_per_request=taps_per_request,
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1e3,
        p95_ms=figures["p95_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
    )
    print(
        f"  {name}: {result.req_per_s:,.0f} req/s, {result.taps_per_s:,.0f} taps/s, "
        f"p50/p99 {result.p50_ms:.1f}/{result.p99_ms:.1f} ms, non-2xx {result.non_2xx}"
        + (" (WRAPPED: bodies re-sent)" if result.wrapped else ""),
        flush=True,
    )
    return result


@dataclass(frozen=True)
class LocustResult:
    rows: list[dict[str, str]]
    tally: dict[str, int]
    users: int
    seconds: int


def run_locust(
    base_url: str, fixtures: Path, work: Path, *, users: int, seconds: int
) -> LocustResult:
    prefix = work / "locust"
    summary = work / "locust-summary.json"
    env = os.environ | {"LOADTEST_FIXTURES": str(fixtures), "LOADTEST_SUMMARY": str(summary)}
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(Path(__file__).with_name("locustfile.py")),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    subprocess.run(  # noqa: S603
        command, env=env, timeout=seconds + 120, check=False, stdout=subprocess.DEVNULL
    )
    import csv

    with Path(f"{prefix}_stats.csv").open() as stats:
        rows = list(csv.DictReader(stats))
    tally: dict[str, int] = json.loads(summary.read_text()) if summary.exists() else {}
    return LocustResult(rows, tally, users, seconds)


class Spy:
    """py-spy sampling one worker for `seconds`, started now."""

    def __init__(self, server: Server, raw: Path, seconds: int) -> None:
        self.raw = raw
        self.seconds = seconds
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(server.worker_pids()[0]),
                "--duration",
                str(seconds),
                "--rate",
                str(PROFILE_RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def summary(self) -> str:
        self.process.wait(self.seconds + 30)
        return summarise_profile(self.raw)


def profile(server: Server, base_url: str, bodies: Path, count: int, work: Path) -> str:
    """py-spy on one worker during a batched-QR run: the functions with the most samples."""
    spy = Spy(server, work / "profile.txt", PROFILE_SECONDS)
    run_wrk(
        "profiled batched QR",
        base_url,
        bodies,
        count,
        connections=BATCH_CONNECTIONS,
        seconds=PROFILE_SECONDS,
        taps_per_request=BATCH,
    )
    return spy.summary()


def summarise_profile(raw: Path) -> str:
    """Self and inclusive sample shares from py-spy's collapsed stacks (idle threads dropped)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples_text = line.rpartition(" ")
        samples = int(samples_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")"
            for f in stack.split(";")
            if " (" in f
        ]
        if not frames:
            continue
        leaf = frames[-1]
        if any(
            word in leaf
            for word in (
                "wait (threading",
                "select (selectors",
                "_worker (concurrent",
                "run_forever",
                "poll (",
            )
        ):
            continue
        total += samples
        own[leaf] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"busy samples: {total}", "", "inclusive (share of busy samples):"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(40)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(25)]
    return "\n".join(lines)


# The section of docs/benchmarks.md


def _locust_row(rows: list[dict[str, str]], name: str) -> dict[str, str]:
    for row in rows:
        if row["Name"] == name:
            return row
    return {}


def _num(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def section(
    args: argparse.Namespace,
    started: datetime,
    loads: tuple[str, str],
    locust: LocustResult,
    wrk: dict[str, WrkResult],
    raw: raw_appends.RawResult,
    counts: dict[str, int],
    follow: FollowResult,
    ecdsa_us: float,
) -> str:
    start, end = report.markers(MARKER)
    batch_row = _locust_row(locust.rows, "POST /v1/taps/batch")
    single_row = _locust_row(locust.rows, "POST /v1/taps")
    tally = locust.tally
    locust_taps_per_s = tally.get("taps_sent", 0) / locust.seconds
    qr, card, single, paced = wrk["qr"], wrk["card"], wrk["single"], wrk["paced"]
    ratio = qr.taps_per_s / raw.per_s
    card_ratio = card.taps_per_s / raw.per_s

    def wrk_line(label: str, r: WrkResult, target: str, verdict: str) -> str:
        wrapped = " (bodies re-sent!)" if r.wrapped else ""
        cpu = ""
        if r.worker_cpu_us is not None and r.postgres_cpu_us is not None:
            cpu = (
                f"; CPU a tap: workers {r.worker_cpu_us:,.0f} µs, "
                f"PostgreSQL {r.postgres_cpu_us:,.0f} µs"
            )
        return (
            f"| {label} | wrk -t1 -c{r.connections}, {r.seconds:.0f} s | "
            f"**{r.taps_per_s:,.0f}** taps/s ({r.req_per_s:,.1f} req/s){wrapped}{cpu} | "
            f"{r.p50_ms:.1f} / {r.p95_ms:.1f} / {r.p99_ms:.1f} ms | "
            f"{r.non_2xx + r.socket_errors} | "
            f"{target} | {verdict} |"
        )

    table = [
        "| measure | load | throughput | p50 / p95 / p99 | failures | target | |",
        "|---|---|---|---|---|---|---|",
        wrk_line(
            f"batched QR ({BATCH} taps/POST, signatures re-verified)",
            qr,
            "≥ 7,000 taps/s",
            _verdict(qr.taps_per_s >= TARGETS["qr"]),
        ),
        wrk_line(
            f"batched card ({BATCH} taps/POST, MACs re-verified)",
            card,
            "≥ 12,000 taps/s",
            _verdict(card.taps_per_s >= TARGETS["card"]),
        ),
        wrk_line(
            "single taps (`POST /v1/taps`) at saturation",
            single,
            "≥ 2,000 taps/s",
            _verdict(single.req_per_s >= TARGETS["single"]),
        ),
        wrk_line(
            f"single taps paced to ~{PACED_RATE}/s ({paced.connections} conn., "
            f"0-{2 * args.paced_delay_ms} ms before each request)",
            paced,
            "p99 ≤ 25 ms at 500/s",
            _verdict(
                paced.p99_ms <= TARGETS["paced_p99_ms"] and paced.req_per_s >= 0.9 * PACED_RATE
            ),
        ),
        f"| raw `eventsourcing` appends, `save(*{raw.batch})`, {raw.processes} processes | "
        f"{raw.seconds:.0f} s | **{raw.per_s:,.0f}** aggregates/s | "
        f"save {raw.save_p50_ms:.1f} / - / "
        f"{raw.save_p99_ms:.1f} ms | 0 | | |",
        f"| ingestion / raw, QR (card) | | **{ratio:.2f}** ({card_ratio:.2f}) | | | ≥ 0.6 | "
        f"{_verdict(ratio >= TARGETS['ratio'])} |",
        f"| Locust mix: batches | {locust.users} users, {locust.seconds} s | "
        f"{_num(batch_row.get('Requests/s')):,.1f} req/s, **{locust_taps_per_s:,.0f}** taps/s | "
        f"{_num(batch_row.get('50%')):.0f} / {_num(batch_row.get('95%')):.0f} / "
        f"{_num(batch_row.get('99%')):.0f} ms | {batch_row.get('Failure Count', '?')} | | |",
        f"| Locust mix: gates, single taps | (same run) | "
        f"{_num(single_row.get('Requests/s')):,.1f} req/s | "
        f"{_num(single_row.get('50%')):.0f} / {_num(single_row.get('95%')):.0f} / "
        f"{_num(single_row.get('99%')):.0f} ms | {single_row.get('Failure Count', '?')} | | |",
    ]
    answers = ", ".join(
        f"{k.removeprefix('result_')} {v:,}"
        for k, v in sorted(tally.items())
        if k.startswith("result_")
    )
    reasons = ", ".join(
        f"{k.removeprefix('reason_')} {v:,}"
        for k, v in sorted(tally.items())
        if k.startswith("reason_")
    )
    software = report.machine(
        f"eventsourcing {version('eventsourcing')}",
        f"uvicorn {version('uvicorn')}",
        f"locust {version('locust')}",
        _wrk_version(),
        "PostgreSQL (default config, same box)",
    )
    text = f"""{start}
## Tap path over HTTP: ingestion, online checks, ceilings

Written by `loadtests/run_taps.py` on {started:%Y-%m-%d %H:%M} UTC with:

    {report.command_line("loadtests.run_taps")}

Machine: {software}. One ECDSA P-256 verification takes {ecdsa_us:.0f} µs of one core here
(`cryptography`, measured before the run): every QR tap pays it once.
While it ran: load average (1/5/15 min) {loads[0]} before and {loads[1]} after. The load
generators (Locust, wrk) run on the same CPUs as the server and PostgreSQL.

{chr(10).join(table)}

* **Server**: `tapledger serve --workers {WORKERS}` on 127.0.0.1,
  `TAPLEDGER_ENVIRONMENT=production`, a fresh PostgreSQL database, Redis db {REDIS_DB}
  flushed, a sealed SAM key file (every card MAC is re-verified), the rate limit raised to
  {args.rate_limit:,} requests per minute per token
  (the default 1,200 would refuse the load; the Redis-backed limiter still runs on every request).
* **Taps**: all built before the clock starts. {counts["phones"]} phones (P-256 keys, virtual cards
  issued over HTTP) sign TL1 codes; {counts["cards"]} smart cards issued over HTTP, their session
  proofs from one real emulated session per card (`tapledger.load_fixtures`), the rest MAC'd with
  the card's session keys. {100 * FORGED_SHARE:.1f} % of QR taps carry a forged signature
  (device decision `refused`). Each tap is new (its `(validator, seq)` and its code or
  card counter unused), unless
  it is one of Locust's re-sends; a wrk row marked "bodies re-sent" ran out of new bodies.
* **wrk** rows: one body per request, each sent once, taken in order from files of pre-built
  bodies (`loadtests/taps.lua`), after {WARMUP_SECONDS} s of batched QR taps that are not
  counted. Before each row the database is vacuumed and checkpointed, so no row pays for the
  background work of the one before. The CPU a tap cost the server's workers and PostgreSQL
  is read from `/proc` around each row: on this shared machine it moves less between runs
  than the throughput does. Single taps are half QR and half
  card, from {WRK_VALIDATORS} metro gates.
  wrk2 is not in Debian, so the ~{PACED_RATE}/s row is wrk with a delay before each request,
  drawn uniformly from 0 to {2 * args.paced_delay_ms} ms so that the connections do not move in
  step: a closed loop, so the rate falls when answers slow down, and its p99 is not corrected
  for coordinated omission. Its measured rate was {paced.req_per_s:,.0f} req/s.
* **Raw appends**: `loadtests/raw_appends.py`, {raw.processes} processes (as many as the server's
  workers) each saving {raw.batch} new one-event aggregates per `save()`, the payload shaped like a
  QR tap, on the same database, {raw.seconds:.0f} s after 1 s of warm-up, through the library's
  own PostgreSQL recorder. Ingestion writes one event per tap, plus one claim row per accepted
  code or card session in the same transaction (`ticketing/adapters/tap_recorders.py`), through a
  recorder that sends the events as typed binary arrays.
* **Followers**: the server runs none (`TAPLEDGER_FOLLOW_IN_PROCESS=false`); `tapledger
  projections run` runs beside it during the Locust mix, and after the mix it is given
  {follow.seconds:.0f} s (after {FOLLOW_WARMUP_S:.0f} s of start-up) on the taps the load left:
  the journeys follower priced **{follow.per_s:,.0f} taps/s** ({follow.behind:,} still to price
  when it stopped).
* **Locust** (`loadtests/locustfile.py`): {LOCUST_VALIDATORS} validators (bus and
  metro, {QR_SHARE_BUS:.0%} / {QR_SHARE_METRO:.0%} QR) uploading batches of
  20-100 taps about once a second, 1 % of batches re-sent whole (the
  lost-acknowledgement retry, answered `duplicate`); {LOCUST_GATES} gates asking for one tap at
  a time, 5 taps/s each. It sent {tally.get("taps_sent", 0):,} batched taps
  ({tally.get("taps_resent", 0):,} of them re-sent) and {tally.get("single_sent", 0):,} single
  taps. Answers: {answers or "none"}; refusal reasons: {reasons or "none"}. Locust's request
  statistics count a request as failed if it is not a 200 or if its `duplicate` answers do not
  match what was re-sent.
{end}"""
    return text


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)  # noqa: S607
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk"


# The command


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="the Locust run (10..300)")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="each wrk run (3..60)")
    parser.add_argument("--users", type=int, default=LOCUST_VALIDATORS + LOCUST_GATES)
    parser.add_argument("--profile", action="store_true", help="py-spy one worker (batched QR)")
    parser.add_argument("--rate-limit", type=int, default=1_000_000)
    parser.add_argument("--paced-delay-ms", type=int, default=95)
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    parser.add_argument("--keep-work", action="store_true", help="keep the temp directory")
    parser.add_argument(
        "--quick", action="store_true", help="wrk ceilings only; print, write nothing"
    )
    args = parser.parse_args(argv)
    if not 10 <= args.seconds <= 300 or not 3 <= args.wrk_seconds <= 60:
        parser.error("--seconds must be 10..300 and --wrk-seconds 3..60")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    started = datetime.now(UTC)
    load_before = report.load_average()
    ecdsa_us = report.ecdsa_p256_verify_us()
    print(f"one ECDSA P-256 verification: {ecdsa_us:.0f} µs", flush=True)
    work = Path(tempfile.mkdtemp(prefix="tl_taps_"))
    database = f"tl_taps_{secrets.token_hex(4)}"
    database_url = PG_URL.format(db=database)
    kek = base64.b64encode(secrets.token_bytes(32)).decode()
    admin_token = secrets.token_urlsafe(30)[:40]
    env = os.environ | {
        "TAPLEDGER_ENVIRONMENT": "production",
        "TAPLEDGER_DATABASE_URL": database_url,
        "TAPLEDGER_REDIS_URL": REDIS_URL,
        "TAPLEDGER_ADMIN_TOKEN": admin_token,
        "TAPLEDGER_KEY_ENCRYPTION_KEY": kek,
        "TAPLEDGER_SAM_KEY_FILE": str(work / "sam.sealed"),
        "TAPLEDGER_SAM_KEY_FILE_SEALED": "true",
        "TAPLEDGER_DATA_DIR": str(work / "data"),
        "TAPLEDGER_RATE_LIMIT_REQUESTS": str(args.rate_limit),
        "TAPLEDGER_RATE_LIMIT_WINDOW_S": "60",
        # The followers run in their own process (`tapledger projections run`), as deployed.
        "TAPLEDGER_FOLLOW_IN_PROCESS": "false",
    }
    create_database(database)
    flush_redis()
    server: Server | None = None
    try:
        # The SAM key file must exist before the server starts: draw the keys with no cards.
        (work / "none.json").write_text("[]")
        subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "tapledger.load_fixtures",
                "--cards",
                str(work / "none.json"),
                "--proofs-per-card",
                "1",
                "--key-file",
                env["TAPLEDGER_SAM_KEY_FILE"],
                "--out",
                str(work / "none-out.json"),
                "--at",
                "0",
            ],
            env=env,
            check=True,
        )
        server = start_server(env, free_port(), work / "server.log")
        print(f"server up at {server.base_url}, workers {server.worker_pids()}", flush=True)
        admin = {"Authorization": f"Bearer {admin_token}"}
        groups = {
            "locust_validators": [
                "bus" if i % 2 == 0 else "metro_gate" for i in range(LOCUST_VALIDATORS)
            ],
            "locust_gates": ["metro_gate"] * LOCUST_GATES,
            "qr": ["bus"] * WRK_VALIDATORS,
            "card": ["bus"] * WRK_VALIDATORS,
            "single": ["metro_gate"] * WRK_VALIDATORS,
            "paced": ["metro_gate"] * WRK_VALIDATORS,
            "profile": ["bus"] * WRK_VALIDATORS,
            "warmup": ["bus"] * WRK_VALIDATORS,
            "check": ["bus", "bus"],
        }
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            began = time.monotonic()
            world = seed(client, admin, groups)
            print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)

            # How many taps each part needs, with a margin, so no body is sent twice.
            s = args.wrk_seconds
            locust_batched = LOCUST_VALIDATORS * LOCUST_TAPS_PER_VALIDATOR_S * args.seconds
            locust_single = LOCUST_GATES * LOCUST_GATE_TAPS_PER_S * args.seconds
            qr_batches = math.ceil(QR_POOL_RATE * s / BATCH)
            card_batches = math.ceil(CARD_POOL_RATE * s / BATCH)
            single_count = SINGLE_POOL_RATE * s
            paced_count = int(PACED_RATE * 1.3 * s)
            profile_batches = (
                math.ceil(QR_POOL_RATE * PROFILE_SECONDS / BATCH) if args.profile else 0
            )
            mixed = locust_batched + locust_single + single_count + paced_count
            warmup_batches = math.ceil(QR_POOL_RATE * WARMUP_SECONDS / BATCH)
            qr_needed = (
                (qr_batches + profile_batches + warmup_batches + 2) * BATCH
                + int(mixed * 0.6)
                + 1000
            )
            card_needed = (card_batches + 2) * BATCH + int(mixed * 0.6) + 1000
            began = time.monotonic()
            time.sleep(2.0)  # codes dated after the certificates' issue
            tapped_at = int(time.time())
            codes = sign_codes(world, qr_needed, tapped_at - 1)
            print(f"signed {len(codes):,} codes in {time.monotonic() - began:.1f} s", flush=True)
            began = time.monotonic()
            proofs = card_proofs(
                world, math.ceil(card_needed / len(world.cards)), tapped_at, work, env
            )
            print(
                f"made {len(proofs):,} card proofs in {time.monotonic() - began:.1f} s", flush=True
            )
            maker = TapMaker(codes, proofs, tapped_at)

            # A check before any timing: one batch of each medium is accepted whole.
            check = world.devices["check"]
            for make, device in ((maker.qr, check[0]), (maker.card, check[1])):
                taps = [make(device.validator_id) for _ in range(BATCH)]
                answer = _ok(
                    client.post(
                        "/v1/taps/batch",
                        json={"validator_id": device.validator_id, "taps": taps},
                        headers={"Authorization": f"Bearer {device.token}"},
                    )
                )
                statuses = Counter((r["status"], r["reason"]) for r in answer["results"])
                forged = sum(t["device_decision"] == "refused" for t in taps)
                if statuses[("accepted", None)] != BATCH - forged:
                    raise SystemExit(f"the fixtures are not accepted: {statuses}")
            print("fixtures check: accepted", flush=True)

        fixtures = {
            "validators": [
                {
                    "validator_id": d.validator_id,
                    "kind": d.kind,
                    "token": d.token,
                    "taps": [
                        maker.mixed(d) for _ in range(LOCUST_TAPS_PER_VALIDATOR_S * args.seconds)
                    ],
                }
                for d in world.devices["locust_validators"]
            ],
            "gates": [
                {
                    "validator_id": d.validator_id,
                    "kind": d.kind,
                    "token": d.token,
                    "taps": [maker.mixed(d) for _ in range(LOCUST_GATE_TAPS_PER_S * args.seconds)],
                }
                for d in world.devices["locust_gates"]
            ],
        }
        fixtures_path = work / "fixtures.json"
        fixtures_path.write_text(json.dumps(fixtures))
        files: dict[str, tuple[Path, int]] = {}
        for name, lines in (
            ("qr", batch_bodies(world.devices["qr"], maker.qr, qr_batches)),
            ("card", batch_bodies(world.devices["card"], maker.card, card_batches)),
            ("single", single_bodies(world.devices["single"], maker, single_count)),
            ("paced", single_bodies(world.devices["paced"], maker, paced_count)),
            ("profile", batch_bodies(world.devices["profile"], maker.qr, profile_batches)),
            ("warmup", batch_bodies(world.devices["warmup"], maker.qr, warmup_batches)),
        ):
            path = work / f"{name}.bodies"
            files[name] = (path, bodies_file(path, lines))
        print(f"fixtures written ({maker.forged} forged codes)", flush=True)

        path, count = files["warmup"]
        run_wrk(
            "warm-up (not counted)",
            server.base_url,
            path,
            count,
            connections=BATCH_CONNECTIONS,
            seconds=WARMUP_SECONDS,
            taps_per_request=BATCH,
        )
        wrk: dict[str, WrkResult] = {}
        for name, connections, per_request, delay in (
            ("qr", BATCH_CONNECTIONS, BATCH, 0),
            ("card", BATCH_CONNECTIONS, BATCH, 0),
            ("single", SINGLE_CONNECTIONS, 1, 0),
            ("paced", PACED_CONNECTIONS, 1, args.paced_delay_ms),
        ):
            settle_database(database_url)
            time.sleep(1.0)
            path, count = files[name]
            spy = Spy(server, work / f"spy-{name}.txt", s) if args.quick and args.profile else None
            wrk[name] = run_wrk_measured(
                server,
                name,
                path,
                count,
                connections=connections,
                seconds=s,
                taps_per_request=per_request,
                delay_ms=delay,
            )
            if spy is not None:
                print(spy.summary(), flush=True)
        # The mix last, so that the ceilings above are measured on a server that has only
        # just been seeded, and the mix sees a store the ceilings have filled.
        locust: LocustResult | None = None
        if not args.quick:
            print(f"locust: {args.users} users, {args.seconds} s, followers running", flush=True)
            with Followers(env, work / "followers.log"):
                locust = run_locust(
                    server.base_url, fixtures_path, work, users=args.users, seconds=args.seconds
                )
            print(f"  locust tally: {locust.tally}", flush=True)
        profile_text = ""
        if args.profile and not args.quick:
            path, count = files["profile"]
            profile_text = profile(server, server.base_url, path, count, work)
            (work / "profile-summary.txt").write_text(profile_text)
            print(profile_text, flush=True)
        server.stop()
        server = None
        print(f"followers: {FOLLOW_SECONDS:.0f} s of catching up on the taps", flush=True)
        follow = measure_followers(env, database_url, work / "followers.log")
        print(f"  journeys: {follow.per_s:,.0f} taps/s ({follow.behind:,} left)", flush=True)
        if args.quick or locust is None:
            return
        print("raw appends", flush=True)
        raw = raw_appends.measure(database_url, processes=WORKERS, batch=BATCH, seconds=RAW_SECONDS)
        print(f"  raw: {raw.per_s:,.0f} aggregates/s", flush=True)
        counts = {"phones": len(world.phones), "cards": len(world.cards)}
        text = section(
            args,
            started,
            (load_before, report.load_average()),
            locust,
            wrk,
            raw,
            counts,
            follow,
            ecdsa_us,
        )
        report.write_section(args.out, text, marker=MARKER)
        print(text)
    finally:
        if server is not None:
            server.stop()
        drop_database(database)
        flush_redis()
        if args.keep_work:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
