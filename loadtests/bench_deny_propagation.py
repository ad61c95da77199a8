"""Deny-list propagation: from a card blocked in the backend to every online validator holding
the block; writes p50 and p99 into docs/benchmarks.md.

    python -m loadtests.bench_deny_propagation [--devices 50] [--blocks 20] [--out PATH]

One command, everything on 127.0.0.1 and bounded in time: a fresh PostgreSQL database and a
flushed Redis database; `tapledger serve --workers 2` with production settings and `tapledger
projections run` in a process of its own (the layout a city deploys: the card follower writes
the deny list apart from the workers). `--devices` validators are registered, and each follows
the deny list as a device does, with the validator software's own long poll
(`validators.deny_watch.DenyListWatcher` over `validators.http_backend.HttpBackend`, its own
token and connection, a thread each). Then `--blocks` virtual cards are blocked one after
another by staff (`POST /v1/virtual-cards/{id}/block`); a block's propagation to a device is
the time from just before the block was sent to the moment the device applied a page holding
that card. A device decides every tap with the list it holds in memory, so from that moment it
refuses the card. The issue's target: within 5 s at p99.
"""

from __future__ import annotations

import argparse
import base64
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from loadtests import report
from loadtests.harness.server import WORKERS, Followers, free_port, start_server
from loadtests.harness.steps import bench_environment
from loadtests.harness.taps import seal_sam_keys
from validators.deny_watch import DenyListWatcher
from validators.http_backend import HttpBackend

MARKER = "bench_deny_propagation"
TARGET_P99_S = 5.0
DEVICES_MAX, BLOCKS_MAX = 500, 200
# A block not held by every device within this long is reported as such and the run goes on.
PROPAGATION_WAIT_S = 30.0
POLL_S = 0.01
# Between blocks, so that each is a block of its own and not a page of several.
BETWEEN_BLOCKS_S = 0.5
# Every device's first long poll is open before the first block.
DEVICES_READY_WAIT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
VALIDATOR_ID_FIRST = 5001
RATE_LIMIT = 1_000_000


@dataclass
class DeviceProbe:
    """One device's deny list as its long poll keeps it, and when each card arrived."""

    version: int = 0
    polls: int = 0
    seen_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, since: int, page: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            self.polls += 1
            if since != self.version:
                return
            for entry in page["entries"]:
                if entry.get("card_id") is not None:
                    self.seen_at.setdefault(str(entry["card_id"]), now)
            self.version = int(page["version"])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50, help="validators long-polling")
    parser.add_argument("--blocks", type=int, default=20, help="cards blocked one by one")
    parser.add_argument("--out", type=Path, default=report.OUT_DEFAULT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep-work", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if not (0 < args.devices <= DEVICES_MAX and 0 < args.blocks <= BLOCKS_MAX):
        parser.error(f"--devices 1..{DEVICES_MAX}, --blocks 1..{BLOCKS_MAX}")
    return args


def register_devices(client: httpx.Client, count: int) -> list[str]:
    """`count` metro gates registered; their device tokens."""
    tokens = []
    for index in range(count):
        body = {
            "validator_id": VALIDATOR_ID_FIRST + index,
            "kind": "metro_gate",
            "location": VALIDATOR_ID_FIRST + index,
            "stop_id": "2A-01",
            "route_id": "2A",
            "direction": "entry",
        }
        registered = client.post("/v1/validators", json=body)
        registered.raise_for_status()
        tokens.append(registered.json()["token"])
    return tokens


def issue_cards(client: httpx.Client, count: int) -> list[str]:
    """`count` virtual cards, each on an account of its own; their ids."""
    cards = []
    for _ in range(count):
        account_id = client.post("/v1/accounts", json={}).raise_for_status().json()["id"]
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        raw = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        card = client.post(
            f"/v1/accounts/{account_id}/virtual-cards",
            json={"device_key": base64.b64encode(raw).decode()},
        )
        card.raise_for_status()
        cards.append(str(card.json()["card_id"]))
    return cards


def await_polls(probes: list[DeviceProbe], stop: threading.Event) -> None:
    """Until every device's first long poll has come back once (the empty first page at
    version 0 answers at once) and so the next one is open or about to be."""
    deadline = time.monotonic() + DEVICES_READY_WAIT_S
    while any(p.polls == 0 for p in probes):
        if time.monotonic() > deadline or stop.is_set():
            raise SystemExit("the devices' long polls did not start")
        time.sleep(POLL_S)


def block_and_time(
    client: httpx.Client, probes: list[DeviceProbe], card_id: str
) -> tuple[list[float], int]:
    """Blocks the card; each device's propagation in seconds, and how many never got it."""
    sent = time.monotonic()
    client.post(f"/v1/virtual-cards/{card_id}/block", json={"reason": "stolen"}).raise_for_status()
    deadline = sent + PROPAGATION_WAIT_S
    while time.monotonic() < deadline:
        if all(card_id in p.seen_at for p in probes):
            break
        time.sleep(POLL_S)
    times = [p.seen_at[card_id] - sent for p in probes if card_id in p.seen_at]
    return times, len(probes) - len(times)


@dataclass(frozen=True)
class Figures:
    samples: list[float]
    missed: int
    devices: int
    blocks: int

    def quantile_s(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(base_url: str, admin_token: str, devices: int, blocks: int) -> Figures:
    headers = {"Authorization": f"Bearer {admin_token}"}
    client = httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S)
    tokens = register_devices(client, devices)
    cards = issue_cards(client, blocks)
    probes = [DeviceProbe() for _ in tokens]
    backends = [HttpBackend(base_url, token) for token in tokens]
    stop = threading.Event()
    threads = []
    for probe, backend in zip(probes, backends, strict=True):

        def version(probe: DeviceProbe = probe) -> int:
            return probe.version

        watcher = DenyListWatcher(backend, version=version, apply=probe.apply)
        threads.append(threading.Thread(target=watcher.run, args=(stop,), daemon=True))
    for thread in threads:
        thread.start()
    samples: list[float] = []
    missed = 0
    try:
        await_polls(probes, stop)
        for card_id in cards:
            time.sleep(BETWEEN_BLOCKS_S)
            times, never = block_and_time(client, probes, card_id)
            samples += times
            missed += never
    finally:
        stop.set()
        for backend in backends:
            backend.close()  # ends the open long polls at once
        client.close()
    return Figures(samples, missed, devices, blocks)


def section(started: datetime, loads: tuple[str, str], figures: Figures) -> str:
    p50, p99 = figures.quantile_s(0.5), figures.quantile_s(0.99)
    met = figures.missed == 0 and p99 <= TARGET_P99_S
    start, end = report.markers(MARKER)
    return f"""{start}
## Deny-list propagation: a blocked card at every online validator

Written by `loadtests/bench_deny_propagation.py` on {started:%Y-%m-%d %H:%M} UTC with:

    {report.command_line("loadtests.bench_deny_propagation")}

Machine: {report.machine("PostgreSQL (default config, same box)")}. Load average (1/5/15 min)
{loads[0]} before and {loads[1]} after.

| devices long-polling | cards blocked | samples | p50 | p99 | max | never arrived | target | |
|---|---|---|---|---|---|---|---|---|
| {figures.devices} | {figures.blocks} | {len(figures.samples):,} | {p50 * 1000:,.0f} ms | \
{p99 * 1000:,.0f} ms | {max(figures.samples) * 1000:,.0f} ms | {figures.missed} | p99 ≤ 5 s | \
{"met" if met else "**not met**"} |

* **Server**: `tapledger serve --workers {WORKERS}` on 127.0.0.1 with production settings, a
  fresh PostgreSQL database and Redis; `tapledger projections run` in its own process writes the
  deny list (the card follower), and the workers hear of a block by PostgreSQL `LISTEN/NOTIFY`
  (docs/fleet.md).
* **Devices**: each a thread running the validator's own long poll
  (`GET /v1/deny-list?since=&wait_s=25`) with its own token and connection, on the same CPUs.
* **Propagation**: from just before staff's `POST /v1/virtual-cards/{{id}}/block` to the moment
  the device applied a page holding the card; one sample per device and block, blocks
  {BETWEEN_BLOCKS_S} s apart.
{end}"""


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started, load_before = datetime.now(UTC), report.load_average()
    with bench_environment(RATE_LIMIT, keep_work=args.keep_work) as bench:
        seal_sam_keys(bench.env)
        server = start_server(bench.env, free_port(), bench.work / "server.log")
        try:
            with Followers(bench.env, bench.work / "followers.log"):
                figures = measure(server.base_url, bench.admin_token, args.devices, args.blocks)
        finally:
            server.stop()
    if not figures.samples:
        raise SystemExit("no device received any block")
    print(
        f"deny-list propagation to {figures.devices} devices, {figures.blocks} blocks: "
        f"p50 {figures.quantile_s(0.5) * 1000:,.0f} ms, p99 {figures.quantile_s(0.99) * 1000:,.0f}"
        f" ms, max {max(figures.samples) * 1000:,.0f} ms, never arrived {figures.missed}",
        flush=True,
    )
    if not args.no_write:
        text = section(started, (load_before, report.load_average()), figures)
        report.write_section(args.out, text, marker=MARKER)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
