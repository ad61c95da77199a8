"""Request bodies, written before any clock starts: files of one body a line for wrk
(`loadtests/taps.lua`), and the fixtures file Locust's users read their taps from."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from loadtests.harness.plan import (
    BATCH,
    LOCUST_GATE_TAPS_PER_S,
    LOCUST_TAPS_PER_VALIDATOR_S,
    PoolSizes,
)
from loadtests.harness.seeding import Device, World, ok
from loadtests.harness.taps import Tap, TapMaker

# One line of a bodies file: the route, the validator's token, the body.
BodyLine = tuple[str, str, dict[str, Any]]
# The pools wrk sends from, by name: the file, and how many bodies it holds.
BodyFiles = dict[str, tuple[Path, int]]


def bodies_file(path: Path, lines: Iterator[BodyLine]) -> int:
    count = 0
    with path.open("w") as out:
        for route, token, body in lines:
            out.write(f"{route}\t{token}\t{json.dumps(body, separators=(',', ':'))}\n")
            count += 1
    return count


def batch_bodies(
    devices: list[Device], make: Callable[[int], Tap], batches: int
) -> Iterator[BodyLine]:
    for index in range(batches):
        device = devices[index % len(devices)]
        taps = [make(device.validator_id) for _ in range(BATCH)]
        yield "/v1/taps/batch", device.token, {"validator_id": device.validator_id, "taps": taps}


def single_bodies(devices: list[Device], maker: TapMaker, count: int) -> Iterator[BodyLine]:
    for index in range(count):
        device = devices[index % len(devices)]
        yield (
            "/v1/taps",
            device.token,
            {"validator_id": device.validator_id, "tap": maker.mixed(device)},
        )


def check_accepted(client: httpx.Client, world: World, maker: TapMaker) -> None:
    """A check before any timing: one batch of each medium is accepted whole."""
    check = world.devices["check"]
    for make, device in ((maker.qr, check[0]), (maker.card, check[1])):
        taps = [make(device.validator_id) for _ in range(BATCH)]
        answer = ok(
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


def _locust_device(device: Device, maker: TapMaker, taps: int) -> dict[str, Any]:
    return {
        "validator_id": device.validator_id,
        "kind": device.kind,
        "token": device.token,
        "taps": [maker.mixed(device) for _ in range(taps)],
    }


def write_locust_fixtures(world: World, maker: TapMaker, seconds: int, work: Path) -> Path:
    """The taps of every Locust user, enough for `seconds` at the most it sends."""
    fixtures = {
        "validators": [
            _locust_device(d, maker, LOCUST_TAPS_PER_VALIDATOR_S * seconds)
            for d in world.devices["locust_validators"]
        ],
        "gates": [
            _locust_device(d, maker, LOCUST_GATE_TAPS_PER_S * seconds)
            for d in world.devices["locust_gates"]
        ],
    }
    path = work / "fixtures.json"
    path.write_text(json.dumps(fixtures))
    return path


def write_wrk_bodies(world: World, maker: TapMaker, sizes: PoolSizes, work: Path) -> BodyFiles:
    """A bodies file for each wrk run, in `work`."""
    files: BodyFiles = {}
    devices = world.devices
    for name, lines in (
        ("qr", batch_bodies(devices["qr"], maker.qr, sizes.qr_batches)),
        ("card", batch_bodies(devices["card"], maker.card, sizes.card_batches)),
        ("single", single_bodies(devices["single"], maker, sizes.single_count)),
        ("paced", single_bodies(devices["paced"], maker, sizes.paced_count)),
        ("profile", batch_bodies(devices["profile"], maker.qr, sizes.profile_batches)),
        ("warmup", batch_bodies(devices["warmup"], maker.qr, sizes.warmup_batches)),
    ):
        path = work / f"{name}.bodies"
        files[name] = (path, bodies_file(path, lines))
    return files
