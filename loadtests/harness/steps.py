"""The steps of `python -m loadtests.run_taps`, in the order its `main` takes them: the
environment, the taps built before any clock starts, the wrk ceilings, the Locust mix, the
profile, the followers and the raw appends."""

from __future__ import annotations

import argparse
import math
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.harness.bodies import BodyFiles, check_accepted
from loadtests.harness.locust_mix import LocustResult, run_locust
from loadtests.harness.plan import (
    BATCH,
    BATCH_CONNECTIONS,
    PACED_CONNECTIONS,
    SINGLE_CONNECTIONS,
    WARMUP_SECONDS,
    PoolSizes,
    pool_sizes,
)
from loadtests.harness.profiling import Spy, profile
from loadtests.harness.seeding import World, device_groups, seed
from loadtests.harness.server import Followers, Server, server_env
from loadtests.harness.services import (
    PG_URL,
    create_database,
    drop_database,
    flush_redis,
    settle_database,
)
from loadtests.harness.taps import TapMaker, card_proofs, sign_codes
from loadtests.harness.wrk import WrkResult, run_wrk, run_wrk_measured

SEED_REQUEST_TIMEOUT_S = 30
# Codes are dated after the certificates' issue, which is at the server's clock's second.
CERTIFICATES_SETTLE_S = 2.0
# Between vacuuming the database and the next wrk row.
SETTLE_PAUSE_S = 1.0
DATABASE_NAME_HEX_BYTES = 4


@dataclass(frozen=True)
class Bench:
    """Where one run works: its temporary directory, its database and the server's settings."""

    work: Path
    database_url: str
    env: dict[str, str]
    admin_token: str


@contextmanager
def bench_environment(rate_limit: int, *, keep_work: bool) -> Iterator[Bench]:
    """A fresh database, a flushed Redis database and a temporary directory, all removed
    again afterwards (the directory kept if asked)."""
    work = Path(tempfile.mkdtemp(prefix="tl_taps_"))
    database = f"tl_taps_{secrets.token_hex(DATABASE_NAME_HEX_BYTES)}"
    database_url = PG_URL.format(db=database)
    env, admin_token = server_env(work, database_url, rate_limit)
    create_database(database)
    flush_redis()
    try:
        yield Bench(work, database_url, env, admin_token)
    finally:
        drop_database(database)
        flush_redis()
        if keep_work:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def build_taps(
    args: argparse.Namespace, bench: Bench, server: Server
) -> tuple[World, TapMaker, PoolSizes]:
    """Seeds the server over HTTP, then signs and proves every tap the run will send, and
    checks that a batch of each medium is accepted."""
    admin = {"Authorization": f"Bearer {bench.admin_token}"}
    with httpx.Client(base_url=server.base_url, timeout=SEED_REQUEST_TIMEOUT_S) as client:
        began = time.monotonic()
        world = seed(client, admin, device_groups())
        print(f"seeded in {time.monotonic() - began:.1f} s", flush=True)
        sizes = pool_sizes(locust_s=args.seconds, wrk_s=args.wrk_seconds, profile=args.profile)
        began = time.monotonic()
        time.sleep(CERTIFICATES_SETTLE_S)
        tapped_at = int(time.time())
        codes = sign_codes(world, sizes.qr_needed, tapped_at - 1)
        print(f"signed {len(codes):,} codes in {time.monotonic() - began:.1f} s", flush=True)
        began = time.monotonic()
        per_card = math.ceil(sizes.card_needed / len(world.cards))
        proofs = card_proofs(world, per_card, tapped_at, bench.env)
        print(f"made {len(proofs):,} card proofs in {time.monotonic() - began:.1f} s", flush=True)
        maker = TapMaker(codes, proofs, tapped_at)
        check_accepted(client, world, maker)
        print("fixtures check: accepted", flush=True)
    return world, maker, sizes


def run_ceilings(
    args: argparse.Namespace, bench: Bench, server: Server, files: BodyFiles
) -> dict[str, WrkResult]:
    """The wrk rows, after an uncounted warm-up, each on a freshly vacuumed database."""
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
        settle_database(bench.database_url)
        time.sleep(SETTLE_PAUSE_S)
        path, count = files[name]
        seconds = args.wrk_seconds
        spied = args.quick and args.profile
        spy = Spy(server, bench.work / f"spy-{name}.txt", seconds) if spied else None
        wrk[name] = run_wrk_measured(
            server,
            name,
            path,
            count,
            connections=connections,
            seconds=seconds,
            taps_per_request=per_request,
            delay_ms=delay,
        )
        if spy is not None:
            print(spy.summary(), flush=True)
    return wrk


def run_mix(args: argparse.Namespace, bench: Bench, server: Server, fixtures: Path) -> LocustResult:
    """The Locust mix, with the followers running beside the server, as deployed."""
    print(f"locust: {args.users} users, {args.seconds} s, followers running", flush=True)
    with Followers(bench.env, bench.work / "followers.log"):
        locust = run_locust(
            server.base_url, fixtures, bench.work, users=args.users, seconds=args.seconds
        )
    print(f"  locust tally: {locust.tally}", flush=True)
    return locust


def run_profile(bench: Bench, server: Server, files: BodyFiles) -> None:
    """py-spy on one worker during a batched-QR run; the summary printed and kept."""
    path, count = files["profile"]
    profile_text = profile(server, server.base_url, path, count, bench.work)
    (bench.work / "profile-summary.txt").write_text(profile_text)
    print(profile_text, flush=True)
