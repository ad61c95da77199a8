"""Loads the tap path of a real server and writes the figures into docs/benchmarks.md.

    python -m loadtests.run_taps [--seconds 60] [--wrk-seconds 10] [--profile] [--out PATH]

One command, everything on 127.0.0.1 and bounded in time:

1. a fresh PostgreSQL database `tl_taps_<hex>` and a flushed Redis database; `tapledger serve`
   with 2 workers and production settings (secrets drawn for the run, a sealed SAM key file so
   card MACs are re-verified); waits for `/healthz`;
2. seeds validators, accounts, virtual cards (a P-256 key per simulated phone) and smart cards
   over HTTP, then builds every tap before any clock starts: TL1 codes signed on all cores,
   card session proofs made by the validators' own card flow on emulated cards
   (`loadtests/harness/card_proofs.py`);
3. (a) wrk ceilings, after a few seconds of uncounted warm-up and with the database vacuumed
   before each: batched QR taps, batched card taps, single taps at saturation, and single
   taps paced to about 500 req/s (wrk with a random delay before each request: a closed loop,
   so a slow answer delays that connection's next request; the rate is what wrk measured);
   (b) Locust, headless, the scenario mix of `loadtests/locustfile.py`, with the followers
   (`tapledger projections run`) running beside the server, as deployed;
   (c) the followers alone for a bounded time on the taps the load left: taps priced per second;
   (d) raw `eventsourcing` appends on the same database, same batch size, 2 processes;
4. stops the server, drops the database, flushes the Redis database, writes its section.

The steps live in `loadtests/harness/`, one module for each part; this module reads the
command line and takes them in order.

`--profile` adds a batched-QR wrk run with `py-spy` sampling one worker and prints where the
time goes. `--quick` runs the wrk ceilings and the followers only and writes nothing (with
`--profile`, every ceiling is sampled).
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from loadtests import raw_appends, report
from loadtests.harness.bodies import write_locust_fixtures, write_wrk_bodies
from loadtests.harness.plan import BATCH, LOCUST_GATES, LOCUST_VALIDATORS, RAW_SECONDS
from loadtests.harness.section import MARKER, Figures, section
from loadtests.harness.server import (
    FOLLOW_SECONDS,
    WORKERS,
    free_port,
    measure_followers,
    start_server,
)
from loadtests.harness.steps import (
    bench_environment,
    build_taps,
    run_ceilings,
    run_mix,
    run_profile,
)
from loadtests.harness.taps import seal_sam_keys

SECONDS_MIN, SECONDS_MAX = 10, 300
WRK_SECONDS_MIN, WRK_SECONDS_MAX = 3, 60


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
    seconds_ok = SECONDS_MIN <= args.seconds <= SECONDS_MAX
    if not seconds_ok or not WRK_SECONDS_MIN <= args.wrk_seconds <= WRK_SECONDS_MAX:
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
    with bench_environment(args.rate_limit, keep_work=args.keep_work) as bench:
        seal_sam_keys(bench.env)
        server = start_server(bench.env, free_port(), bench.work / "server.log")
        try:
            print(f"server up at {server.base_url}, workers {server.worker_pids()}", flush=True)
            world, maker, sizes = build_taps(args, bench, server)
            fixtures = write_locust_fixtures(world, maker, args.seconds, bench.work)
            files = write_wrk_bodies(world, maker, sizes, bench.work)
            print(f"fixtures written ({maker.forged} forged codes)", flush=True)
            wrk = run_ceilings(args, bench, server, files)
            # The mix last, so that the ceilings above are measured on a server that has only
            # just been seeded, and the mix sees a store the ceilings have filled.
            locust = None if args.quick else run_mix(args, bench, server, fixtures)
            if args.profile and not args.quick:
                run_profile(bench, server, files)
        finally:
            server.stop()
        print(f"followers: {FOLLOW_SECONDS:.0f} s of catching up on the taps", flush=True)
        follow = measure_followers(bench.env, bench.database_url, bench.work / "followers.log")
        print(f"  journeys: {follow.per_s:,.0f} taps/s ({follow.behind:,} left)", flush=True)
        if locust is None:
            return
        print("raw appends", flush=True)
        raw = raw_appends.measure(
            bench.database_url, processes=WORKERS, batch=BATCH, seconds=RAW_SECONDS
        )
        print(f"  raw: {raw.per_s:,.0f} aggregates/s", flush=True)
        figures = Figures(
            started=started,
            loads=(load_before, report.load_average()),
            ecdsa_us=ecdsa_us,
            wrk=wrk,
            locust=locust,
            raw=raw,
            follow=follow,
            counts={"phones": len(world.phones), "cards": len(world.cards)},
            rate_limit=args.rate_limit,
            paced_delay_ms=args.paced_delay_ms,
        )
        text = section(figures)
        report.write_section(args.out, text, marker=MARKER)
        print(text)


if __name__ == "__main__":
    main()
